"""Unit tests of ``ivr.agi.protocol`` and the reply reader in ``ivr.agi.session``.

Every reply used here is a real Asterisk 22.10.1 line (``shared/asterisk``) or a
test vector from PROTOCOL.md's last section (V1-V12)::

    >> b'GET DATA beep 3000 4\\n'
    << b'200 result=12 (timeout)\\n'
    >> b'SAY NUMBER abc ""\\n'
    << b'520-Invalid command syntax.  Proper usage follows:\\n'
    << b'Say a given number, returning early if any of the given DTMF digits ...\\n'
    << b'520 End of proper usage.\\n'

Tests named after a defect (``..._never_raises``, ``..._does_not_desynchronise``,
``..._counts_the_command_words``) are regression tests for bugs found and fixed
in the protocol code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi import protocol
from ivr.agi.protocol import (
    AGIError,
    CommandRejected,
    DeadChannel,
    InvalidCommand,
    Reply,
    UnexpectedReply,
    UsageError,
)
from ivr.agi.server import FastAGIServer
from ivr.agi.session import (
    BadEnvironment,
    CommandTimeout,
    ConnectionLost,
    Environment,
    Session,
    read_environment,
)
from ivr.simulator import CallSetup, FastAGIPeer, SimulatedAsterisk, parse_args, place_call

# --------------------------------------------------------------------------- helpers


class RecordingWriter:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def make_session(replies: bytes = b"", eof: bool = True) -> tuple[Session, asyncio.StreamReader, RecordingWriter]:
    reader = asyncio.StreamReader()
    if replies:
        reader.feed_data(replies)
    if eof:
        reader.feed_eof()
    writer = RecordingWriter()
    session = Session(reader, cast(asyncio.StreamWriter, writer), Environment.from_lines([]))
    return session, reader, writer


def asterisk_words(line: bytes) -> list[str]:
    """How Asterisk splits an encoded command (res_agi.c parse_args, as the simulator does it)."""
    assert line.endswith(b"\n")
    words, _ = parse_args(line[:-1])
    return [w.decode("utf-8", "surrogateescape") for w in words]


# --------------------------------------------------------------------------- quoting and encoding


@pytest.mark.parametrize(
    ("argument", "quoted"),
    [
        ("beep", '"beep"'),
        ("", '""'),
        (5000, '"5000"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\tmp", '"C:\\\\tmp"'),
        ("it's", '"it\'s"'),
        ("Selamat pagi, Pak Budi \u2013 ok", '"Selamat pagi, Pak Budi \u2013 ok"'),
        ("tab\there", '"tab\there"'),
    ],
)
def test_quote(argument: str | int, quoted: str) -> None:
    assert protocol.quote(argument) == quoted


@pytest.mark.parametrize("bad", ["line\nbreak", "carriage\rreturn", "nul\0byte", "\r\n"])
def test_quote_refuses_what_cannot_be_sent(bad: str) -> None:
    with pytest.raises(CommandRejected):
        protocol.quote(bad)
    with pytest.raises(CommandRejected):
        protocol.encode_command("SET VARIABLE", "X", bad)


def test_encode_command_shapes() -> None:
    assert protocol.encode_command("ANSWER") == b"ANSWER\n"
    assert protocol.encode_command("GET DATA", "/r/p/menu", raw=["5000", "1"]) == b'GET DATA "/r/p/menu" 5000 1\n'
    assert protocol.encode_command("STREAM FILE", "hello-world", "") == b'STREAM FILE "hello-world" ""\n'
    assert (
        protocol.encode_command("RECORD FILE", "/rec/x", "wav", "#", raw=["5000", "0", "BEEP", "s=2"])
        == b'RECORD FILE "/rec/x" "wav" "#" 5000 0 BEEP s=2\n'
    )
    # Byte for byte the line of agi-errors.txt that Asterisk answered correctly.
    assert (
        protocol.encode_command("SET VARIABLE", "MY VAR", 'value with "quotes" and spaces')
        == b'SET VARIABLE "MY VAR" "value with \\"quotes\\" and spaces"\n'
    )


@pytest.mark.parametrize("token", ["", "two words", 'q"uote', "back\\slash", "tab\t", "cr\r", "nl\n", "nul\0"])
def test_encode_command_checks_raw_tokens(token: str) -> None:
    with pytest.raises(CommandRejected):
        protocol.encode_command("GET DATA", "menu", raw=[token])


def test_encode_command_2000_byte_limit() -> None:
    overhead = len(b'VERBOSE ""\n')
    assert len(protocol.encode_command("VERBOSE", "x" * (2000 - overhead))) == 2000
    with pytest.raises(CommandRejected):
        protocol.encode_command("VERBOSE", "x" * (2001 - overhead))
    # The limit is on bytes, not characters: "\u2013" is 3 bytes of UTF-8.
    with pytest.raises(CommandRejected):
        protocol.encode_command("VERBOSE", "\u2013" * 700)


def test_encode_command_argument_count() -> None:
    assert protocol.encode_command("VERBOSE", *(["x"] * 126))
    with pytest.raises(CommandRejected):
        protocol.encode_command("VERBOSE", *(["x"] * 128))
    with pytest.raises(CommandRejected):
        protocol.encode_command("VERBOSE", *(["x"] * 100), raw=["1"] * 28)


def test_encode_command_counts_the_command_words() -> None:
    """Regression (found with this suite, fixed in protocol.py): res_agi.c parse_args
    keeps at most 127 words *including* the command words, and a quoted 128th word
    takes the quote path that has no MAX_ARGS check (res_agi.c:4166-4176), after
    which ``argv[x] = NULL`` (4216) writes one past ``const char *argv[MAX_ARGS]``."""
    line = protocol.encode_command("EXEC", *(["x"] * 126))
    assert len(asterisk_words(line)) == 127
    with pytest.raises(CommandRejected):
        protocol.encode_command("EXEC", *(["x"] * 127))
    with pytest.raises(CommandRejected):
        protocol.encode_command("GET FULL VARIABLE", *(["x"] * 125))


def test_encode_command_never_raises_on_unencodable_text() -> None:
    """Regression: a lone surrogate used to escape as UnicodeEncodeError; the line
    Asterisk gets must be valid UTF-8 (or the command refused as CommandRejected)."""
    for text in ("broken \ud800 pair", b"Caf\xe9".decode("utf-8", "surrogateescape")):
        try:
            line = protocol.encode_command("VERBOSE", text)
        except CommandRejected:
            continue
        line.decode("utf-8")
        assert b"\n" not in line[:-1]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"), max_size=200))
def test_quoting_round_trips_through_asterisk_parse_args(value: str) -> None:
    """V12 generalised: whatever we quote, Asterisk's parse_args gives back."""
    line = protocol.encode_command("SET VARIABLE", "NOTE", value)
    assert asterisk_words(line) == ["SET", "VARIABLE", "NOTE", value]


