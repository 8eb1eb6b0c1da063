"""Replays of the captured Asterisk 22.10.1 AMI transcripts.

Two things are checked against the real bytes:

* our framing/parser (``ivr.ami.wire``): every ``<<`` byte stream of every
  ``ami-*.txt`` comes out as whole messages, identical to the transcript's own
  message boundaries, whatever the TCP chunking (including one byte at a time and
  cuts inside UTF-8 characters); every ``>>`` action re-encodes byte for byte;
* the fake server (``tests/fake_ami.py``): replaying the client side of a
  transcript against it gives back the same responses, byte for byte once the
  volatile values (timestamps, addresses, session ids) are masked.

Transcript line format: ``HH:MM:SS.mmm +  N.NNNs  <<  b'...'``; ``<<`` is Asterisk
to client, ``>>`` client to Asterisk, ``--`` a recorder note; ``#`` lines are the
header. A note ``[<name>: connecting to ...]`` starts a new TCP connection.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_ami import FakeAMI, OriginateOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.ami.wire import BANNER_PREFIX, AMIFramer, AMIMessage, encode_headers, parse_message

TRANSCRIPTS = Path(__file__).parent / "asterisk" / "transcripts"
AMI_FILES = sorted(TRANSCRIPTS.glob("ami-*.txt"))

LINE_RE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \+\s*(\d+\.\d{3})s  (<<|>>|--)  (.*)$")
CONNECT_RE = re.compile(r"^\[([\w-]+): connecting to ")


@dataclass
class Stream:
    """One TCP connection of a transcript."""

    name: str
    #: Every wire line Asterisk sent, and every action we sent, in order.
    events: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def incoming(self) -> bytes:
        return b"".join(data for direction, data in self.events if direction == "<<")

    @property
    def outgoing(self) -> list[bytes]:
        return [data for direction, data in self.events if direction == ">>"]


def parse_transcript(path: Path) -> list[Stream]:
    streams: list[Stream] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = LINE_RE.match(line)
        assert match, f"{path.name}:{number}: unexpected line {line!r}"
        direction, payload = match.group(3), match.group(4)
        if direction == "--":
            started = CONNECT_RE.match(payload)
            if started:
                streams.append(Stream(started.group(1)))
            continue
        data = ast.literal_eval(payload)
        assert isinstance(data, bytes)
        streams[-1].events.append((direction, data))
    return streams


def expected_frames(stream: Stream) -> tuple[bytes | None, list[bytes]]:
    """The transcript's own message boundaries: the banner line, then lines up
    to each bare ``b'\\r\\n'``. Independent of ``ivr.ami.wire``."""
    banner = None
    messages: list[bytes] = []
    current = b""
    for direction, data in stream.events:
        if direction != "<<":
            continue
        if banner is None and not messages and not current and data.startswith(BANNER_PREFIX):
            banner = data
            continue
        current += data
        if data == b"\r\n":
            messages.append(current)
            current = b""
    assert current == b"", f"{stream.name}: transcript ends inside a message"
    return banner, messages


ALL_STREAMS = [(path.name, stream) for path in AMI_FILES for stream in parse_transcript(path)]


def test_every_transcript_was_parsed() -> None:
    names = {path.name for path in AMI_FILES}
    assert {"ami-login.txt", "ami-originate.txt", "ami-originate-fail.txt", "ami-restart.txt"} <= names
    assert len(ALL_STREAMS) >= 10


@pytest.mark.parametrize(("name", "stream"), ALL_STREAMS, ids=[f"{n}:{s.name}" for n, s in ALL_STREAMS])
def test_stream_frames_into_whole_messages(name: str, stream: Stream) -> None:
    banner, expected = expected_frames(stream)
    data = stream.incoming
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        framer = AMIFramer()
        got: list[AMIMessage] = []
        for chunk in chunks:
            got.extend(framer.feed(chunk))
        assert framer.banner == (banner.decode().rstrip("\r\n") if banner else None)
        assert [m.raw for m in got] == expected
        assert framer.pending_bytes == 0
        for message, raw in zip(got, expected, strict=True):
            # One header per wire line: nothing merged, nothing dropped.
            assert len(message.headers) == raw.count(b"\r\n") - 1
            assert message.is_event or message.is_response


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=len(ALL_STREAMS) - 1),
    sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40),
)
def test_any_chunking_gives_the_same_messages(index: int, sizes: list[int]) -> None:
    _, stream = ALL_STREAMS[index]
    _, expected = expected_frames(stream)
    data = stream.incoming
    framer = AMIFramer()
    got: list[bytes] = []
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        got.extend(m.raw for m in framer.feed(data[position : position + size]))
        position += size
        turn += 1
    assert got == expected


def _messages(file: str, stream_index: int = 0) -> list[AMIMessage]:
    stream = parse_transcript(TRANSCRIPTS / file)[stream_index]
    framer = AMIFramer()
    return framer.feed(stream.incoming)


def test_originate_transcript_content() -> None:
    messages = _messages("ami-originate.txt")
    response = next(m for m in messages if m.event == "OriginateResponse").as_dict()
    assert response == {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "ActionID": "orig-1",
        "Response": "Success",
        "Channel": "Local/ami_call@ivr-in-0000002c;1",
        "Context": "caller-sim",
        "Exten": "script",
        "Reason": "4",
        "Uniqueid": "1796312906.88",
        "CallerIDNum": "081298765432",
        "CallerIDName": "Siti Aminah",
    }
    assert sum(1 for m in messages if m.event == "VarSet") == 42
    # OriginateResponse carries a Response header but is an event.
    assert not any(m.is_response for m in messages if m.event)


def test_failed_originates_report_reason_and_unknown_uniqueid() -> None:
    failures = {
        m.action_id: (m.get("Reason"), m.get("Uniqueid"))
        for m in _messages("ami-originate-fail.txt")
        if m.event == "OriginateResponse"
    }
    assert failures == {
        "of-unavail": ("0", "<unknown>"),
        "of-noanswer": ("3", "<unknown>"),
        "of-busy": ("5", "<unknown>"),
        "of-congestion": ("8", "<unknown>"),
    }


def test_actions_transcript_content() -> None:
    by_id = {m.action_id: m for m in _messages("ami-actions.txt") if m.is_response}
    assert by_id["cmd-2"].as_dict()["Output"].count("\n") == 1  # two Output lines, one string
    assert by_id["getvar-1"].as_dict()["Value"] == '"Test Caller" <0811111111>'
    assert by_id["getvar-2"].as_dict()["Value"] == ""
    assert by_id["fail-2"].get("Message") == "No such channel"
    assert by_id[None].get("Message") == "Missing action in request"  # no ActionID echoed


@pytest.mark.parametrize(("name", "stream"), ALL_STREAMS, ids=[f"{n}:{s.name}" for n, s in ALL_STREAMS])
def test_outgoing_actions_reencode_byte_for_byte(name: str, stream: Stream) -> None:
    for action in stream.outgoing:
        assert encode_headers(parse_message(action).headers) == action


# -- the fake server against the transcripts ---------------------------------------------------

VOLATILE = ("Timestamp", "Uptime", "LastReload", "EventTV", "SessionTV", "SessionID", "LocalAddress", "RemoteAddress")
_VOLATILE_RE = re.compile(rb"^(" + b"|".join(k.encode() for k in VOLATILE) + rb"): .*$", re.M)


def normalise(raw: bytes) -> bytes:
    return _VOLATILE_RE.sub(lambda m: m.group(1) + b": *\r", raw)


def _answers_to(stream: Stream, index: int) -> list[bytes]:
    """What Asterisk sent between the ``index``-th ``>>`` and the next one, keeping
    responses, events that carry an ActionID (list items, OriginateResponse) and
    the login events; the call events of a live PBX are not the fake's business."""
    outgoing_seen = -1
    framer = AMIFramer(expect_banner=False)
    answers: list[bytes] = []
    for direction, data in stream.events:
        if direction == ">>":
            outgoing_seen += 1
            continue
        if outgoing_seen < 0:
            continue  # banner
        for message in framer.feed(data):
            if outgoing_seen == index and _kept(message):
                answers.append(message.raw)
    return answers


