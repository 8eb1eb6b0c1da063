"""``Call``: the typed facade flows use to talk to the caller.

Methods return values and raise one exception per protocol outcome. A hangup is
always ``CallerHungUp``, wherever the flow waits. Every prompt played, key
pressed, recording and dial attempt goes into the call's timeline.

Wire samples for the commands used here (Asterisk 22.10.1)::

    >> STREAM FILE "/r/cache/ab/abcd" "0123456789*#"
    << 200 result=53 endpos=26400            (key 5 interrupted the prompt)
    >> GET DATA "/r/cache/silence" 5000 4
    << 200 result=12 (timeout)
    >> RECORD FILE "/r/tickets/2026/12/03/1.2-1" "wav" "#" 120000 0 BEEP s=4
    << 200 result=35 (dtmf) endpos=9612
    >> EXEC "Dial" "Local/100@officer,20"
    << 200 result=0
    >> GET VARIABLE "DIALSTATUS"
    << 200 result=1 (NOANSWER)
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ivr import channel_vars
from ivr.agi import protocol
from ivr.agi.protocol import DeadChannel, Reply
from ivr.agi.session import CallerHungUp, Environment, Session
from ivr.callerid import CallerNumber
from ivr.records import CallRecorder

log = logging.getLogger("ivr.call")

ALL_KEYS = "0123456789*#"
#: Time Asterisk needs beyond a command's own duration before we call it stuck.
REPLY_MARGIN = 10.0
#: Asterisk sends ``HANGUP`` about 40 ms after a ``-1`` result when the caller
#: left; a missing file gives the same ``-1`` without it.
HANGUP_LINE_WAIT = 0.5
#: Dial strings come from the roster and the settings: refuse anything that
#: could add Dial arguments or options (``,`` ``|``), chain targets (``&``)
#: or expand variables (``${``) once inside ``EXEC Dial``.
_DIAL_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/@._:+#*-]{0,120}$")
_DIAL_OPTIONS = re.compile(r"^[A-Za-z0-9()^]*$")


class Voice(Protocol):
    """Resolves what to play into audio files (implemented by ``ivr.audio``)."""

    def prompt_text(self, prompt_id: str) -> str: ...

    async def prompt_file(self, prompt_id: str) -> Path | None: ...

    async def speech_file(self, text: str) -> Path | None: ...

    def silence_file(self) -> Path: ...

    def asterisk_name(self, path: Path) -> str: ...


@dataclass(frozen=True)
class Say:
    """Text read out by TTS (a read-back), as opposed to a catalog prompt id."""

    text: str
    fallback: str = "error.readback"


Playable = str | Say


@dataclass(frozen=True)
class Digits:
    digits: str
    timed_out: bool


@dataclass(frozen=True)
class RecordingResult:
    path: Path
    seconds: float
    ended_by: str  # "key" | "silence" | "max-length" | "hangup" | "failed"
    key: str | None = None


@dataclass(frozen=True)
class DialResult:
    status: str  # ANSWER, NOANSWER, BUSY, CONGESTION, CHANUNAVAIL, CANCEL, DONTCALL, TORTURE, INVALIDARGS
    answered_seconds: int
    peer: str


@dataclass
class CallerInfo:
    """Who is calling, as far as the directory knows."""

    number: CallerNumber
    name_from_network: str = ""
    caller_id: int | None = None
    caller_name: str | None = None
    office_id: int | None = None
    office_name: str | None = None
    verified_by_pin: bool = False

    @property
    def registered(self) -> bool:
        return self.caller_id is not None


@dataclass
class Call:
    session: Session
    voice: Voice
    record: CallRecorder
    caller: CallerInfo
    recordings_dir: Path
    started_at: datetime
    step: str = "start"
    #: How the call ends if nobody hangs up early: flows set "transferred",
    #: "emergency-answered", ... (PRODUCT.md section 3).
    outcome: str = "completed"
    #: Set once the caller got what they came for (their ticket number): a
    #: hangup after that ends the call as ``outcome``, not as abandoned.
    served: bool = False

    @property
    def environment(self) -> Environment:
        return self.session.environment

    @property
    def uniqueid(self) -> str:
        return self.environment.uniqueid

    # -- plumbing ---------------------------------------------------------

    async def _command(self, line: bytes, timeout: float | None, *, live: bool = True, secret: bool = False) -> Reply:
        """Send a command; a hangup before or during it becomes CallerHungUp.

        ``live`` commands need the channel up; the dead-capable ones (SET
        VARIABLE, GET VARIABLE, EXEC, ...) still run after a hangup."""
        if live and self.session.hung_up:
            raise CallerHungUp("caller already hung up")
        try:
            reply = await self.session.command(line, timeout, secret=secret)
        except DeadChannel as exc:
            self.session.hung_up = True
            raise CallerHungUp("dead channel") from exc
        if live and self.session.hung_up and reply.number == -1:
            raise CallerHungUp("caller hung up during the command")
        return reply

    async def _raise_if_gone(self, reply: Reply) -> None:
        """A ``-1`` result is either a hangup or a failure (missing file)."""
        if reply.number == -1 and await self.session.wait_for_hangup_line(HANGUP_LINE_WAIT):
            raise CallerHungUp("caller hung up during the command")

    def enter(self, step: str) -> None:
        """Name the step the call is in: the outcome says where a caller left."""
        self.step = step
        self.record.add("step", name=step)

    # -- what the caller hears -------------------------------------------

    async def _resolve(self, item: Playable) -> tuple[Path | None, str, str | None]:
        if isinstance(item, Say):
            path = await self.voice.speech_file(item.text)
            if path is not None:
                return path, item.text, None
            log.warning("read-back unavailable, playing %s instead", item.fallback)
            item_id: str = item.fallback
        else:
            item_id = item
        return await self.voice.prompt_file(item_id), self.voice.prompt_text(item_id), item_id

    async def play(self, *items: Playable, escape: str = "") -> str | None:
        """Play prompts and read-backs in order. With ``escape`` keys, a key
        interrupts playback (barge-in) and is returned as a character."""
        for item in items:
            path, text, prompt_id = await self._resolve(item)
            if path is None:
                log.error("no audio for prompt %s", prompt_id)
                self.record.add("prompt", prompt=prompt_id, text=text, missing=True)
                continue
            self.record.add("prompt", prompt=prompt_id, text=text)
            key = await self.play_file(path, escape=escape, during=prompt_id or "read-back")
            if key is not None:
                return key
        return None

    async def play_file(self, path: Path, *, escape: str = "", during: str = "recording") -> str | None:
        """Stream one local audio file (a caller's recording, or a resolved
        prompt); the caller of this method puts it on the timeline. Returns the
        interrupting key, if any; a hangup raises ``CallerHungUp``."""
        name, seconds = _playable(self.voice, path)
        line = protocol.encode_command("STREAM FILE", name, escape)
        reply = await self._command(line, seconds + REPLY_MARGIN)
        await self._raise_if_gone(reply)
        key = protocol.digit_from_code(reply.number)
        if key is not None:
            self.record.add("dtmf", digits=key, during=during)
        return key

    async def say_digits(self, digits: str, *, before: Playable | None = None, escape: str = "") -> str | None:
        """Say a number digit by digit ("satu dua tiga") from the catalog's
        digit prompts, which are always pre-rendered: no synthesis on this path.
        Anything but 0-9 is skipped."""
        items: list[Playable] = [before] if before is not None else []
        return await self.play(*items, *digit_prompts(digits), escape=escape)

    async def wait_key(self, seconds: float) -> str | None:
        line = protocol.encode_command("WAIT FOR DIGIT", raw=[str(int(seconds * 1000))])
        reply = await self._command(line, seconds + REPLY_MARGIN)
        await self._raise_if_gone(reply)
        key = protocol.digit_from_code(reply.number)
        self.record.add("dtmf", digits=key or "", timeout=key is None)
        return key

    async def read_digits(
        self, *prompt: Playable, max_digits: int, timeout: float = 5.0, purpose: str = "", secret: bool = False
    ) -> Digits:
        """Ask for up to ``max_digits`` keys with one ``GET DATA``: its prompt
        (the last item) is interrupted by the first key, which counts as a digit;
        ``#`` ends early and is not returned. Earlier items (an apology before
        the menu) play first, uninterrupted, so one input moment stays one command.
        ``Digits("", timed_out=False)`` means the caller pressed ``#`` alone.
        ``secret`` digits (a PIN) are kept off the timeline and the logs."""
        *intro, last = prompt
        if intro:
            await self.play(*intro)
        path, text, prompt_id = await self._resolve(last)
        if path is None:
            path, text = self.voice.silence_file(), ""
        else:
            self.record.add("prompt", prompt=prompt_id, text=text)
        name, seconds = _playable(self.voice, path)
        line = protocol.encode_command("GET DATA", name, raw=[str(int(timeout * 1000)), str(max_digits)])
        reply = await self._command(line, seconds + timeout * (max_digits + 1) + REPLY_MARGIN, secret=secret)
        if reply.result == "-1":
            await self._raise_if_gone(reply)
            return self._digits("", True, purpose, secret)
        digits = "".join(ch for ch in reply.result if ch in ALL_KEYS)
        return self._digits(digits, reply.data == "timeout", purpose, secret)

    def _digits(self, digits: str, timed_out: bool, purpose: str, secret: bool = False) -> Digits:
        shown = "*" * len(digits) if secret else digits
        self.record.add("dtmf", digits=shown, timeout=timed_out, purpose=purpose)
        return Digits(digits, timed_out)

    async def record_voice(
        self, name: str, *, kind: str, max_seconds: int, silence_seconds: int = 4, escape: str = "#"
    ) -> RecordingResult:
        """Record the caller to a server-generated path under the recordings
        folder (``name`` never comes from caller input). A hangup keeps the
        partial recording on the record, then raises ``CallerHungUp``."""
        local = self.recordings_dir / name
        local.parent.mkdir(parents=True, exist_ok=True)
        line = protocol.encode_command(
            "RECORD FILE",
            self.voice.asterisk_name(local.with_suffix(".wav")),
            "wav",
            escape,
            raw=[str(max_seconds * 1000), "0", "BEEP", f"s={silence_seconds}"],
        )
        try:
            reply = await self._command(line, max_seconds + REPLY_MARGIN, live=True)
        except CallerHungUp:
            raise
        seconds = (reply.endpos or 0) / 8000
        wav = local.with_suffix(".wav")
        relative = str(wav.relative_to(self.recordings_dir))
        if reply.data == "hangup" or (reply.number == -1 and self.session.hung_up):
            if wav.exists():
                self.record.add_recording(kind, relative, seconds)
            raise CallerHungUp("caller hung up while recording")
        if reply.number == -1:
            self.record.add("error", what="record", detail=reply.data or "")
            return RecordingResult(wav, 0.0, "failed")
        if reply.data == "dtmf":
            ended_by, key = "key", protocol.digit_from_code(reply.number)
        elif reply.number:
            ended_by, key = "silence", None
        else:
            ended_by, key = "max-length", None
        self.record.add_recording(kind, relative, seconds)
        return RecordingResult(wav, seconds, ended_by, key)

    # -- channel control -------------------------------------------------

    async def answer(self) -> None:
        await self._command(protocol.encode_command("ANSWER"), REPLY_MARGIN)

    async def set_variable(self, name: str, value: str) -> None:
        await self._command(protocol.encode_command("SET VARIABLE", name, value), REPLY_MARGIN, live=False)

    async def get_variable(self, name: str) -> str | None:
        reply = await self._command(protocol.encode_command("GET VARIABLE", name), REPLY_MARGIN, live=False)
        return reply.data if reply.result == "1" else None

    async def set_result(self, value: str) -> None:
        """Tell the dialplan how the flow ended (it never trusts AGISTATUS)."""
        await self.set_variable(channel_vars.RESULT, value)

    async def dial(self, targets: list[str], ring_seconds: int, options: str = "", purpose: str = "") -> DialResult:
        """Ring ``targets`` at once (Asterisk's ``&``) for ``ring_seconds``."""
        bad = [t for t in targets if not _DIAL_TARGET.match(t)]
        if bad or not targets or not _DIAL_OPTIONS.match(options):
            raise ValueError(f"unsafe dial target or options: {bad or options!r}")
        argument = f"{'&'.join(targets)},{int(ring_seconds)}" + (f",{options}" if options else "")
        self.record.add("dial", target="&".join(targets), status="started", purpose=purpose)
        # Dial returns when the bridged call ends, so no fixed ceiling here:
        # the call-level watchdog bounds it.
        reply = await self._command(protocol.encode_command("EXEC", "Dial", argument), None)
        if reply.number == -1:
            await self._raise_if_gone(reply)
        status = await self.get_variable("DIALSTATUS") or "UNKNOWN"
        answered = await self.get_variable("ANSWEREDTIME") or "0"
        peer = await self.get_variable("DIALEDPEERNAME") or ""
        result = DialResult(status, int(answered) if answered.isdigit() else 0, peer)
        self.record.add("dial", target="&".join(targets), status=status, answered_seconds=result.answered_seconds)
        if self.session.hung_up:
            raise CallerHungUp("caller hung up during Dial")
        return result

    async def hangup(self) -> None:
        if not self.session.hung_up:
            try:
                await self._command(protocol.encode_command("HANGUP"), REPLY_MARGIN)
            except CallerHungUp:
                pass
        self.session.hung_up = True


def digit_prompts(digits: str) -> list[str]:
    """The catalog prompts that say ``digits`` one by one (``digit.0`` ... ``digit.9``)."""
    return [f"digit.{d}" for d in digits if d in "0123456789"]


#: How long a played file's Asterisk name and length are reused without
#: looking at the disk again: the same prompts are played on every call, and
#: a prompt replaced by a new recording is seen within this.
PLAYABLE_TTL = 10.0
#: Bounds the cache (read-backs make new files all day).
PLAYABLE_CACHE_SIZE = 4096
_playables: dict[tuple[int, Path], tuple[float, str, float, Voice]] = {}


def _playable(voice: Voice, path: Path) -> tuple[str, float]:
    """What Asterisk plays for ``path`` and how long the file lasts, for a
    command's line and its reply timeout."""
    key = (id(voice), path)
    now = time.monotonic()
    known = _playables.get(key)
    # The voice is kept with the entry: its id is not reused while it is cached.
    if known is not None and now - known[0] < PLAYABLE_TTL and known[3] is voice:
        return known[1], known[2]
    if len(_playables) >= PLAYABLE_CACHE_SIZE:
        _playables.clear()
    name, seconds = voice.asterisk_name(path), _wav_seconds(path)
    _playables[key] = (now, name, seconds, voice)
    return name, seconds


def _wav_seconds(path: Path) -> float:
    """Duration of an 8 kHz 16-bit mono file from its size (no parsing on the call path)."""
    try:
        return max(0.0, (path.stat().st_size - 44) / 16000)
    except OSError:
        return 0.0