def test_v12_quoting_round_trip_and_newline() -> None:
    line = protocol.encode_command("SET VARIABLE", "NOTE", 'say "hi" C:\\tmp')
    assert line == b'SET VARIABLE "NOTE" "say \\"hi\\" C:\\\\tmp"\n'
    assert asterisk_words(line)[3] == 'say "hi" C:\\tmp'
    with pytest.raises(CommandRejected):
        protocol.encode_command("SET VARIABLE", "NOTE", "two\nlines")


def test_command_verb() -> None:
    assert protocol.command_verb(b'GET FULL VARIABLE "${X}"\n') == "GET FULL VARIABLE"
    assert protocol.command_verb(b'get variable "X"\n') == "GET VARIABLE"
    assert protocol.command_verb(b'STREAM FILE "x" ""\n') == "STREAM FILE"
    assert protocol.command_verb(b"NOOP\n") == "NOOP"


# --------------------------------------------------------------------------- reply lines


@pytest.mark.parametrize(
    ("line", "result", "data", "fields"),
    [
        ("200 result=0", "0", None, {}),
        ("200 result=0 endpos=11234", "0", None, {"endpos": "11234"}),
        ("200 result=53 endpos=26400", "53", None, {"endpos": "26400"}),
        ("200 result=-1 endpos=0", "-1", None, {"endpos": "0"}),
        ("200 result=1234", "1234", None, {}),
        ("200 result=12 (timeout)", "12", "timeout", {}),
        ("200 result= (timeout)", "", "timeout", {}),
        ("200 result=", "", None, {}),
        ("200 result=35 (dtmf) endpos=9612", "35", "dtmf", {"endpos": "9612"}),
        ("200 result=0 (timeout) endpos=39200", "0", "timeout", {"endpos": "39200"}),
        ("200 result=4592 (timeout) endpos=18732", "4592", "timeout", {"endpos": "18732"}),
        ("200 result=-1 (hangup) endpos=11212", "-1", "hangup", {"endpos": "11212"}),
        ("200 result=-1 (writefile)", "-1", "writefile", {}),
        ("200 result=1 (bar baz)", "1", "bar baz", {}),
        ("200 result=1 ()", "1", "", {}),
        ("200 result=1 (a) b)", "1", "a) b", {}),
        ('200 result=1 ("Siti Aminah" <081298765432>)', "1", '"Siti Aminah" <081298765432>', {}),
        ("200 result=1 ( / Local/vars@ivr-in-00000014;2)", "1", " / Local/vars@ivr-in-00000014;2", {}),
        ("200 result=1 (unterminated", "1", "unterminated", {}),
        ("200 result=0 Gosub complete", "0", None, {}),
        ("200 result=-2", "-2", None, {}),
    ],
)
def test_parse_success(line: str, result: str, data: str | None, fields: dict[str, str]) -> None:
    reply = protocol.parse_success(line)
    assert (reply.result, reply.data, reply.fields, reply.raw) == (result, data, fields, line)


