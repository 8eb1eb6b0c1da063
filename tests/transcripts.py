"""Loader for the captured Asterisk 22.10.1 transcripts in ``shared/asterisk/transcripts``.

A transcript file is a ``#`` header, a session section with one wire line per
line, and (AGI files) the Asterisk full log for context::

    # FastAGI transcript: scenario 'stream'
    # a) ANSWER; STREAM FILE hello-world ""; ...
    == FastAGI session (raw) ==
    15:44:13.508 +  0.000s  --  [connection #9 from 127.0.0.1:42390]
    15:44:13.508 +  0.000s  <<  b'agi_network: yes\\n'
    15:44:13.509 +  0.001s  >>  b'ANSWER\\n'
    15:44:13.510 +  0.002s  <<  b'200 result=0\\n'
    == Asterisk 'full' log for this call (context only, not part of the AGI protocol) ==
    [2026-12-03 15:44:13.006] VERBOSE[12599] asterisk.c: Remote UNIX connection

``<<`` is Asterisk to the client, ``>>`` the client to Asterisk, ``--`` a recorder
note (its text is kept as UTF-8 bytes). The bytes are the ``repr`` on the line,
evaluated with ``ast.literal_eval``; nothing else is interpreted.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path


def _transcript_dir() -> Path:
    """``IVR_TRANSCRIPTS`` if set, else the copy in ``tests/asterisk/transcripts``,
    else the shared folder next to the repository."""
    if os.environ.get("IVR_TRANSCRIPTS"):
        return Path(os.environ["IVR_TRANSCRIPTS"])
    here = Path(__file__).resolve().parent
    for candidate in (here / "asterisk" / "transcripts", here.parents[1] / "shared" / "asterisk" / "transcripts"):
        if candidate.is_dir():
            return candidate
    return here / "asterisk" / "transcripts"


TRANSCRIPT_DIR = _transcript_dir()

ASTERISK = "<<"
CLIENT = ">>"
NOTE = "--"

_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \+\s*(\d+\.\d{3})s  (<<|>>|--)  (.*)$")


@dataclass(frozen=True, slots=True)
class Step:
    direction: str  # "<<", ">>" or "--"
    data: bytes
    seconds: float  # since the TCP accept (AGI) or the first connect (AMI)
    clock: str  # wall clock as printed, "15:44:13.508"

    @property
    def note(self) -> str:
        return self.data.decode("utf-8") if self.direction == NOTE else ""


@dataclass(frozen=True)
class Transcript:
    name: str  # "agi-stream"
    path: Path
    header: tuple[str, ...]  # comment lines without the leading "# "
    steps: tuple[Step, ...]
    log: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def scenario(self) -> str:
        return self.name.split("-", 1)[1]

    @property
    def description(self) -> str:
        return self.header[1] if len(self.header) > 1 else ""

    @property
    def wire(self) -> list[tuple[str, bytes]]:
        """The session as (direction, bytes), notes left out."""
        return [(s.direction, s.data) for s in self.steps if s.direction != NOTE]

    def sent(self) -> list[bytes]:
        """What the client sent (``>>``), in order."""
        return [s.data for s in self.steps if s.direction == CLIENT]

    def received(self) -> bytes:
        """Everything Asterisk sent (``<<``), concatenated."""
        return b"".join(s.data for s in self.steps if s.direction == ASTERISK)

    def environment(self) -> bytes:
        """AGI: the environment block up to and including its empty line."""
        out = []
        for step in self.steps:
            if step.direction == ASTERISK:
                out.append(step.data)
                if step.data == b"\n":
                    break
        return b"".join(out)

    def env(self) -> dict[str, str]:
        """AGI: the environment as a dict (``agi_accountcode`` keeps its empty value)."""
        values = {}
        for line in self.environment().decode("utf-8", "surrogateescape").splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                values[key] = value
            elif line.endswith(":"):
                values[line[:-1]] = ""
        return values

    def exchanges(self) -> list[tuple[bytes | None, bytes]]:
        """AGI: after the environment, each client line with the bytes Asterisk sent
        before the next client line; the first item has ``None`` for what Asterisk
        sent unprompted right after the environment (an idle ``HANGUP``)."""
        after_env = False
        result: list[tuple[bytes | None, bytes]] = [(None, b"")]
        for step in self.steps:
            if step.direction == NOTE:
                continue
            if not after_env:
                after_env = step.direction == ASTERISK and step.data == b"\n"
                continue
            if step.direction == CLIENT:
                result.append((step.data, b""))
            else:
                command, got = result[-1]
                result[-1] = (command, got + step.data)
        return result

    def notes(self) -> list[str]:
        return [s.note for s in self.steps if s.direction == NOTE]

    def half_closed(self) -> bool:
        """Did the client end the session with shutdown(SHUT_WR)?"""
        return any(n.startswith("[half-close") for n in self.notes())

    def received_after_half_close(self) -> bytes:
        seen = False
        out = []
        for step in self.steps:
            if step.direction == NOTE and step.note.startswith("[half-close"):
                seen = True
            elif seen and step.direction == ASTERISK:
                out.append(step.data)
        return b"".join(out)


def parse(text: str, name: str = "", path: Path | None = None) -> Transcript:
    header: list[str] = []
    steps: list[Step] = []
    log: list[str] = []
    section = "header"
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("== "):
            section = "log" if "log" in line else "session"
            continue
        if section == "header" and line.startswith("#"):
            header.append(line[1:].strip())
            continue
        if section == "log":
            if line:
                log.append(line)
            continue
        match = _LINE.match(line)  # AMI files have no "== session ==" line
        if match is None:
            if line and not line.startswith("("):  # "(no FastAGI session recorded)"
                raise ValueError(f"{name}:{number}: not a transcript line: {line!r}")
            continue
        clock, seconds, direction, payload = match.groups()
        if direction == NOTE:
            data = payload.encode("utf-8")
        else:
            data = ast.literal_eval(payload)
            if not isinstance(data, bytes):
                raise ValueError(f"{name}:{number}: expected a bytes literal, got {payload!r}")
        steps.append(Step(direction, data, float(seconds), clock))
    return Transcript(name, path or Path(name), tuple(header), tuple(steps), tuple(log))


def load(path: str | Path) -> Transcript:
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = TRANSCRIPT_DIR / (path.name if path.suffix else f"{path.name}.txt")
    return parse(path.read_text("utf-8"), path.stem, path)


@cache
def load_all(kind: str | None = None) -> tuple[Transcript, ...]:
    """Every transcript (or those of ``kind``: ``"agi"``, ``"ami"``), sorted by name."""
    pattern = f"{kind}-*.txt" if kind else "*.txt"
    return tuple(load(p) for p in sorted(TRANSCRIPT_DIR.glob(pattern)))