def _kept(message: AMIMessage) -> bool:
    return message.is_response or message.action_id is not None or message.event in {"FullyBooted", "SuccessfulAuth"}


async def _replay(fake: FakeAMI, stream: Stream, skip: Iterable[str] = ()) -> int:
    """Send the client side of ``stream`` to the fake; returns how many answers matched."""
    compared = 0
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    try:
        banner, _ = expected_frames(stream)
        assert await asyncio.wait_for(reader.readline(), 2) == banner
        framer = AMIFramer(expect_banner=False)
        for index, action in enumerate(stream.outgoing):
            if parse_message(action).action_id in set(skip):
                continue
            writer.write(action)
            expected = _answers_to(stream, index)
            got: list[bytes] = []
            async with asyncio.timeout(3):
                while len(got) < len(expected):
                    chunk = await reader.read(65536)
                    assert chunk, f"EOF while waiting for the answer to {action!r}"
                    got.extend(m.raw for m in framer.feed(chunk) if _kept(m))
            assert [normalise(g) for g in got] == [normalise(e) for e in expected], action
            compared += len(expected)
        # Login failure and Logoff end with EOF from Asterisk; so must the fake.
        if b"Action: Logoff" in stream.outgoing[-1] or b"Secret: wrong" in stream.outgoing[0]:
            async with asyncio.timeout(3):
                assert await reader.read() == b""
    finally:
        writer.close()
    return compared


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    async with FakeAMI(auth_fail_delay=0.05) as server:
        yield server