def test_reply_number_and_endpos() -> None:
    assert protocol.parse_success("200 result=-1 endpos=20000").number == -1
    assert protocol.parse_success("200 result=-1 endpos=20000").endpos == 20000
    assert protocol.parse_success("200 result= (timeout)").number is None
    assert protocol.parse_success("200 result=12 (timeout)").endpos is None
    assert protocol.parse_success("200 result=0 endpos=-1").endpos == -1  # CONTROL STREAM FILE at the end


@pytest.mark.parametrize("value", ["--5", "\u00b2", "1\u00b2"])
def test_reply_endpos_never_raises(value: str) -> None:
    """Regression (found with this suite, fixed in protocol.py): '--5' and '\u00b2'
    passed ``lstrip('-').isdigit()`` and then made int() raise."""
    assert protocol.parse_success(f"200 result=0 endpos={value}").endpos is None


def test_digit_from_code_never_raises() -> None:
    """Regression: a garbled ``200 result=99999999`` made chr() raise."""
    assert protocol.digit_from_code(0x110000) is None
    assert protocol.digit_from_code(300) is None


@pytest.mark.parametrize("token", ["1_0", "\u0661\u0662"])
def test_reply_number_is_ascii_only(token: str) -> None:
    assert protocol.parse_success(f"200 result={token}").number is None


def test_parse_success_refuses_other_lines() -> None:
    for line in ("200", "200 Result=1", "200 result", "HANGUP", ""):
        with pytest.raises(UnexpectedReply):
            protocol.parse_success(line)


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("200 result=0", "200"),
        ("200", "200"),
        ("100 result=0 Trying...", "100"),
        ("510 Invalid or unknown command", "510"),
        ("511 Command Not Permitted on a dead channel or intercept routine", "511"),
        ("520-Invalid command syntax.  Proper usage follows:", "520-"),
        ("520 Invalid command syntax.  Proper usage not available.", "520"),
        ("520 End of proper usage.", "520"),
        ("503 result=-2 Memory allocation failure", "other"),
        ("2000 result=0", "other"),
        ("HANGUP", "other"),
        ("", "other"),
    ],
)
def test_classify_status(line: str, status: str) -> None:
    assert protocol.classify_status(line) == status


def test_ends_usage_block_and_error_for() -> None:
    assert protocol.ends_usage_block("520 End of proper usage.")
    assert protocol.ends_usage_block("Usage: SAY DIGITS <number> <escape digits>520 End of proper usage.")
    assert not protocol.ends_usage_block("520 End of proper usage. ")
    assert isinstance(protocol.error_for("510", "510 Invalid or unknown command"), InvalidCommand)
    assert isinstance(protocol.error_for("511", "511 x"), DeadChannel)
    usage = protocol.error_for("520-", "520-Invalid", ["a", "b"])
    assert isinstance(usage, UsageError) and usage.usage == "a\nb"
    assert isinstance(protocol.error_for("other", "503 result=-2"), UnexpectedReply)


def test_decode_line_never_raises() -> None:
    """Bytes that are not UTF-8 (a Latin-1 caller name) become U+FFFD."""
    assert protocol.decode_line(b"200 result=1 (Caf\xe9)\n") == "200 result=1 (Caf\ufffd)"
    assert protocol.decode_line(b"200 result=1 (\xff\xfe)\n") == "200 result=1 (\ufffd\ufffd)"
    assert protocol.decode_line(b"200 result=1 (Selamat pagi, Pak Budi \xe2\x80\x93 ok)\n").endswith("\u2013 ok)")


