"""The simulated Asterisk (``ivr.simulator``): environment, caller scripts,
hangup modes, dial outcomes, recordings, audio checks, and whole calls over TCP
against the real FastAGI server (``ivr.agi.server``).

The byte-for-byte agreement with the real Asterisk is in test_transcripts.py;
these tests pin the behaviour the transcripts do not show directly. Samples::

    keys=["2#5"]   >> STREAM FILE "/p/welcome" "123"   << 200 result=50 endpos=8000
                   >> GET DATA "/p/menu" 3000 4        << 200 result=          ('#' first)
                   >> WAIT FOR DIGIT 1000              << 200 result=53        (type-ahead '5')
"""

from __future__ import annotations

import asyncio
import re
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi import protocol
from ivr.agi.server import FastAGIServer
from ivr.agi.session import ConnectionLost, Session, read_environment
from ivr.simulator import (
    AGI_BUF_LEN,
    CallSetup,
    CallTimeout,
    DigitsReturned,
    FastAGIPeer,
    HungUp,
    KeyGroup,
    KeysPressed,
    Prompt,
    Recorded,
    SimulatedAsterisk,
    parse_key_group,
    place_call,
    wav_bytes,
)

ENV_KEYS = [
    "agi_network",
    "agi_network_script",
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
    "agi_arg_1",
    "agi_arg_2",
]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    """Two 8 kHz prompts with their sidecar texts, as the TTS cache writes them."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "welcome.wav").write_bytes(wav_bytes(b"\1\0" * 16000))  # 2.0 s
    (folder / "welcome.txt").write_text("Selamat datang di Call Center Protokol.", "utf-8")
    (folder / "menu.wav").write_bytes(wav_bytes(b"\1\0" * 8000))  # 1.0 s
    (folder / "menu.txt").write_text("Tekan 1 untuk pengaduan, tekan 2 untuk informasi.", "utf-8")
    return folder


def sim(keys: list[str] | None = None, **kwargs: Any) -> SimulatedAsterisk:
    setup = kwargs.pop("setup", CallSetup())
    return SimulatedAsterisk(setup, keys=keys, **kwargs)


async def run(simulator: SimulatedAsterisk, *lines: bytes) -> list[bytes]:
    return [await simulator.execute(line) for line in lines]


def stream(path: Path | str, escape: str = "") -> bytes:
    return protocol.encode_command("STREAM FILE", str(path), escape)


def get_data(path: Path | str, timeout: int = 3000, digits: int = 4) -> bytes:
    return protocol.encode_command("GET DATA", str(path), raw=[str(timeout), str(digits)])


# --------------------------------------------------------------------------- environment


async def test_environment_block_format() -> None:
    simulator = SimulatedAsterisk(
        CallSetup(script="main", options={"lang": "id"}, args=("first-arg", "second arg"), request_host="10.0.0.1:4573")
    )
    block = simulator.environment()
    assert block.endswith(b"\n\n")
    lines = block.decode().split("\n")[:-2]
    assert [line.split(":", 1)[0] for line in lines] == ENV_KEYS
    assert lines[:3] == [
        "agi_network: yes",
        "agi_network_script: main?lang=id",
        "agi_request: agi://10.0.0.1:4573/main?lang=id",
    ]
    assert "agi_accountcode: " in lines and "agi_version: 22.10.1" in lines
    assert "agi_callerid: unknown" in lines and "agi_calleridname: unknown" in lines
    assert "agi_callingpres: 67" in lines and "agi_enhanced: 0.0" in lines
    assert re.fullmatch(r"agi_channel: Local/main@ivr-in-[0-9a-f]{8};2", lines[3])
    assert re.fullmatch(r"agi_uniqueid: \d{10}\.\d+", lines[6])

    reader = asyncio.StreamReader()
    reader.feed_data(block)
    environment = await read_environment(reader, timeout=1)
    assert (environment.script, environment.options, environment.args) == (
        "main",
        {"lang": "id"},
        ("first-arg", "second arg"),
    )
    assert environment.get("accountcode", "missing") == ""


def test_environment_without_options_and_uniqueids() -> None:
    first, second = SimulatedAsterisk(CallSetup(script="menu")), SimulatedAsterisk(CallSetup(script="menu"))
    assert b"agi_network_script: menu\n" in first.environment()
    assert b"agi_request: agi://127.0.0.1:4573/menu\n" in first.environment()
    assert first.uniqueid != second.uniqueid and first.channel != second.channel


@pytest.mark.parametrize(
    ("caller_id", "name", "presentation", "env", "pres", "all_"),
    [
        (
            "081234567890",
            "Budi Santoso",
            None,
            b"agi_callerid: 081234567890\nagi_calleridname: Budi Santoso\nagi_callingpres: 0\n",
            "allowed_not_screened",
            '"Budi Santoso" <081234567890>',
        ),
        (
            None,
            None,
            None,
            b"agi_callerid: unknown\nagi_calleridname: unknown\nagi_callingpres: 67\n",
            "unavailable",
            '"" <>',
        ),
        (None, None, 35, b"agi_callerid: unknown\nagi_calleridname: unknown\nagi_callingpres: 35\n", "prohib", '"" <>'),
    ],
)
async def test_caller_id_variants(
    caller_id: str | None, name: str | None, presentation: int | None, env: bytes, pres: str, all_: str
) -> None:
    simulator = sim(setup=CallSetup(caller_id=caller_id, caller_name=name, presentation=presentation))
    assert env in simulator.environment()
    replies = await run(
        simulator,
        b"GET FULL VARIABLE ${CALLERID(pres)}\n",
        b"GET FULL VARIABLE ${CALLERID(all)}\n",
        b"GET VARIABLE callerid(num)\n",  # names are case-sensitive
    )
    assert replies == [f"200 result=1 ({pres})\n".encode(), f"200 result=1 ({all_})\n".encode(), b"200 result=0\n"]


# --------------------------------------------------------------------------- caller script


def test_parse_key_group() -> None:
    assert parse_key_group("") == KeyGroup("digits", raw="")
    assert parse_key_group("05122026#").digits == "05122026#"
    assert parse_key_group("5@3.3") == KeyGroup("digits", digits="5", at=3.3, raw="5@3.3")
    assert parse_key_group("h") == KeyGroup("hangup", raw="h")
    assert parse_key_group("h!") == KeyGroup("hangup_idle", raw="h!")
    assert parse_key_group("rec:5") == KeyGroup("record", seconds=5.0, then="#", raw="rec:5")
    assert parse_key_group("rec:1.5:h").then == "h"
    assert parse_key_group("rec:2:s").then == "s"
    assert parse_key_group("rec:2:1").then == "1"
    for bad in ("x", "12a-", "rec:", "rec:five", "rec:1:q", "h@", "1@x"):
        with pytest.raises(ValueError):
            parse_key_group(bad)


async def test_escape_digit_then_type_ahead(prompts: Path) -> None:
    """agi-typeahead.txt: the first key stops the prompt, the rest reach the next command."""
    simulator = sim(["2#5"])
    replies = await run(
        simulator, stream(prompts / "welcome", "123"), get_data(prompts / "menu"), b"WAIT FOR DIGIT 1000\n"
    )
    # 1 s into the 2 s prompt (KEY_DELAY), 8000 samples; '#' first gives an empty GET DATA.
    assert replies == [b"200 result=50 endpos=8000\n", b"200 result=\n", b"200 result=53\n"]
    assert simulator.record.prompts[0].text == "Selamat datang di Call Center Protokol."
    assert simulator.record.prompts[0].interrupted


async def test_keys_outside_the_escape_set_are_lost(prompts: Path) -> None:
    simulator = sim(["98"])
    assert await simulator.execute(stream(prompts / "welcome", "123")) == b"200 result=0 endpos=16000\n"
    lost = [e for e in simulator.record.events if isinstance(e, KeysPressed)]
    assert lost and lost[0].lost and lost[0].keys == "98"


async def test_non_interruptible_prompt_loses_type_ahead(prompts: Path) -> None:
    simulator = sim(["12#9"])
    replies = await run(simulator, get_data(prompts / "menu"), stream(prompts / "welcome"), b"WAIT FOR DIGIT 2000\n")
    # the 9 is lost during the "" prompt; the script then runs out: the caller hangs up
    assert replies == [b"200 result=12\n", b"200 result=0 endpos=16000\n", b"200 result=-1\nHANGUP\n"]
    assert any(isinstance(e, KeysPressed) and e.lost and e.keys == "9" for e in simulator.record.events)
    assert any("ran out" in w for w in simulator.record.warnings)


@pytest.mark.parametrize(
    ("keys", "command", "reply"),
    [
        (["1234"], b"GET DATA beep 3000 4\n", b"200 result=1234\n"),
        (["12"], b"GET DATA beep 3000 4\n", b"200 result=12 (timeout)\n"),
        ([""], b"GET DATA beep 3000 4\n", b"200 result= (timeout)\n"),
        (["12#"], b"GET DATA beep 3000 4\n", b"200 result=12\n"),
        (["#12"], b"GET DATA beep 3000 4\n", b"200 result=\n"),
        (["1*2#"], b"GET DATA beep\n", b"200 result=1*2\n"),
        (["123456"], b"GET DATA beep 3000 2\n", b"200 result=12\n"),
        (["1"], b"GET DATA beep 3000 0\n", b"200 result=-1\n"),
        (["1"], b'GET DATA "" 3000 1\n', b"200 result=1\n"),
        (["7"], b"WAIT FOR DIGIT 5000\n", b"200 result=55\n"),
        (["*"], b"WAIT FOR DIGIT 5000\n", b"200 result=42\n"),
        ([""], b"WAIT FOR DIGIT 5000\n", b"200 result=0\n"),
        ([""], b"WAIT FOR DIGIT -1\n", b"200 result=-1\nHANGUP\n"),
        (["3"], b'GET OPTION beep "123" 2000\n', b"200 result=51 endpos=1720\n"),  # half the beep
        (["9"], b'GET OPTION beep "123" 2000\n', b"200 result=0 endpos=3440\n"),
        ([""], b'GET OPTION beep "123" 2000\n', b"200 result=0 endpos=3440\n"),
        (["5"], b'CONTROL STREAM FILE hello-world "5"\n', b"200 result=53 endpos=702\n"),
        ([""], b'CONTROL STREAM FILE hello-world "5"\n', b"200 result=0 endpos=-1\n"),
        ([], b'SAY DIGITS 0812 ""\n', b"200 result=0\n"),
        ([], b'SAY NUMBER 1234 ""\n', b"200 result=0\n"),
        ([], b'SAY ALPHA abc ""\n', b"200 result=0\n"),
        ([], b'SAY DATETIME 1700000000 "" "ABdY" Asia/Jakarta\n', b"200 result=0\n"),
    ],
)
async def test_dtmf_commands(keys: list[str], command: bytes, reply: bytes) -> None:
    simulator = sim(keys)
    assert await simulator.execute(command) == reply


async def test_get_data_logs_what_the_ivr_got(prompts: Path) -> None:
    simulator = sim(["05122026#"])
    assert await simulator.execute(get_data(prompts / "menu", 5000, 8)) == b"200 result=05122026\n"
    got = [e for e in simulator.record.events if isinstance(e, DigitsReturned)]
    assert got == [DigitsReturned(at=got[0].at, command="GET DATA", digits="05122026", timed_out=False)]


# --------------------------------------------------------------------------- hangups


async def test_hangup_during_a_prompt_and_the_dead_channel(prompts: Path) -> None:
    simulator = sim(["h@0.5"])
    assert await simulator.execute(stream(prompts / "welcome")) == b"200 result=-1 endpos=4000\nHANGUP\n"
    dead_ok = await run(
        simulator,
        b"GET VARIABLE CHANNEL\n",
        b"GET FULL VARIABLE ${HANGUPCAUSE}\n",
        b'SET VARIABLE AFTER "yes"\n',
        b'VERBOSE "still talking after hangup" 1\n',
        b"DATABASE PUT ivr k v\n",
        b"DATABASE GET ivr k\n",
        b"EXEC Playback beep\n",
        b"NOOP\n",
    )
    assert dead_ok == [
        f"200 result=1 ({simulator.channel})\n".encode(),
        b"200 result=1 (16)\n",
        b"200 result=1\n",
        b"200 result=1\n",
        b"200 result=1\n",
        b"200 result=1 (v)\n",
        b"200 result=0\n",
        b"200 result=0\n",
    ]
    refused = await run(
        simulator,
        b"ANSWER\n",
        b"CHANNEL STATUS\n",
        stream(prompts / "welcome"),
        b"WAIT FOR DIGIT 1000\n",
        b"GET DATA beep 1000 1\n",
        b"HANGUP\n",
        b'SAY NUMBER 1 ""\n',
        b'RECORD FILE /tmp/x wav "#" 1000\n',
    )
    assert set(refused) == {b"511 Command Not Permitted on a dead channel or intercept routine\n"}
    assert simulator.end_of_session() == b"HANGUP\n"
    record = simulator.record
    assert (record.hung_up, record.hangup_by, record.agi_status) == (True, "caller", "HANGUP")
    assert next(e for e in record.events if isinstance(e, HungUp)).during == "STREAM FILE"


async def test_hangup_skips_commands_that_take_no_time(prompts: Path) -> None:
    simulator = sim(["h"])
    replies = await run(simulator, b"ANSWER\n", b'SET VARIABLE X "1"\n', stream(prompts / "menu"))
    assert replies == [b"200 result=0\n", b"200 result=1\n", b"200 result=-1 endpos=4000\nHANGUP\n"]


async def test_hangup_after_the_command_ends(prompts: Path) -> None:
    simulator = sim(["h@5"])
    assert await simulator.execute(stream(prompts / "welcome")) == b"200 result=0 endpos=16000\nHANGUP\n"
    assert simulator.record.agi_status == "HANGUP"


async def test_hangup_while_idle() -> None:
    simulator = sim(["", "h!"])
    assert simulator.idle() == b""
    assert await simulator.execute(b"WAIT FOR DIGIT 100\n") == b"200 result=0\n"
    assert simulator.idle() == b"HANGUP\n"
    assert simulator.idle() == b""
    assert await simulator.execute(b"ANSWER\n") == b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert [e.during for e in simulator.record.events if isinstance(e, HungUp)] == [None]


async def test_exit_on_hangup(prompts: Path) -> None:
    simulator = sim(["h"], setup=CallSetup(exit_on_hangup=True))
    assert await simulator.execute(stream(prompts / "welcome")) == b"200 result=-1 endpos=8000\nHANGUP\nHANGUP\n"
    assert simulator.finished
    assert simulator.end_of_session() == b""
    idle = sim(["h!"], setup=CallSetup(exit_on_hangup=True))
    assert idle.idle() == b"HANGUP\nHANGUP\n" and idle.finished


async def test_no_sighup(prompts: Path) -> None:
    simulator = sim(["h"], setup=CallSetup(sighup=False))
    assert await simulator.execute(stream(prompts / "welcome")) == b"200 result=-1 endpos=8000\n"
    assert await simulator.execute(b"ANSWER\n") == (
        b"511 Command Not Permitted on a dead channel or intercept routine\n"
    )
    assert simulator.end_of_session() == b""


async def test_the_ivr_hangs_up() -> None:
    simulator = sim()
    assert await simulator.execute(b"HANGUP\n") == b"200 result=1\nHANGUP\n"
    assert await simulator.execute(b"HANGUP\n") == b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert (simulator.record.hangup_by, simulator.end_of_session()) == ("ivr", b"HANGUP\n")
    other = sim()
    assert await other.execute(b"HANGUP Local/nobody@nowhere-00000000;2\n") == b"200 result=-1\n"
    assert await other.execute(b"CHANNEL STATUS Local/nobody@nowhere-00000000;2\n") == b"200 result=-1\n"


# --------------------------------------------------------------------------- errors and framing


async def test_invalid_commands_and_usage() -> None:
    simulator = sim()
    replies = await run(
        simulator,
        b"FOO BAR\n",
        b"\n",
        b"NOOP\r\n",
        b"GET\n",
        b"GET VARIABLE CHANNEL\r\n",
        b"answer\n",
        b"GET   VARIABLE   CHANNEL\n",
    )
    assert replies[:4] == [b"510 Invalid or unknown command\n"] * 4
    assert replies[4:] == [b"200 result=0\n", b"200 result=0\n", f"200 result=1 ({simulator.channel})\n".encode()]
    usage = await simulator.execute(b'SAY DIGITS *123 ""\n')
    assert usage.startswith(b"520-Invalid command syntax.  Proper usage follows:\nSay a given digit string")
    assert usage.endswith(b"on error/hangup.\n520 End of proper usage.\n")
    assert (await simulator.execute(b"SET VARIABLE X\n")).splitlines()[1] == b"Sets a variable to the current channel."
    assert await simulator.execute(b"GOSUB ivr-sub s 1\n") == b"100 result=0 Trying...\n200 result=0 Gosub complete\n"


async def test_failure_line_ends_the_agi() -> None:
    simulator = sim()
    assert await simulator.execute(b"failure\n") == b"HANGUP\n"
    assert simulator.finished and simulator.record.agi_status == "FAILURE"
    assert await simulator.execute(b"NOOP\n") == b""


async def test_argument_overflow_is_flagged() -> None:
    simulator = sim()
    line = b"VERBOSE" + b' "x"' * 127 + b"\n"  # 128 words: more than protocol.encode_command allows
    assert await simulator.execute(line) == b"200 result=1\n"
    assert any("overruns its argv" in w for w in simulator.record.warnings)


class NullWriter:
    def write(self, data: bytes) -> None:
        return None

    async def drain(self) -> None:
        return None


async def test_peer_reads_commands_like_fgets() -> None:
    reader = asyncio.StreamReader()
    peer = FastAGIPeer(reader, cast(asyncio.StreamWriter, NullWriter()))
    long_line = b"VERBOSE " + b"x" * 10000 + b"\n"
    reader.feed_data(long_line)
    first = await peer.read_command()
    assert first is not None and len(first) == AGI_BUF_LEN - 1 and not first.endswith(b"\n")
    assert await peer.read_command() == long_line[AGI_BUF_LEN - 1 :]
    reader.feed_data(b"NOOP")  # no newline, then EOF: Asterisk still runs it
    reader.feed_eof()
    assert await peer.read_command() == b"NOOP"
    assert await peer.read_command() is None


async def test_peer_stalls_on_pipelined_commands() -> None:
    """PROTOCOL.md A6: a second command in the same write waits in Asterisk's
    stdio buffer until more bytes (or EOF) arrive."""
    reader = asyncio.StreamReader()
    peer = FastAGIPeer(reader, cast(asyncio.StreamWriter, NullWriter()))
    reader.feed_data(b"NOOP\nANSWER\n")
    assert await peer.read_command() == b"NOOP\n"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(peer.read_command(), 0.05)
    assert peer.pipelined == 1
    reader.feed_data(b"NOOP\n")
    assert await peer.read_command() == b"ANSWER\n"


# --------------------------------------------------------------------------- variables, dial, exec


async def test_variables_and_functions() -> None:
    simulator = sim(setup=CallSetup(channel_vars={"TICKET": "T-42"}, caller_id="0812", caller_name="Siti"))
    replies = await run(
        simulator,
        b'SET VARIABLE IVR_RESULT "OK"\n',
        b'EXEC Set "ONE=1"\n',
        b"GET VARIABLE ONE\n",
        b"GET VARIABLE TICKET\n",
        b'GET FULL VARIABLE "${TICKET:2}/${ONE}/${CALLERID(name)}/${LEN(${TICKET})}"\n',
        b"GET FULL VARIABLE ${NOPE}\n",
        b"GET VARIABLE NOPE\n",
        b"SET VARIABLE CHANNEL(language) id\n",
        b"GET VARIABLE CHANNEL(language)\n",
        b'SET VARIABLE LONG "' + b"x" * 1500 + b'"\n',
        b"GET VARIABLE LONG\n",
    )
    assert replies[:9] == [
        b"200 result=1\n",
        b"200 result=0\n",
        b"200 result=1 (1)\n",
        b"200 result=1 (T-42)\n",
        b"200 result=1 (42/1/Siti/4)\n",
        b"200 result=1 ()\n",
        b"200 result=0\n",
        b"200 result=1\n",
        b"200 result=1 (id)\n",
    ]
    assert replies[10] == b"200 result=1 (" + b"x" * 1023 + b")\n"  # char tempstr[1024]
    record = simulator.record
    assert record.result == "OK"
    assert record.variables["ONE"] == "1" and record.variables["CHANNEL(language)"] == "id"


@pytest.mark.parametrize(
    ("outcomes", "command", "reply", "variables"),
    [
        (
            {"Local/100@officer": "ANSWER"},
            b"EXEC Dial Local/100@officer,10\n",
            b"200 result=-1\n",
            {
                "DIALSTATUS": "ANSWER",
                "HANGUPCAUSE": "16",
                "DIALEDTIME": "2",
                "ANSWEREDTIME": "2",
                "DIALEDPEERNAME": "Local/100@officer-00000016;1",
            },
        ),
        (
            {"100@officer": "ANSWER:30"},
            b'EXEC "Dial" "Local/100@officer,20,g"\n',
            b"200 result=0\n",
            {"DIALSTATUS": "ANSWER", "ANSWEREDTIME": "30"},
        ),
        (
            {"Local/101@officer": "NOANSWER"},
            b"EXEC Dial Local/101@officer,10\n",
            b"200 result=0\n",
            {"DIALSTATUS": "NOANSWER", "HANGUPCAUSE": "0", "DIALEDTIME": "", "ANSWEREDTIME": "", "DIALEDPEERNAME": ""},
        ),
        ({"Local/102@officer": "BUSY"}, b"EXEC Dial Local/102@officer,10\n", b"200 result=0\n", {"DIALSTATUS": "BUSY"}),
        ({}, b"EXEC Dial Local/199@officer,10\n", b"200 result=0\n", {"DIALSTATUS": "CHANUNAVAIL"}),
        ({"*": "CONGESTION"}, b"EXEC Dial Local/103@officer,10\n", b"200 result=0\n", {"DIALSTATUS": "CONGESTION"}),
        (
            {"Local/102@officer": "BUSY", "Local/103@officer": "CONGESTION"},
            b"EXEC Dial Local/103@officer&Local/102@officer&Local/199@officer,10\n",
            b"200 result=0\n",
            {"DIALSTATUS": "BUSY"},
        ),
    ],
)
async def test_dial_outcomes(outcomes: dict[str, str], command: bytes, reply: bytes, variables: dict[str, str]) -> None:
    simulator = sim(dial_outcomes=outcomes, setup=CallSetup(channel="Local/dial_answer@ivr-in-00000015;2"))
    assert await simulator.execute(command) == reply
    for name, value in variables.items():
        assert await simulator.execute(f"GET VARIABLE {name}\n".encode()) == f"200 result=1 ({value})\n".encode()
    assert len(simulator.record.dial_attempts) == 1


async def test_dial_attempts_are_recorded_and_cancelled() -> None:
    simulator = sim(["h@3"], dial_outcomes={"Local/101@officer": "NOANSWER"})
    assert await simulator.execute(b"EXEC Dial Local/101@officer,10,tT\n") == b"200 result=-1\nHANGUP\n"
    attempt = simulator.record.dial_attempts[0]
    assert (attempt.targets, attempt.timeout, attempt.options, attempt.status) == (
        ("Local/101@officer",),
        "10",
        "tT",
        "CANCEL",
    )
    assert await simulator.execute(b"EXEC Dial Local/100@officer,10\n") == b"200 result=-1\n"  # dead: CANCEL
    assert [a.status for a in simulator.record.dial_attempts] == ["CANCEL", "CANCEL"]
    with pytest.raises(ValueError, match="not ANSWER"):
        await sim(dial_outcomes={"*": "MAYBE"}).execute(b"EXEC Dial Local/1@x\n")


async def test_exec_applications(prompts: Path) -> None:
    simulator = sim()
    replies = await run(
        simulator,
        b"EXEC NoSuchApplication foo\n",
        b"EXEC MixMonitor x.wav\n",
        protocol.encode_command("EXEC", "Playback", f"{prompts / 'welcome'}&{prompts / 'menu'}"),
        b"GET VARIABLE PLAYBACKSTATUS\n",
        b"EXEC Playback does-not-exist\n",
        b"GET VARIABLE PLAYBACKSTATUS\n",
        b"EXEC Wait 2 extra words\n",
        b"EXEC\n",
    )
    assert replies[:7] == [
        b"200 result=-2\n",
        b"200 result=0\n",
        b"200 result=0\n",
        b"200 result=1 (SUCCESS)\n",
        b"200 result=0\n",
        b"200 result=1 (FAILED)\n",
        b"200 result=0\n",
    ]
    assert replies[7].startswith(b"520-")
    assert [p.text for p in simulator.record.prompts if p.found] == [
        "Selamat datang di Call Center Protokol.",
        "Tekan 1 untuk pengaduan, tekan 2 untuk informasi.",
    ]
    assert [str(p) for p in simulator.record.audio_problems] == [
        "EXEC Playback does-not-exist: File does-not-exist does not exist in any format Asterisk plays"
    ]
    assert any("MixMonitor" in w for w in simulator.record.warnings)
    assert any("ignored by Asterisk" in w for w in simulator.record.warnings)


# --------------------------------------------------------------------------- recordings


def record_command(target: Path, limit: int = 10000, escape: str = "#", silence: int | None = None) -> bytes:
    raw = [str(limit), "0", "BEEP"] + ([f"s={silence}"] if silence is not None else [])
    return protocol.encode_command("RECORD FILE", str(target), "wav", escape, raw=raw)


def read_wav(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path)) as handle:
        return handle.getframerate(), handle.getnchannels(), handle.getsampwidth(), handle.getnframes()


@pytest.mark.parametrize(
    ("keys", "limit", "silence", "reply", "ended_by"),
    [
        (["rec:5"], 10000, None, b"200 result=35 (dtmf) endpos=38400\n", "dtmf"),
        (["#@2"], 10000, None, b"200 result=35 (dtmf) endpos=14400\n", "dtmf"),
        (["rec:5:h"], 10000, None, b"200 result=-1 (hangup) endpos=40000\nHANGUP\n", "hangup"),
        (["rec:16"], 5000, None, b"200 result=0 (timeout) endpos=39200\n", "timeout"),
        (["rec:2:s"], 10000, 3, b"200 result=5000 (timeout) endpos=24000\n", "silence"),
        ([""], 5000, None, b"200 result=0 (timeout) endpos=39200\n", "timeout"),
        ([], 5000, None, b"200 result=-1 (hangup) endpos=0\nHANGUP\n", "hangup"),
    ],
)
async def test_record_file(
    tmp_path: Path, keys: list[str], limit: int, silence: int | None, reply: bytes, ended_by: str
) -> None:
    simulator = sim(keys)
    assert await simulator.execute(record_command(tmp_path / "msg", limit, silence=silence)) == reply
    endpos = int(re.search(rb"endpos=(\d+)", reply).group(1))  # type: ignore[union-attr]
    assert read_wav(tmp_path / "msg.wav") == (8000, 1, 2, endpos)
    recorded = [e for e in simulator.record.events if isinstance(e, Recorded)]
    assert recorded[0].ended_by == ended_by and recorded[0].path == str(tmp_path / "msg.wav")
    assert simulator.record.prompts[0].path == "beep"


async def test_record_file_failures(tmp_path: Path) -> None:
    simulator = sim(["rec:1", "rec:1"])
    assert await simulator.execute(record_command(tmp_path / "missing" / "msg")) == b"200 result=-1 (writefile)\n"
    assert "does not exist" in simulator.record.audio_problems[0].reason
    assert await simulator.execute(b'RECORD FILE relative wav "#" 1000\n') == b"200 result=-1 (writefile)\n"
    assert await simulator.execute(b"RECORD FILE x wav\n") == await sim().execute(b"RECORD FILE x wav\n")
    assert (await simulator.execute(b"RECORD FILE x wav\n")).startswith(b"520-")
    assert simulator.record.agi_status == "FAILURE"
    mismatch = sim(["rec:3"])
    assert await mismatch.execute(b"GET DATA beep 3000 4\n") == b"200 result= (timeout)\n"
    assert any("record group" in w for w in mismatch.record.warnings)


# --------------------------------------------------------------------------- audio checks


async def test_audio_checks(tmp_path: Path, prompts: Path) -> None:
    (tmp_path / "loud.wav").write_bytes(wav_bytes(b"\0\0" * 100, rate=22050))
    (tmp_path / "wide.wav16").write_bytes(wav_bytes(b"\0\0" * 16000, rate=16000))
    (tmp_path / "raw.sln").write_bytes(b"\0\0" * 4000)
    (tmp_path / "odd.sln8").write_bytes(b"\0\0" * 4000)
    (tmp_path / "untitled.wav").write_bytes(wav_bytes(b"\0\0" * 800))
    simulator = sim(stock_sounds=False)
    replies = await run(
        simulator,
        stream(prompts / "welcome"),
        stream(f"{prompts / 'welcome'}.wav"),
        stream(tmp_path / "loud"),
        stream(tmp_path / "wide"),
        stream(tmp_path / "raw"),
        stream(tmp_path / "odd"),
        stream(tmp_path / "untitled"),
        stream("beep"),
        get_data(tmp_path / "nothing"),
    )
    assert replies == [
        b"200 result=0 endpos=16000\n",
        b"200 result=-1 endpos=0\n",
        b"200 result=-1 endpos=0\n",
        b"200 result=0 endpos=16000\n",  # 1 s at 16 kHz: Asterisk plays .wav16
        b"200 result=0 endpos=4000\n",
        b"200 result=-1 endpos=0\n",
        b"200 result=0 endpos=800\n",
        b"200 result=-1 endpos=0\n",
        b"200 result=-1\n",
    ]
    problems: dict[str, str] = {}
    for problem in simulator.record.audio_problems:
        problems[Path(problem.path).name] = problems.get(Path(problem.path).name, "") + problem.reason + "; "
    assert "passed with its extension" in problems["welcome.wav"]
    assert "Unexpected frequency mismatch 22050 (expecting 8000)" in problems["loud"]
    assert "16 kHz" in problems["wide"]
    assert "found only odd.sln8" in problems["odd"]
    assert "does not exist" in problems["beep"] and "does not exist" in problems["nothing"]
    assert set(problems) == {"welcome.wav", "loud", "wide", "odd", "beep", "nothing"}
    assert [p.text for p in simulator.record.prompts if p.found][-1] == "untitled"  # no sidecar: the file name
    assert simulator.record.agi_status == "FAILURE"  # a failed STREAM FILE flags the AGI (agi-stream.txt)


async def test_relative_names_use_the_sounds_folder(tmp_path: Path) -> None:
    (tmp_path / "id").mkdir()
    (tmp_path / "id" / "halo.wav").write_bytes(wav_bytes(b"\0\0" * 8000))
    (tmp_path / "id" / "halo.txt").write_text("Halo!", "utf-8")
    simulator = sim(sounds_dir=tmp_path, setup=CallSetup(language="id"))
    assert await simulator.execute(b'STREAM FILE halo ""\n') == b"200 result=0 endpos=8000\n"
    assert await simulator.execute(b'STREAM FILE hello-world ""\n') == b"200 result=0 endpos=11234\n"  # stock
    assert simulator.record.spoken == ["Halo!", "Hello world."]
    assert simulator.record.audio_problems == []


# --------------------------------------------------------------------------- whole calls over TCP

Flow = Callable[[Session], Awaitable[None]]


@pytest.fixture
async def fastagi() -> AsyncIterator[Callable[[dict[str, Flow]], Awaitable[int]]]:
    servers: list[FastAGIServer] = []

    async def start(routes: dict[str, Flow]) -> int:
        server = FastAGIServer(routes, host="127.0.0.1", port=0, max_sessions=8, header_timeout=2)
        await server.start()
        servers.append(server)
        return server.bound_port

    yield start
    for server in servers:
        await server.stop(grace=1)


def menu_flow(prompts: Path) -> Flow:
    async def flow(session: Session) -> None:
        await session.command(b"ANSWER\n", timeout=5)
        played = await session.command(protocol.encode_command("STREAM FILE", str(prompts / "welcome"), ""), 5)
        if played.number == -1 and await session.wait_for_hangup_line(0.5):
            await session.command(protocol.encode_command("SET VARIABLE", "IVR_RESULT", "ABANDONED"), 5)
            return
        digits = await session.command(protocol.encode_command("GET DATA", str(prompts / "menu"), raw=["5000", "4"]), 5)
        await session.command(protocol.encode_command("SET VARIABLE", "CHOICE", digits.result), 5)
        await session.command(protocol.encode_command("SET VARIABLE", "IVR_RESULT", "OK"), 5)

    return flow


async def test_place_call_end_to_end(fastagi: Callable[[dict[str, Flow]], Awaitable[int]], prompts: Path) -> None:
    port = await fastagi({"menu": menu_flow(prompts)})
    record = await place_call(
        "127.0.0.1", port, script="menu", options={"lang": "id"}, caller_id="081234567890", keys=["42#"], timeout=5
    )
    assert record.result == "OK" and record.variables["CHOICE"] == "42"
    assert (record.hung_up, record.agi_status, record.audio_problems, record.warnings) == (False, "SUCCESS", [], [])
    assert record.commands[0] == b"ANSWER\n" and record.replies[-1] == b"200 result=1\n"
    assert record.spoken == [
        "Selamat datang di Call Center Protokol.",
        "Tekan 1 untuk pengaduan, tekan 2 untuk informasi.",
    ]
    text = record.render()
    assert record.uniqueid in text and "agi://127.0.0.1" in text
    assert "\u00abSelamat datang di Call Center Protokol.\u00bb" in text
    assert "CALLER  presses 42#" in text and "IVR_RESULT=OK" in text and "AGISTATUS=SUCCESS" in text


async def test_place_call_caller_hangs_up(fastagi: Callable[[dict[str, Flow]], Awaitable[int]], prompts: Path) -> None:
    port = await fastagi({"menu": menu_flow(prompts)})
    record = await place_call("127.0.0.1", port, script="menu", keys=["h"], timeout=5)
    assert record.result == "ABANDONED"
    assert (record.hung_up, record.hangup_by, record.agi_status) == (True, "caller", "HANGUP")
    assert record.replies[1] == b"200 result=-1 endpos=8000\nHANGUP\n"


async def test_place_call_interactive_keys(fastagi: Callable[[dict[str, Flow]], Awaitable[int]], prompts: Path) -> None:
    asked: list[Prompt] = []

    async def key_source(prompt: Prompt) -> str:
        asked.append(prompt)
        return "7#"

    port = await fastagi({"menu": menu_flow(prompts)})
    record = await place_call("127.0.0.1", port, script="menu", key_source=key_source, timeout=5)
    assert record.variables["CHOICE"] == "7"
    assert [(p.command, p.max_digits, p.text) for p in asked] == [
        ("GET DATA", 4, "Tekan 1 untuk pengaduan, tekan 2 untuk informasi.")
    ]
    assert str(asked[0]).startswith("[GET DATA, up to 4 digits] Tekan 1")


async def test_place_call_pace_and_exit_on_hangup(
    fastagi: Callable[[dict[str, Flow]], Awaitable[int]], prompts: Path
) -> None:
    port = await fastagi({"menu": menu_flow(prompts)})
    started = time.monotonic()
    record = await place_call("127.0.0.1", port, script="menu", keys=["1#"], pace=0.05, timeout=5)
    assert time.monotonic() - started >= 5 * 0.05 and record.result == "OK"
    closed = await place_call("127.0.0.1", port, script="menu", keys=["h"], exit_on_hangup=True, timeout=5)
    assert closed.replies[1] == b"200 result=-1 endpos=8000\nHANGUP\nHANGUP\n"
    assert closed.result is None  # Asterisk closed the socket before the flow could report


async def test_place_call_times_out(fastagi: Callable[[dict[str, Flow]], Awaitable[int]]) -> None:
    async def silent(session: Session) -> None:
        await asyncio.sleep(30)

    port = await fastagi({"main": silent})
    with pytest.raises(CallTimeout) as caught:
        await place_call("127.0.0.1", port, timeout=0.3)
    assert caught.value.record.commands == []


async def test_server_that_closes_outright_is_tolerated() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(b"NOOP\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(rude, "127.0.0.1", 0)
    try:
        record = await place_call("127.0.0.1", server.sockets[0].getsockname()[1], timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    assert record.commands == [b"NOOP\n"] and record.replies == [b"200 result=0\n"]


async def test_raw_peer_injects_what_asterisk_never_sends(fastagi: Callable[[dict[str, Flow]], Awaitable[int]]) -> None:
    reached: list[str] = []

    async def flow(session: Session) -> None:
        reached.append(session.environment.script)

    port = await fastagi({"main": flow})
    for junk in (b"agi_network: yes\nagi_arg_1: " + b"x" * (1 << 20) + b"\n\n", b"\xff\xfe junk", b"agi_network: yes"):
        peer = await FastAGIPeer.connect("127.0.0.1", port)
        await peer.send(junk)
        peer.half_close()
        assert await peer.read_until_eof(timeout=3) == b""
        await peer.close()
    assert reached == []
    record = await place_call("127.0.0.1", port, timeout=5)
    assert reached == ["main"] and record.replies == []


async def test_raw_reply_without_newline_then_eof(fastagi: Callable[[dict[str, Flow]], Awaitable[int]]) -> None:
    """Playing a broken Asterisk: a reply cut off by EOF must end the flow with
    ConnectionLost, not hang it or hand it half a reply."""
    outcome: list[BaseException] = []

    async def flow(session: Session) -> None:
        try:
            await session.command(b"NOOP\n", timeout=5)
        except ConnectionLost as exc:
            outcome.append(exc)

    port = await fastagi({"main": flow})
    peer = await FastAGIPeer.connect("127.0.0.1", port)
    await peer.send(SimulatedAsterisk(CallSetup()).environment())
    assert await peer.read_line() == b"NOOP\n"
    await peer.send(b"200 result=0")
    peer.half_close()
    assert await peer.read_until_eof() == b""
    await peer.close()
    assert len(outcome) == 1


COMMAND_WORDS = st.sampled_from(
    [
        b"STREAM FILE",
        b"GET DATA",
        b"GET OPTION",
        b"WAIT FOR DIGIT",
        b"RECORD FILE",
        b"SAY NUMBER",
        b"SAY DIGITS",
        b"SAY DATETIME",
        b"CONTROL STREAM FILE",
        b"EXEC Dial",
        b"EXEC Playback",
        b"EXEC Wait",
        b"EXEC Set",
        b"GET VARIABLE",
        b"GET FULL VARIABLE",
        b"SET VARIABLE",
        b"HANGUP",
        b"ANSWER",
        b"CHANNEL STATUS",
        b"DATABASE DELTREE",
        b"GOSUB",
        b"NOOP",
        b"failure",
        b"",
    ]
)
ARGUMENTS = st.lists(
    st.sampled_from(
        [
            b"beep",
            b'""',
            b'"#"',
            b"3000",
            b"-1",
            b"0",
            b"4",
            b"x",
            b"wav",
            b"s=2",
            b"BEEP",
            b"${X}",
            b"Local/1@x,1,g",
            b"a&b",
            b"\xff",
            b"\\",
            b'"',
            b"CALLERID(all)",
            b"99999999999999999999",
        ]
    ),
    max_size=6,
)
KEY_GROUPS = st.lists(
    st.sampled_from(["", "1", "#", "12#3", "h", "h!", "h@0.1", "rec:1", "rec:1:h", "rec:1:s"]), max_size=5
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=KEY_GROUPS,
    script=st.lists(st.tuples(COMMAND_WORDS, ARGUMENTS, st.booleans()), min_size=1, max_size=8),
    exit_on_hangup=st.booleans(),
    sighup=st.booleans(),
)
def test_engine_survives_any_command_sequence(
    keys: list[str], script: list[tuple[bytes, list[bytes], bool]], exit_on_hangup: bool, sighup: bool
) -> None:
    """Whatever the server sends, the engine answers with Asterisk's reply forms,
    never raises, and refuses everything but the dead-capable commands after a hangup."""

    async def run_script() -> None:
        simulator = SimulatedAsterisk(
            CallSetup(exit_on_hangup=exit_on_hangup, sighup=sighup), keys=keys, dial_outcomes={"*": "ANSWER"}
        )
        simulator.environment()
        simulator.idle()
        for words, arguments, newline in script:
            dead_before = simulator.dead
            reply = await simulator.execute(b" ".join([words, *arguments]) + (b"\n" if newline else b""))
            if simulator.finished and not reply:
                continue
            assert reply.endswith(b"\n")
            first = reply.split(b"\n", 1)[0]
            assert first == b"HANGUP" or first[:4] in (b"100 ", b"200 ", b"510 ", b"511 ", b"520-", b"520 "), reply
            if dead_before and words in (b"STREAM FILE", b"GET DATA", b"WAIT FOR DIGIT", b"ANSWER", b"HANGUP"):
                assert first == b"511 Command Not Permitted on a dead channel or intercept routine"
            simulator.idle()
        simulator.end_of_session()

    asyncio.run(run_script())
