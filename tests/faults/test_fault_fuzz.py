"""Protocol fuzzing: generated AGI environment blocks, AGI reply streams and
AMI message streams (truncated, oversized, binary, missing newline,
interleaved ``HANGUP``, unknown codes).

The parsers are fed directly for volume; a smaller number of cases go over
real sockets to the running server while a well-formed call runs beside them.
Whatever arrives: only the typed protocol errors, no desync (a well-formed
stream is understood exactly, and junk never shifts a later reply onto the
wrong command), no leaked session or task, and the concurrent call is served.
Each property runs a few hundred to a thousand cases by default and many more
under ``--long`` (100,000 in total).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi import protocol
from ivr.agi.protocol import AGIError, Reply
from ivr.agi.session import BadEnvironment, CommandTimeout, ConnectionLost, Environment, Session, read_environment
from ivr.ami.wire import AMIFramer, AMIProtocolError, encode_headers
from ivr.simulator import CallSetup, FastAGIPeer, SimulatedAsterisk, place_call

pytestmark = pytest.mark.fault("protocol fuzzing")

WELL_FORMED_ENV = SimulatedAsterisk(CallSetup(caller_id="081234567890", args=("a", "b c"))).environment()
ENV_LINES = WELL_FORMED_ENV.splitlines(keepends=True)[:-1]  # without the closing empty line
JUNK_PIECES = st.sampled_from(
    [b"HANGUP\n", b"\r\n", b"\n", b"\x00\xff\xfe", b"agi_", b": ", b"\xe9", b"200 result=1\n", b"520-x\n", b"A" * 70000]
)
JUNK = st.one_of(st.binary(max_size=200), st.lists(JUNK_PIECES, max_size=6).map(b"".join))


#: The parser properties touch no database: the PostgreSQL pass of the suite
#: (``IVR_TEST_DATABASE_URL`` set) leaves them to the SQLite pass.
PARSERS_ONLY = pytest.mark.skipif(
    bool(os.environ.get("IVR_TEST_DATABASE_URL")), reason="no database involved: run once, in the SQLite pass"
)


def fuzz(
    default: int, long: int, *strategies: Any, parsers_only: bool = True, **kwargs: Any
) -> Callable[[Any], tuple[Any, Any]]:
    """One property, twice: ``default`` examples in every run, ``long`` under --long."""

    def make(check: Any) -> tuple[Any, Any]:
        common = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
        quick = settings(max_examples=default, **common)(given(*strategies, **kwargs)(check))
        full = pytest.mark.long(settings(max_examples=long, **common)(given(*strategies, **kwargs)(check)))
        if parsers_only:
            return PARSERS_ONLY(quick), PARSERS_ONLY(full)
        return quick, full

    return make


# -- the environment block ---------------------------------------------------------------


@st.composite
def environments(draw: st.DrawFn) -> bytes:
    """A real environment block, mutated: lines dropped, duplicated or
    replaced by junk, a line cut short, the end missing, extra bytes after it."""
    lines = list(ENV_LINES)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["drop", "junk", "cut", "dup"]))
        if action == "junk":
            lines.insert(where, draw(JUNK))
        elif lines and where < len(lines):
            if action == "drop":
                del lines[where]
            elif action == "cut":
                lines[where] = lines[where][: draw(st.integers(0, len(lines[where])))]
            else:
                lines.insert(where, lines[where])
    block = b"".join(lines)
    if draw(st.booleans()):
        block += b"\n" + draw(JUNK)  # the end of the block, then whatever follows
    return block


async def _parse_environment(data: bytes) -> Environment | None:
    reader = asyncio.StreamReader(limit=protocol.MAX_COMMAND_BYTES * 32)
    reader.feed_data(data)
    reader.feed_eof()
    try:
        environment = await read_environment(reader, timeout=1)
    except BadEnvironment:
        return None
    # No over-read: exactly what followed the first empty line is still there.
    rest = await reader.read()
    ends = data.find(b"\n\n") if not data.startswith(b"\n") else -1
    assert data.startswith(b"\n") or data[ends + 2 :] == rest
    return environment


def check_environment(fault: Any, data: bytes) -> None:
    fault.cases()
    environment = asyncio.run(_parse_environment(data))
    if environment is not None:
        assert isinstance(environment.script, str) and all(isinstance(a, str) for a in environment.args)


test_environment_blocks, test_environment_blocks_long = fuzz(800, 30000, data=environments())(check_environment)


# -- reply streams -------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One answer of Asterisk to one command, and what Session.command must make of it."""

    raw: bytes
    expect: str  # "200 <result>", or the AGIError class name


def _units() -> st.SearchStrategy[Unit]:
    result = st.one_of(st.integers(-1, 255).map(str), st.text("0123456789*#", max_size=8))
    ok = st.tuples(result, st.sampled_from(["", " (timeout)", " endpos=8000", " (dtmf) endpos=1"])).map(
        lambda pair: Unit(f"200 result={pair[0]}{pair[1]}\n".encode(), f"200 {pair[0]}")
    )
    hangup_first = ok.map(lambda unit: Unit(b"HANGUP\n" + unit.raw, unit.expect))
    trying = ok.map(lambda unit: Unit(b"100 result=0 Trying...\n" + unit.raw, unit.expect))
    errors = st.sampled_from(
        [
            Unit(b"510 Invalid or unknown command\n", "InvalidCommand"),
            Unit(b"511 Command Not Permitted on a dead channel or intercept routine\n", "DeadChannel"),
            Unit(b"520 Invalid command syntax.  Proper usage not available.\n", "UsageError"),
            Unit(
                b"520-Invalid command syntax.  Proper usage follows:\nUsage.\n\nMore.\n520 End of proper usage.\n",
                "UsageError",
            ),
        ]
    )
    return st.one_of(ok, hangup_first, trying, errors)