def test_digit_from_code() -> None:
    assert [protocol.digit_from_code(c) for c in (55, 42, 35, 49, 65)] == ["7", "*", "#", "1", "A"]
    assert protocol.digit_from_code(0) is None
    assert protocol.digit_from_code(-1) is None
    assert protocol.digit_from_code(None) is None


# --------------------------------------------------------------------------- the session's reply reader (V2-V10)


async def test_v2_hangup_line_is_not_the_reply() -> None:
    session, _, writer = make_session(b"200 result=-1 endpos=1200\nHANGUP\n200 result=1 (42)\n")
    first = await session.command(b'STREAM FILE welcome ""\n', timeout=1)
    assert (first.number, first.endpos, session.hung_up) == (-1, 1200, False)
    second = await session.command(b"GET VARIABLE X\n", timeout=1)
    assert (second.result, second.data, session.hung_up) == ("1", "42", True)
    assert bytes(writer.data) == b'STREAM FILE welcome ""\nGET VARIABLE X\n'


async def test_v3_multi_line_usage_block() -> None:
    block = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Say a given digit string, returning early if any of the given DTMF digits are received.\n"
        b"\n"
        b"Returns 0 if playback completes without a digit being pressed.\n"
        b"520 End of proper usage.\n"
        b"200 result=0\n"
    )
    session, _, _ = make_session(block)
    with pytest.raises(UsageError) as caught:
        await session.command(b'SAY DIGITS *1 ""\n', timeout=1)
    assert caught.value.raw == "520-Invalid command syntax.  Proper usage follows:"
    assert caught.value.usage.startswith("Say a given digit string")
    assert caught.value.usage.endswith("without a digit being pressed.")
    assert session.usable
    assert (await session.command(b"NOOP\n", timeout=1)).result == "0"  # the stream is still in step


async def test_v4_glued_terminator_before_13_17() -> None:
    session, _, _ = make_session(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Usage: SAY DIGITS <number> <escape digits>520 End of proper usage.\n"
        b"200 result=0\n"
    )
    with pytest.raises(UsageError) as caught:
        await session.command(b'SAY DIGITS *1 ""\n', timeout=1)
    assert caught.value.usage == "Usage: SAY DIGITS <number> <escape digits>"
    assert (await session.command(b"NOOP\n", timeout=1)).result == "0"


async def test_v5_single_line_usage_error_does_not_wait_for_more() -> None:
    session, reader, _ = make_session(b"520 Invalid command syntax.  Proper usage not available.\n", eof=False)
    with pytest.raises(UsageError) as caught:
        await session.command(b'SAY DIGITS *1 ""\n', timeout=1)
    assert caught.value.usage == ""
    assert session.usable
    reader.feed_data(b"200 result=0\n")
    assert (await session.command(b"NOOP\n", timeout=1)).result == "0"


async def test_v6_gosub_provisional_reply() -> None:
    session, _, _ = make_session(b"100 result=0 Trying...\n200 result=0 Gosub complete\n")
    reply = await session.command(b'GOSUB "ivr-sub" "s" "1"\n', timeout=1)
    assert reply.raw == "200 result=0 Gosub complete"


@pytest.mark.parametrize(
    ("line", "result", "timed_out"),
    [
        (b"200 result= (timeout)\n", "", True),
        (b"200 result=12 (timeout)\n", "12", True),
        (b"200 result=\n", "", False),
        (b"200 result=-1\n", "-1", False),
        (b"200 result=1234\n", "1234", False),
    ],
)
async def test_v7_get_data_variants(line: bytes, result: str, timed_out: bool) -> None:
    session, _, _ = make_session(line)
    reply = await session.command(b'GET DATA "beep" 3000 4\n', timeout=1)
    assert reply.result == result
    assert (reply.data == "timeout") is timed_out


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos"),
    [
        (b"200 result=35 (dtmf) endpos=16000\n", "35", "dtmf", 16000),
        (b"200 result=0 (timeout) endpos=80000\n", "0", "timeout", 80000),
        (b"200 result=-1 (hangup) endpos=4000\n", "-1", "hangup", 4000),
        (b"200 result=-1 (writefile)\n", "-1", "writefile", None),
    ],
)
async def test_v8_record_file_variants(line: bytes, result: str, data: str, endpos: int | None) -> None:
    session, _, _ = make_session(line)
    reply = await session.command(b'RECORD FILE "/rec/x" "wav" "#" 5000\n', timeout=1)
    assert (reply.result, reply.data, reply.endpos) == (result, data, endpos)


