"""The captured Asterisk 22.10.1 transcripts, replayed two ways.

(a) Against our parser: each session's ``<<`` bytes go into an in-memory
    ``asyncio.StreamReader``; ``read_environment`` and ``Session.command`` (sent
    exactly the ``>>`` lines) must turn them into the right typed results:

        >> b'STREAM FILE demo-congrats ""\\n'
        << b'200 result=-1 endpos=20000\\n'           -> Reply(result='-1', endpos=20000)
        << b'HANGUP\\n'                               (read before the next reply)
        >> b'ANSWER\\n'
        << b'511 Command Not Permitted on a dead channel or intercept routine\\n'  -> DeadChannel

(b) Against the simulator: a scripted FastAGI peer sends the same ``>>`` lines to
    ``ivr.simulator`` over TCP and the bytes that come back must be the bytes the
    real Asterisk sent, environment block included.
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl

import pytest
from transcripts import ASTERISK, CLIENT, NOTE, Transcript, load, load_all

from ivr.agi.protocol import DeadChannel, InvalidCommand, Reply, UsageError
from ivr.agi.session import ConnectionLost, Session, read_environment
from ivr.simulator import CallRecord, CallSetup, SimulatedAsterisk, wav_bytes

AGI = [t for t in load_all("agi") if any(s.direction == ASTERISK for s in t.steps)]
NO_SESSION = {"agi-agi-down": "the FastAGI server was unreachable: the file holds only the Asterisk log"}


def test_every_transcript_loads() -> None:
    everything = load_all()
    assert len(everything) == 46
    assert {t.kind for t in everything} == {"agi", "ami"}
    assert set(NO_SESSION) == {t.name for t in load_all("agi")} - {t.name for t in AGI}
    stream = load("agi-stream")
    assert stream.header[0] == "FastAGI transcript: scenario 'stream'"
    assert stream.wire[0] == (ASTERISK, b"agi_network: yes\n")
    assert stream.sent() == [
        b"ANSWER\n",
        b'STREAM FILE hello-world ""\n',
        b'STREAM FILE demo-congrats "0123456789*#"\n',
        b'STREAM FILE does-not-exist ""\n',
    ]
    assert stream.steps[0].direction == NOTE and stream.steps[0].note.startswith("[connection #9")
    assert stream.log and stream.log[0].startswith("[2026-12-03 15:44:13.006]")
    login = load("ami-login")
    assert login.wire[0] == (ASTERISK, b"Asterisk Call Manager/11.0.0\r\n")


# --------------------------------------------------------------------------- (a) parser


class RecordingWriter:
    """Stands in for ``asyncio.StreamWriter``: keeps what the session writes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


_REPLY = re.compile(r"^200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?$", re.DOTALL)


def _expected_results(transcript: Transcript) -> list[tuple[Any, bool]]:
    """For each ``>>`` line: what the parser must give (read here independently of
    ivr.agi.protocol) and whether a HANGUP line has come by the time of its reply."""
    lines = iter(b"".join(data for _, data in transcript.exchanges()).splitlines(keepends=True))
    expected: list[tuple[Any, bool]] = []
    hangup_seen = False
    for _ in transcript.sent():
        line = next(lines)
        while line == b"HANGUP\n":
            hangup_seen = True
            line = next(lines)
        text = line.decode("utf-8", "surrogateescape").rstrip("\n")
        if text.startswith("200 "):
            match = _REPLY.match(text)
            assert match, text
            expected.append(((Reply, match.group("result"), match.group("data"), match.group("endpos")), hangup_seen))
        elif text.startswith("510 "):
            expected.append(((InvalidCommand, text), hangup_seen))
        elif text.startswith("511 "):
            expected.append(((DeadChannel, text), hangup_seen))
        elif text.startswith("520-"):
            usage = []
            line = next(lines)
            while line != b"520 End of proper usage.\n":
                usage.append(line.decode().rstrip("\n"))
                line = next(lines)
            expected.append(((UsageError, "\n".join(usage)), hangup_seen))
        else:
            raise AssertionError(f"unexpected reply in {transcript.name}: {line!r}")
    return expected


