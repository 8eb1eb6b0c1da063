"""Code that runs inside a TTS worker process (never in the server or an AGI process).

pyttsx3 2.99 on espeak-ng is only reliable under a strict discipline (SPEECH.md
section 2), which this module enforces:

* one engine per process, created in the pool initializer and kept referenced at
  module level: pyttsx3 only holds it in a WeakValueDictionary (P8);
* the process is started with ``forkserver`` by the parent, never forked from a
  process that owns an engine (P6);
* calls are serialized by a lock: the espeak state is process-global (P5);
* each request queues exactly one ``save_to_file`` and one ``runAndWait()`` (P2-P4)
  and then waits for the ``finished-utterance`` event with a timeout, because the
  first ``runAndWait()`` in a process returns before the file exists (P1);
* the engine speaks once during warm-up, because ``runAndWait()`` on an engine that
  has never spoken can hang forever (P3a);
* nothing is queued while espeak-ng is still busy, not even a ``setProperty``
  (a race found while building this, see :func:`_wait_quiet`);
* ``sys.stdout`` is pointed at stderr: the driver prints from espeak's thread, and
  stdout may be a protocol channel (P7).

A hang inside espeak cannot be interrupted from Python; the parent kills the whole
process on timeout (see :mod:`ivr.speech.tts`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from ivr.speech import audio

log = logging.getLogger(__name__)

__all__ = [
    "SynthError",
    "SynthJob",
    "SynthResult",
    "engine_versions",
    "init_worker",
    "ping",
    "synthesize",
]

#: Spoken once by every new worker so the first real request is a warm one.
WARM_UP_TEXT = "Selamat datang."


class SynthError(RuntimeError):
    """Synthesis failed inside the worker; the engine's state is suspect."""


@dataclass(frozen=True)
class SynthJob:
    """One request to a worker. Picklable: it crosses the process boundary."""

    text: str
    voice: str
    rate: int
    volume: float
    out_path: str
    timeout: float


@dataclass(frozen=True)
class SynthResult:
    pid: int
    #: Duration of the written 8 kHz file.
    seconds: float
    synth_ms: float
    convert_ms: float


class _Utterance:
    """Completion state of the single utterance in flight."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.completed = False


class _QuietStdout:
    """Stands in for stdout in the worker (P7): forwards to stderr, minus the driver's
    per-file "Audio saved to ..." line, which would flood the server's log."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._drop_newline = False

    def write(self, text: str) -> int:
        if text.startswith("Audio saved to "):
            self._drop_newline = True
            return len(text)
        if self._drop_newline and text == "\n":
            self._drop_newline = False
            return len(text)
        self._drop_newline = False
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


# Module-level strong references: pyttsx3 keeps engines only weakly (P8).
_engine: Any = None
#: ``pyttsx3.drivers._espeak``: the ctypes binding, for ``IsPlaying()``.
_espeak: Any = None
_lock = threading.Lock()
_pending: _Utterance | None = None
_errors: list[BaseException] = []
_applied: tuple[str, int, float] | None = None
#: False until the first utterance: before it pyttsx3 reports itself busy.
_warmed = False


def _on_finished(name: str | None = None, completed: bool = True, **_: Any) -> None:
    utterance = _pending
    if utterance is not None:
        utterance.completed = completed
        utterance.done.set()