async def test_v9_ascii_digit_codes() -> None:
    session, _, _ = make_session(b"200 result=42\n200 result=55\n200 result=0\n")
    codes = [(await session.command(b"WAIT FOR DIGIT 5000\n", timeout=1)).number for _ in range(3)]
    assert [protocol.digit_from_code(c) for c in codes] == ["*", "7", None]


async def test_v10_non_utf8_value() -> None:
    session, _, _ = make_session(b"200 result=1 (Caf\xe9)\n")
    reply = await session.command(b'GET VARIABLE "CALLERID(name)"\n', timeout=1)
    assert reply.data == "Caf\ufffd"


async def test_errors_are_typed() -> None:
    session, _, _ = make_session(
        b"510 Invalid or unknown command\n"
        b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"
        b"503 result=-2 Memory allocation failure\n"
    )
    with pytest.raises(InvalidCommand):
        await session.command(b"FOO BAR\n", timeout=1)
    with pytest.raises(DeadChannel):
        await session.command(b"ANSWER\n", timeout=1)
    assert session.hung_up
    with pytest.raises(UnexpectedReply) as caught:
        await session.command(b"GOSUB x y 1\n", timeout=1)
    assert caught.value.raw == "503 result=-2 Memory allocation failure"
    with pytest.raises(ConnectionLost):
        await session.command(b"NOOP\n", timeout=1)
    with pytest.raises(ConnectionLost):  # broken for good
        await session.command(b"NOOP\n", timeout=1)


async def test_eof_inside_a_reply_and_timeouts() -> None:
    session, _, _ = make_session(b"200 result=1 (no newline")
    with pytest.raises(ConnectionLost):
        await session.command(b"GET VARIABLE X\n", timeout=1)
    session, _, _ = make_session(b"520-Invalid command syntax.  Proper usage follows:\nhalf a block\n")
    with pytest.raises(ConnectionLost):
        await session.command(b"GET DATA\n", timeout=1)
    session, _, _ = make_session(eof=False)
    with pytest.raises(CommandTimeout):
        await session.command(b"NOOP\n", timeout=0.05)
    assert not session.usable
    with pytest.raises(ConnectionLost):
        await session.command(b"NOOP\n", timeout=1)


async def test_cancelled_command_does_not_desynchronise() -> None:
    """Regression (fixed in session.py): callhandler.py wraps the flow in
    ``asyncio.timeout(call_max_seconds)`` and then reports IVR_RESULT; a command
    cancelled while waiting must not leave its late reply for the next one."""
    session, reader, _ = make_session(eof=False)
    task = asyncio.create_task(session.command(b'GET DATA "menu" 5000 4\n', timeout=5))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reader.feed_data(b"200 result=12\n200 result=1\n")  # GET DATA's late reply, then SET VARIABLE's
    try:
        reply = await session.command(b'SET VARIABLE "IVR_RESULT" "FAILED"\n', timeout=1)
    except ConnectionLost:
        return  # acceptable: the session refuses to continue out of step
    assert reply.raw == "200 result=1", f"SET VARIABLE got the reply of GET DATA: {reply.raw!r}"


async def test_wait_for_hangup_line_treats_eof_as_the_hangup() -> None:
    simulator = SimulatedAsterisk(CallSetup(exit_on_hangup=True, sighup=False), keys=["h"])
    wire = await simulator.execute(b'STREAM FILE hello-world ""\n')
    assert wire == b"200 result=-1 endpos=5617\n" and simulator.finished  # then Asterisk closes
    session, _, _ = make_session(wire)
    assert (await session.command(b'STREAM FILE "hello-world" ""\n', timeout=1)).number == -1
    assert await session.wait_for_hangup_line(0.5) is True
    assert session.hung_up