def _outcome(session: Session) -> Any:
    async def one() -> str:
        try:
            reply = await session.command(b"NOOP\n", timeout=1)
        except AGIError as exc:
            return type(exc).__name__
        assert isinstance(reply, Reply) and protocol.classify_status(reply.raw) == "200"
        return f"200 {reply.result}"

    return one()


def _session(data: bytes) -> Session:
    reader = asyncio.StreamReader(limit=protocol.MAX_COMMAND_BYTES * 32)
    reader.feed_data(data)
    reader.feed_eof()
    writer = cast(asyncio.StreamWriter, _NullWriter())
    return Session(reader, writer, Environment.from_lines([]))


class _NullWriter:
    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


def check_well_formed_replies(fault: Any, units: list[Unit]) -> None:
    """A well-formed stream is understood exactly: reply i answers command i."""
    fault.cases()

    async def run() -> list[str]:
        session = _session(b"".join(u.raw for u in units))
        return [await _outcome(session) for _ in units]

    assert asyncio.run(run()) == [u.expect for u in units]


test_reply_streams, test_reply_streams_long = fuzz(500, 25000, units=st.lists(_units(), max_size=12))(
    check_well_formed_replies
)


def check_junk_in_replies(fault: Any, units: list[Unit], junk: bytes, where: int) -> None:
    """Junk somewhere in the stream: up to it every reply is exact; at it only
    a typed error; a broken session refuses every later command."""
    fault.cases()
    where = min(where, len(units))
    data = b"".join(u.raw for u in units[:where]) + junk + b"".join(u.raw for u in units[where:])

    async def run() -> None:
        session = _session(data)
        for unit in units[:where]:
            assert await _outcome(session) == unit.expect
        for _ in range(len(units) - where + 2):
            try:
                await _outcome(session)
            except (ConnectionLost, CommandTimeout):
                assert not session.usable
                with pytest.raises(ConnectionLost):
                    await session.command(b"NOOP\n", timeout=1)
                return

    asyncio.run(run())


test_junk_in_replies, test_junk_in_replies_long = fuzz(
    500, 20000, units=st.lists(_units(), max_size=6), junk=JUNK, where=st.integers(0, 6)
)(check_junk_in_replies)


# -- AMI message streams ---------------------------------------------------------------------

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
#: Header values as Asterisk may send them: any text but CR, LF and NUL (which
#: encode_headers refuses); names distinct within a message.
HEADER_TEXT = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=20)
HEADER_NAMES = st.sampled_from(["Event", "Response", "ActionID", "Uniqueid", "CallerIDName"])
MESSAGES = st.lists(st.dictionaries(HEADER_NAMES, HEADER_TEXT, min_size=1, max_size=5), max_size=6)


def _feed(stream: bytes, sizes: list[int]) -> list[dict[str, str]]:
    framer = AMIFramer()
    got: list[dict[str, str]] = []
    position = turn = 0
    while position < len(stream):
        size = sizes[turn % len(sizes)]
        got.extend(m.as_dict() for m in framer.feed(stream[position : position + size]))
        position, turn = position + size, turn + 1
    return got


def check_ami_stream(fault: Any, messages: list[dict[str, str]], junk: bytes, sizes: list[int]) -> None:
    """Well-formed messages in any chunking come out exactly; junk after them
    is either framed as messages of its own or refused with AMIProtocolError,
    never anything else and never by changing the messages before it."""
    fault.cases()
    good = b"".join(encode_headers(m.items()) for m in messages)
    expected = messages
    assert _feed(BANNER + good, sizes) == expected
    try:
        got = _feed(BANNER + good + junk, sizes)
    except AMIProtocolError:
        return
    assert got[: len(expected)] == expected


test_ami_streams, test_ami_streams_long = fuzz(
    500, 24000, messages=MESSAGES, junk=JUNK, sizes=st.lists(st.integers(1, 64), min_size=1, max_size=6)
)(check_ami_stream)


# -- over real sockets, beside a well-formed call ------------------------------------------------


async def _junk_session(port: int, environment: bytes, replies: bytes) -> None:
    """A peer that sends ``environment``, answers the server's first command
    (if the block was complete) with ``replies``, then closes."""
    peer = await FastAGIPeer.connect("127.0.0.1", port)
    try:
        await peer.send(environment)
        if replies and b"\n\n" in environment:
            await peer.read_line(timeout=5)
            await peer.send(replies)
        peer.half_close()
        await peer.read_until_eof(timeout=10)
    finally:
        await peer.close()


async def check_over_sockets(runtime: Any, fault: Any, environment: bytes, replies: bytes) -> None:
    fault.cases()
    good = asyncio.create_task(
        place_call("127.0.0.1", runtime.agi.bound_port, caller_id="081234567890", keys=["5", "5", "5"])
    )
    await _junk_session(runtime.agi.bound_port, environment, replies)
    record = await good
    assert record.result == "OK", record.render()
    if runtime.agi.active:
        await asyncio.wait(set(runtime.agi.active), timeout=10)
    assert not runtime.agi.active and not runtime.calls.active
    leftovers = [t.get_name() for t in asyncio.all_tasks() if not t.done() and t.get_name().startswith("save-")]
    assert leftovers == []


SOCKET_REPLIES = st.lists(_units(), max_size=3).map(lambda units: b"".join(u.raw for u in units)) | JUNK
test_junk_peers_beside_a_good_call, test_junk_peers_beside_a_good_call_long = fuzz(
    25, 1000, environment=environments(), replies=SOCKET_REPLIES, parsers_only=False
)(check_over_sockets)