def _on_error(name: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    # E.g. an unknown voice: pyttsx3 keeps the previous voice and only emits this event.
    _errors.append(exception or SynthError("pyttsx3 reported an error"))


def _scratch_dir() -> str:
    """Where pyttsx3's 22.05 kHz intermediate goes: RAM when available."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return tempfile.gettempdir()


def _wait_quiet(deadline: float) -> None:
    """Wait until pyttsx3 is not busy and espeak-ng has nothing queued or playing.

    Found while testing (not in SPEECH.md): pyttsx3 runs espeak-ng in asynchronous
    mode, where ``setProperty('rate'|'volume')`` only *queues* a parameter command.
    ``runAndWait()`` ends its batch with ``endLoop()``, which calls the driver's
    ``stop()``; if espeak is still busy at that moment (with such a command, or the
    tail of the previous utterance), ``stop()`` calls ``espeak_Cancel()``, which drops
    the queued parameter change, and leaves a sticky ``_stopping`` flag that cancels
    the *next* utterance (``finished-utterance`` with ``completed=False``). Seen in 1
    of 8 fresh processes: a request rendered at the old rate, the next one cancelled.
    So nothing is queued before espeak is idle.
    """
    while (_warmed and _engine.isBusy()) or _espeak.IsPlaying():
        if time.monotonic() >= deadline:
            raise SynthError("espeak-ng did not become idle")
        time.sleep(0.001)


def init_worker(voice: str, rate: int, volume: float) -> None:
    """Pool initializer: create the process's one engine and warm it up.

    Warming up pays the P1 "first call returns early" case, the P3a "never spoken"
    hang risk, and the numpy/soxr imports before any caller is waiting. The first
    utterance is queued without any ``setProperty`` in its batch: in the first batch
    those are only executed inside ``runAndWait()``, right before ``stop()`` (see
    :func:`_wait_quiet`), so the settings are applied afterwards, on an idle engine.
    """
    global _engine, _espeak
    if _engine is not None:
        return
    # Ctrl-C in a terminal reaches the whole process group: the server stops
    # its workers itself, and a worker dying of KeyboardInterrupt would print
    # a traceback and be replaced in the middle of the shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout = _QuietStdout(sys.stderr)  # P7
    import pyttsx3  # type: ignore[import-untyped]
    from pyttsx3.drivers import _espeak as espeak_binding  # type: ignore[import-untyped]

    engine = pyttsx3.init("espeak")
    engine.connect("finished-utterance", _on_finished)
    engine.connect("error", _on_error)
    _engine = engine
    _espeak = espeak_binding
    fd, scratch = tempfile.mkstemp(dir=_scratch_dir(), prefix="ivr-tts-warm-", suffix=".wav")
    os.close(fd)
    converted = scratch + ".8k.wav"
    deadline = time.monotonic() + 30.0
    try:
        with _lock:
            _speak_to_file(WARM_UP_TEXT, scratch, deadline)
            _apply_settings(voice, rate, volume, deadline)
            _speak_to_file(WARM_UP_TEXT, scratch, deadline)
        audio.convert_to_asterisk(scratch, converted)
    finally:
        for path in (scratch, converted):
            if os.path.exists(path):
                os.unlink(path)


def _apply_settings(voice: str, rate: int, volume: float, deadline: float) -> None:
    """Set voice, rate and volume on the idle engine and wait until espeak applied them."""
    global _applied
    if _applied == (voice, rate, volume):
        return
    _applied = None
    _wait_quiet(deadline)
    _errors.clear()
    # Executed at once (the engine is idle, so pyttsx3 pumps its queue immediately).
    # Write-only: reading rate/volume back is broken in pyttsx3 2.99 (SPEECH.md section 1).
    _engine.setProperty("voice", voice)
    _engine.setProperty("rate", rate)
    _engine.setProperty("volume", volume)
    _wait_quiet(deadline)
    if _errors:
        raise SynthError(f"pyttsx3 rejected voice={voice!r} rate={rate} volume={volume}: {_errors[0]!r}")
    _applied = (voice, rate, volume)


def _speak_to_file(text: str, path: str, deadline: float) -> None:
    """Exactly one ``save_to_file`` + ``runAndWait()``, then wait for completion (P1-P4)."""
    global _pending, _warmed
    for _attempt in range(2):
        _wait_quiet(deadline)
        utterance = _Utterance()
        _errors.clear()
        _pending = utterance
        try:
            _engine.save_to_file(text, path)
            _engine.runAndWait()
            # The first runAndWait() in a process returns before synthesis ends (P1); the
            # event is emitted from espeak's thread after the WAV is written.
            if not utterance.done.wait(max(0.0, deadline - time.monotonic())):
                raise SynthError("no finished-utterance before the deadline")
        finally:
            _pending = None
        _warmed = True
        _wait_quiet(deadline)  # let the callback finish its setBusy(False)/endLoop()
        if _errors:
            raise SynthError(f"pyttsx3 error: {_errors[0]!r}")
        if utterance.completed:
            return
        # Cancelled by a stale stop() (see _wait_quiet); that flag is consumed now.
        log.warning("utterance cancelled by espeak-ng, retrying once")
    raise SynthError("utterance was cancelled twice")


def synthesize(job: SynthJob) -> SynthResult:
    """Render ``job.text`` into ``job.out_path`` as an 8 kHz PCM WAV (atomic replace).

    The default ``synth`` of :class:`ivr.speech.tts.SpeechEngine`. Raises
    :class:`SynthError` on any failure; the parent then replaces the process.
    """
    if _engine is None:  # a pool built without our initializer
        init_worker(job.voice, job.rate, job.volume)
    if not job.text.strip():
        raise SynthError("empty text")  # pyttsx3 asserts on it; P3 if it got through
    fd, scratch = tempfile.mkstemp(dir=_scratch_dir(), prefix="ivr-tts-", suffix=".wav")
    os.close(fd)
    try:
        with _lock:  # P5: one utterance at a time per process
            started = time.perf_counter()
            deadline = time.monotonic() + job.timeout
            _apply_settings(job.voice, job.rate, job.volume, deadline)
            _speak_to_file(job.text, scratch, deadline)
            synthesized = time.perf_counter()
        if audio.wav_info(scratch).frames == 0:
            # P2's symptom: a 0.0 s file. Never let it into the cache.
            raise SynthError("synthesizer produced no audio")
        info = audio.convert_to_asterisk(scratch, job.out_path)
        converted = time.perf_counter()
    finally:
        os.unlink(scratch)
    return SynthResult(
        pid=os.getpid(),
        seconds=info.seconds,
        synth_ms=(synthesized - started) * 1000,
        convert_ms=(converted - synthesized) * 1000,
    )


def ping(hold_seconds: float = 0.0) -> int:
    """Round trip used to start and check pool workers; runs after the initializer.

    ``hold_seconds`` keeps this worker busy a moment so that the parent's concurrent
    pings reach the other workers too.
    """
    if _engine is None:
        raise SynthError("worker has no engine")
    if hold_seconds > 0:
        time.sleep(hold_seconds)
    return os.getpid()


@lru_cache(maxsize=1)
def engine_versions() -> dict[str, str]:
    """espeak-ng and pyttsx3 versions for the cache key, without creating an engine.

    Safe in the server process: loading the library starts no thread (only
    ``espeak_Initialize`` does, which is what makes ``fork`` unsafe, P6). The search
    order is pyttsx3's own (``pyttsx3/drivers/_espeak.py``).
    """
    try:
        pyttsx3_version = metadata.version("pyttsx3")
    except metadata.PackageNotFoundError:
        pyttsx3_version = "missing"
    espeak_version = "missing"
    for name in ("libespeak-ng.so.1", "/usr/local/lib/libespeak-ng.so.1", "libespeak.so.1"):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        library.espeak_Info.restype = ctypes.c_char_p
        library.espeak_Info.argtypes = [ctypes.c_void_p]
        raw = library.espeak_Info(None)
        espeak_version = raw.decode("ascii", "replace") if raw else "unknown"
        break
    return {"espeak": espeak_version, "pyttsx3": pyttsx3_version}