REPLY_PIECES = st.sampled_from(
    [
        b"200 result=",
        b"200 result=0",
        b"200 result=-1 endpos=20000",
        b"200 result=1 (",
        b")",
        b" (timeout)",
        b" endpos=",
        b"HANGUP",
        b"100 result=0 Trying...",
        b"510 Invalid or unknown command",
        b"511 Command Not Permitted on a dead channel or intercept routine",
        b"520-Invalid command syntax.  Proper usage follows:",
        b"520 End of proper usage.",
        b"520 Invalid command syntax.  Proper usage not available.",
        b"503 result=-2 Memory allocation failure",
        b"\xe9\xff",
        b"\n",
        b"\r",
        b" ",
        b"9",
    ]
)
REPLY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(REPLY_PIECES, max_size=30).map(b"".join),
    st.lists(st.tuples(REPLY_PIECES, st.binary(max_size=8)), max_size=12).map(
        lambda pairs: b"".join(a + b + b"\n" for a, b in pairs)
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPLY_BYTES)
def test_random_reply_bytes_only_raise_typed_errors(data: bytes) -> None:
    """Whatever Asterisk (or a broken peer) sends, Session.command returns a 200
    Reply or raises one of the typed errors; a HANGUP line is never a reply."""

    async def run() -> None:
        session, _, _ = make_session(data)
        for _ in range(5):
            try:
                reply = await session.command(b"NOOP\n", timeout=1)
            except (AGIError, ConnectionLost, CommandTimeout):
                if not session.usable:
                    return
                continue
            assert isinstance(reply, Reply)
            assert reply.raw.startswith("200")
            assert protocol.classify_status(reply.raw) == "200"

    asyncio.run(run())


# --------------------------------------------------------------------------- environment (V1, V11)


async def test_v11_routing_from_the_environment() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"agi_network: yes\n"
        b"agi_network_script: ivr/main?lang=en&retry=2\n"
        b"agi_request: agi://10.0.0.5/ivr/main?lang=en&retry=2\n"
        b"agi_callerid: unknown\n"
        b"agi_accountcode: \n"
        b"agi_arg_1: 5551234\n"
        b"\n"
        b"HANGUP\n"
    )
    environment = await read_environment(reader, timeout=1)
    assert environment.script == "ivr/main"
    assert environment.options == {"lang": "en", "retry": "2"}
    assert environment.args == ("5551234",)
    assert environment.get("accountcode", "missing") == ""
    assert environment.get("callerid") == "unknown"
    assert await reader.readline() == b"HANGUP\n"  # what follows the block stays in the stream


async def test_environment_without_script_and_limits() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"agi_network: yes\nagi_request: agi://127.0.0.1:4573\n\n")
    assert (await read_environment(reader, timeout=1)).script == ""
    reader = asyncio.StreamReader()
    reader.feed_data(b"agi_arg_1: " + b"x" * 70000 + b"\n\n")
    with pytest.raises(BadEnvironment):
        await read_environment(reader, timeout=1)
    reader = asyncio.StreamReader()
    reader.feed_data(b"".join(b"agi_arg_%d: x\n" % n for n in range(1, 300)) + b"\n")
    with pytest.raises(BadEnvironment):
        await read_environment(reader, timeout=1)
    reader = asyncio.StreamReader()
    reader.feed_data(b"agi_network: yes\n")
    with pytest.raises(TimeoutError):
        await read_environment(reader, timeout=0.05)


async def test_v1_early_eof_in_the_handshake_keeps_the_server_responsive() -> None:
    """V1: ``agi_network: yes\\nagi_network_script: ivr\\n`` then close. The
    server must drop the peer at once, without spinning, and go on serving."""
    served: list[str] = []

    async def flow(session: Session) -> None:
        served.append(session.environment.script)
        await session.command(protocol.encode_command("SET VARIABLE", "IVR_RESULT", "OK"), timeout=5)

    server = FastAGIServer({"main": flow}, host="127.0.0.1", port=0, max_sessions=4, header_timeout=2)
    await server.start()
    try:
        reader = asyncio.StreamReader()
        reader.feed_data(b"agi_network: yes\nagi_network_script: ivr\n")
        reader.feed_eof()
        with pytest.raises(BadEnvironment):
            await read_environment(reader, timeout=1)

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        try:
            started = time.monotonic()
            for junk in (b"agi_network: yes\nagi_network_script: ivr\n", b"\x00\xffjunk", b""):
                peer = await FastAGIPeer.connect("127.0.0.1", server.bound_port)
                await peer.send(junk)
                peer.half_close()
                assert await peer.read_until_eof(timeout=2) == b""  # dropped quietly
                await peer.close()
            await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
        assert ticks >= int(elapsed / 0.01) // 3, "the event loop was starved"
        record = await place_call("127.0.0.1", server.bound_port, script="main", timeout=5)
        assert record.result == "OK" and served == ["main"]
    finally:
        await server.stop(grace=1)