@pytest.mark.parametrize("transcript", AGI, ids=lambda t: t.name)
async def test_parser_reads_transcript(transcript: Transcript) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(transcript.received())
    reader.feed_eof()
    writer = RecordingWriter()

    environment = await read_environment(reader, timeout=1)
    assert environment.script == transcript.env()["agi_network_script"].split("?")[0]
    assert environment.options == {"lang": "id"}
    assert environment.args == ("first-arg", "second arg")
    assert environment.get("accountcode", "missing") == ""
    assert environment.get("version") == "22.10.1"
    assert environment.uniqueid == transcript.env()["agi_uniqueid"]

    session = Session(reader, cast(asyncio.StreamWriter, writer), environment)
    commands = transcript.sent()
    for command, (want, hangup_before) in zip(commands, _expected_results(transcript), strict=True):
        kind = want[0]
        if kind is Reply:
            reply = await session.command(command, timeout=1)
            _, result, data, endpos = want
            assert (reply.result, reply.data) == (result, data), command
            assert reply.endpos == (int(endpos) if endpos is not None else None), command
            assert reply.raw.startswith("200 result="), "a HANGUP line must never be taken for the reply"
        else:
            with pytest.raises(kind) as caught:
                await session.command(command, timeout=1)
            if kind is UsageError:
                assert caught.value.usage == want[1]
            else:
                assert caught.value.raw == want[1]
        assert session.hung_up == hangup_before, command
    assert bytes(writer.data) == b"".join(commands)

    # Whatever is left is HANGUP lines and then EOF: never a reply.
    with pytest.raises(ConnectionLost):
        await session.command(b"NOOP\n", timeout=1)
    assert session.hung_up == (b"HANGUP\n" in transcript.received())
    assert not session.usable


async def test_parser_waits_for_hangup_line_after_minus_one() -> None:
    """A -1 result followed by HANGUP (hangup) or not (missing file)."""
    midcommand = load("agi-hangup-midcommand")
    reader = asyncio.StreamReader()
    reader.feed_data(midcommand.received())
    reader.feed_eof()
    session = Session(reader, cast(asyncio.StreamWriter, RecordingWriter()), await read_environment(reader, 1))
    reply = await session.command(b'STREAM FILE demo-congrats ""\n', timeout=1)
    assert (reply.number, reply.endpos, session.hung_up) == (-1, 20000, False)
    assert await session.wait_for_hangup_line(0.5) is True
    assert session.hung_up

    stream = load("agi-stream")
    reader = asyncio.StreamReader()
    environment = stream.environment()
    reader.feed_data(environment + b"200 result=-1 endpos=0\n")
    session = Session(reader, cast(asyncio.StreamWriter, RecordingWriter()), await read_environment(reader, 1))
    assert (await session.command(b'STREAM FILE does-not-exist ""\n', timeout=1)).endpos == 0
    assert await session.wait_for_hangup_line(0.05) is False
    assert not session.hung_up


# --------------------------------------------------------------------------- (b) simulator

SOUNDS = "/srv/asterisk-lab/sounds"
RECORDINGS = "/srv/asterisk-lab/rec"