async def test_fake_replays_login_transcript(fake: FakeAMI) -> None:
    compared = [await _replay(fake, stream) for stream in parse_transcript(TRANSCRIPTS / "ami-login.txt")]
    # bad login; Login + FullyBooted + SuccessfulAuth, 2 Pings, Logoff; Login, Ping, Logoff
    assert compared == [1, 6, 3]


async def test_fake_replays_preauth_transcript(fake: FakeAMI) -> None:
    (stream,) = parse_transcript(TRANSCRIPTS / "ami-preauth.txt")
    assert await _replay(fake, stream) == 2


async def test_fake_replays_failed_originates(fake: FakeAMI) -> None:
    fake.originate_outcomes = {
        "Local/999@nosuchcontext": OriginateOutcome("Failure", 0),
        "Local/101@officer": OriginateOutcome("Failure", 3, delay=0.05),
        "Local/102@officer": OriginateOutcome("Failure", 5),
        "Local/103@officer": OriginateOutcome("Failure", 8),
    }
    (stream,) = parse_transcript(TRANSCRIPTS / "ami-originate-fail.txt")
    assert await _replay(fake, stream) == 1 + 4 * 2 + 1  # login, 4 x (queued + OriginateResponse), logoff


async def test_fake_replays_action_errors(fake: FakeAMI) -> None:
    fake.originate_outcomes["Local/999@nosuchcontext"] = OriginateOutcome("Failure", 0)
    (stream,) = parse_transcript(TRANSCRIPTS / "ami-actions.txt")
    # These need the live call of the lab (channel list, CLI tables, variables).
    compared = await _replay(fake, stream, skip={"csc-1", "cmd-1", "cmd-2", "getvar-1", "getvar-2", "hangup-1"})
    assert compared == 16


async def test_fake_shutdown_matches_restart_transcript(fake: FakeAMI) -> None:
    stream = parse_transcript(TRANSCRIPTS / "ami-restart.txt")[0]
    _, expected = expected_frames(stream)
    shutdown = [raw for raw in expected if raw.startswith(b"Event: Shutdown")]
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    try:
        await reader.readline()
        writer.write(stream.outgoing[0])
        await fake.wait_connection(1)
        await fake.shutdown(restart=True)
        async with asyncio.timeout(3):
            rest = await reader.read()  # everything up to EOF
        framer = AMIFramer(expect_banner=False)
        got = [m.raw for m in framer.feed(rest)]
        assert got[-1] == shutdown[0]
    finally:
        writer.close()