#: How the caller behaved in each capture, in the simulator's key-group language.
SCENARIOS: dict[str, dict[str, Any]] = {
    "agi-stream": {"keys": ["5@3.3"]},  # 5 pressed 3.3 s into demo-congrats: endpos=26400
    "agi-stream-noescape": {"keys": [""]},  # the 9 during vm-intro "" was lost
    "agi-wavrate": {},
    "agi-lang-id": {},
    "agi-getdata-digits": {"keys": ["1234"]},
    "agi-getdata-timeout": {"keys": [""]},
    "agi-getdata-hash": {"keys": ["12#"]},
    "agi-getdata-partial": {"keys": ["12"]},
    "agi-getdata-barge": {"keys": ["4"]},
    "agi-dtmf-slow": {"keys": ["12"]},
    "agi-dtmf-idle": {"keys": [""]},  # the 3 pressed while idle was lost
    "agi-typeahead": {"keys": ["123#@1.7"]},  # 1 stops vm-intro at 1.7 s; 23# is type-ahead
    "agi-waitdigit-key": {"keys": ["7"]},
    "agi-waitdigit-timeout": {"keys": [""]},
    "agi-say": {},
    # hello-world (1.4015 s of audio) then '#': the # rewinds 200 ms -> 9612 samples
    "agi-record-hash": {"keys": ["rec:1.4015"]},
    "agi-record-timeout": {"keys": ["rec:16"]},  # tt-monkeys outlasts the 5000 ms limit
    "agi-record-hangup": {"keys": ["rec:1.4015:h"]},
    "agi-vars": {},
    "agi-dial-answer": {"dial_outcomes": {"Local/100@officer": "ANSWER"}},
    "agi-dial-answer-g": {"dial_outcomes": {"Local/100@officer": "ANSWER"}},
    "agi-dial-noanswer": {"dial_outcomes": {"Local/101@officer": "NOANSWER"}},
    "agi-dial-busy": {"dial_outcomes": {"Local/102@officer": "BUSY"}},
    "agi-dial-congestion": {"dial_outcomes": {"Local/103@officer": "CONGESTION"}},
    "agi-dial-unavail": {},  # 199 is in no outcome map: CHANUNAVAIL
    "agi-hangup-midcommand": {"keys": ["h@2.5"]},
    "agi-hangup-idle": {"keys": ["h!"]},
    "agi-hangup-exitonhangup": {"keys": ["h@2.5"], "setup": {"exit_on_hangup": True}},
    "agi-hangup-nosighup": {"keys": ["h@2.5"], "setup": {"sighup": False}},
    "agi-agi-hangup": {},
    "agi-errors": {},
    "agi-cid-set": {},
    "agi-cid-default": {},
    "agi-cid-withheld": {},
    "agi-cid-ami": {"setup": {"connected_line": ("Siti Aminah", "081298765432")}},
    "agi-ami-call": {"keys": ["12#"], "dial_outcomes": {"Local/100@officer": "ANSWER"}},
    "agi-restart-during-call": {"keys": ["h@1.52"]},  # `core restart now` hung the channel up
}
NOT_BYTE_EXACT = {
    "agi-record-silence": "result (4592) and endpos (18732) come from Asterisk's DSP silence detector on real "
    "audio frames; test_simulator_record_silence_shape checks the reply's form instead",
}
#: What the AGI status (the dialplan's AGISTATUS, or 'returning N' in the log) was.
AGI_STATUS = {"agi-stream": "FAILURE", "agi-wavrate": "FAILURE"}


def test_scenario_table_covers_every_transcript() -> None:
    assert set(SCENARIOS) | set(NOT_BYTE_EXACT) == {t.name for t in AGI}


def setup_from(transcript: Transcript, **overrides: Any) -> CallSetup:
    """The CallSetup that reproduces a transcript's environment block exactly."""
    env = transcript.env()
    script, _, query = env["agi_network_script"].partition("?")
    args = []
    while f"agi_arg_{len(args) + 1}" in env:
        args.append(env[f"agi_arg_{len(args) + 1}"])

    def known(value: str) -> str | None:
        return None if value == "unknown" else value

    return CallSetup(
        script=script,
        options=dict(parse_qsl(query)),
        args=tuple(args),
        request_host=env["agi_request"].split("/")[2],
        caller_id=known(env["agi_callerid"]),
        caller_name=known(env["agi_calleridname"]),
        presentation=int(env["agi_callingpres"]),
        channel=env["agi_channel"],
        uniqueid=env["agi_uniqueid"],
        threadid=int(env["agi_threadid"]),
        context=env["agi_context"],
        extension=env["agi_extension"],
        priority=int(env["agi_priority"]),
        **overrides,
    )


def replay_plan(transcript: Transcript) -> list[tuple[str, bytes]]:
    """("send", line) / ("expect", bytes) / ("half_close", b"") / ("eof", rest)."""
    plan: list[tuple[str, bytes]] = []
    pending = b""
    in_session = False
    for step in transcript.steps:
        if not in_session:
            in_session = step.direction == ASTERISK and step.data == b"\n"
            continue
        if step.direction == CLIENT:
            if pending:
                plan.append(("expect", pending))
                pending = b""
            plan.append(("send", step.data))
        elif step.direction == ASTERISK:
            pending += step.data
        elif step.note.startswith("[half-close"):
            if pending:
                plan.append(("expect", pending))
                pending = b""
            plan.append(("half_close", b""))
    plan.append(("eof", pending))
    return plan


async def replay_against_simulator(
    transcript: Transcript, simulator: SimulatedAsterisk, rewrite: Callable[[bytes], bytes] = lambda b: b
) -> tuple[list[tuple[str, bytes, bytes]], CallRecord]:
    """Play the transcript's FastAGI side over TCP; return the differences."""
    differences: list[tuple[str, bytes, bytes]] = []
    finished = asyncio.Event()

    async def fastagi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            environment = b""
            while not environment.endswith(b"\n\n") and not reader.at_eof():
                environment += await asyncio.wait_for(reader.readline(), 5)
            if environment != transcript.environment():
                differences.append(("environment", transcript.environment(), environment))
            for action, data in replay_plan(transcript):
                if action == "send":
                    writer.write(rewrite(data))
                    await writer.drain()
                elif action == "half_close":
                    writer.write_eof()
                elif action == "expect":
                    try:
                        got = await asyncio.wait_for(reader.readexactly(len(data)), 5)
                    except asyncio.IncompleteReadError as exc:
                        got = exc.partial
                    if got != data:
                        differences.append(("reply", data, got))
                else:
                    got = await asyncio.wait_for(reader.read(), 5)
                    if got != data:
                        differences.append(("end of session", data, got))
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(fastagi, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        record = await simulator.run("127.0.0.1", port, timeout=10)
        await asyncio.wait_for(finished.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
    return differences, record


def make_wavrate_sounds(folder: Path) -> None:
    """The test tones of agi-wavrate.txt, 1.5 s each, in every format it tried."""
    folder.mkdir()

    def tone(rate: int) -> bytes:
        count = rate * 3 // 2
        return struct.pack(f"<{count}h", *(int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(count)))

    def wav(pcm: bytes, rate: int, fmt: int = 1, channels: int = 1, bits: int = 16, extra: bytes = b"") -> bytes:
        block = channels * bits // 8
        header = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
        body = b"fmt " + struct.pack("<I", len(header)) + header + extra + b"data" + struct.pack("<I", len(pcm)) + pcm
        return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body

    pcm8, pcm16 = tone(8000), tone(16000)
    (folder / "tone-8000.wav").write_bytes(wav_bytes(pcm8, 8000))
    (folder / "tone-16000.wav").write_bytes(wav(pcm16, 16000))
    (folder / "tone-22050.wav").write_bytes(wav(tone(22050), 22050))
    (folder / "tone-16000-wav16.wav16").write_bytes(wav(pcm16, 16000))
    (folder / "tone-8000-sln.sln").write_bytes(pcm8)
    (folder / "tone-16000-sln16.sln16").write_bytes(pcm16)
    (folder / "tone-8000-stereo.wav").write_bytes(wav(pcm8 * 2, 8000, channels=2))
    (folder / "tone-8000-8bit.wav").write_bytes(wav(pcm8[::2], 8000, bits=8))
    (folder / "tone-8000-ulaw.wav").write_bytes(wav(pcm8[::2], 8000, fmt=7, bits=8))
    (folder / "tone-8000-extensible.wav").write_bytes(wav(pcm8, 8000, fmt=0xFFFE))
    list_chunk = b"LIST" + struct.pack("<I", 26) + b"INFOISFT" + struct.pack("<I", 14) + b"Lavf60.16.100\0"
    (folder / "tone-8000-listchunk.wav").write_bytes(wav(pcm8, 8000, extra=list_chunk))
    (folder / "dual.wav").write_bytes(wav(tone(22050), 22050))
    (folder / "dual.sln").write_bytes(pcm8)


@pytest.mark.parametrize("transcript", [t for t in AGI if t.name in SCENARIOS], ids=lambda t: t.name)
async def test_simulator_answers_like_asterisk(transcript: Transcript, tmp_path: Path) -> None:
    config = dict(SCENARIOS[transcript.name])
    setup = setup_from(transcript, **config.pop("setup", {}))
    sounds, recordings = tmp_path / "sounds", tmp_path / "rec"
    if transcript.name == "agi-wavrate":
        make_wavrate_sounds(sounds)
    recordings.mkdir()

    def rewrite(line: bytes) -> bytes:  # the lab's folders are this test's folders
        return line.replace(SOUNDS.encode(), str(sounds).encode()).replace(
            RECORDINGS.encode(), str(recordings).encode()
        )

    simulator = SimulatedAsterisk(setup, **config)
    differences, record = await replay_against_simulator(transcript, simulator, rewrite)

    assert differences == []
    assert record.agi_status == AGI_STATUS.get(
        transcript.name, "HANGUP" if b"HANGUP\n" in transcript.exchanges()[0][1] or record.hung_up else "SUCCESS"
    )
    assert record.commands == [rewrite(line) for line in transcript.sent()]


async def test_wavrate_problems_are_reported(tmp_path: Path) -> None:
    transcript = load("agi-wavrate")
    make_wavrate_sounds(tmp_path / "sounds")
    simulator = SimulatedAsterisk(setup_from(transcript))
    _, record = await replay_against_simulator(
        transcript, simulator, lambda line: line.replace(SOUNDS.encode(), str(tmp_path / "sounds").encode())
    )
    reasons: dict[str, str] = {}
    for problem in record.audio_problems:
        name = Path(problem.path).name
        reasons[name] = reasons.get(name, "") + problem.reason + "; "
    assert "Unexpected frequency mismatch 16000 (expecting 8000)" in reasons["tone-16000"]
    assert "Unexpected frequency mismatch 22050 (expecting 8000)" in reasons["tone-22050"]
    assert "Not in mono 2" in reasons["tone-8000-stereo"]
    assert "Can only handle 16bits per sample: 1" in reasons["tone-8000-8bit"]
    assert "Not a supported wav file format (7)" in reasons["tone-8000-ulaw"]
    assert "Not a supported wav file format (65534)" in reasons["tone-8000-extensible"]
    assert "passed with its extension" in reasons["tone-8000.wav"]
    assert "16 kHz" in reasons["tone-16000-wav16"] and "16 kHz" in reasons["tone-16000-sln16"]
    assert "22050" in reasons["dual"]  # the .wav is refused, Asterisk falls back to dual.sln
    assert "tone-8000" not in reasons and "tone-8000-sln" not in reasons and "tone-8000-listchunk" not in reasons


async def test_simulator_record_silence_shape(tmp_path: Path) -> None:
    """agi-record-silence.txt: ``200 result=4592 (timeout) endpos=18732``: the
    result is the milliseconds left, not 0, and 1 s of the silence is kept."""
    transcript = load("agi-record-silence")
    simulator = SimulatedAsterisk(setup_from(transcript), keys=["rec:1.4015:s"])
    simulator.environment()
    command = transcript.sent()[0].replace(RECORDINGS.encode(), str(tmp_path).encode())
    reply = await simulator.execute(command)
    match = re.fullmatch(rb"200 result=(\d+) \(timeout\) endpos=(\d+)\n", reply)
    assert match, reply
    left, endpos = int(match.group(1)), int(match.group(2))
    assert abs(left - 4592) < 50 and abs(endpos - 18732) < 8 * 500
    assert (tmp_path / "test_silence.wav").stat().st_size == 44 + 2 * endpos
