"""Text to cached 8 kHz WAV files, with pyttsx3 confined to killable worker processes.

Why a process pool and not a thread: pyttsx3 is neither thread-safe (SPEECH.md P5)
nor fork-safe (P6), prints to stdout (P7), and can hang forever inside espeak
(P3). Only a process can be killed, so every synthesis runs in a
``ProcessPoolExecutor`` started with ``forkserver``, inside ``aio.wait_for``;
on a timeout or a dead worker the pool's processes are killed and a fresh pool is
built in the background, and the caller gets :class:`SpeechUnavailable` (its flow
then plays the pre-rendered apology, PRODUCT.md section 4).

Cache: ``<cache_dir>/<k[:2]>/<k>.wav`` where ``k`` is the sha256 of the normalized
text, the voice settings, the espeak-ng and pyttsx3 versions, the normalizer
version and the output format (SPEECH.md section 6). A hit costs a normalize, a
hash and a ``stat``. Next to each WAV, ``<k>.txt`` holds the original text; it is
written first, so a WAV never exists without the text that says what it is.

Timeouts: ``timeout`` bounds one synthesis once a worker has it (exceeding it
kills the pool). The ``timeout`` of :meth:`SpeechEngine.render` bounds how long a
*caller* waits, queueing included; a caller that gives up does not cancel the
render, which completes into the cache for the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import multiprocessing
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ivr import aio
from ivr.speech import worker
from ivr.speech.audio import replace_atomically
from ivr.speech.normalize import NORMALIZER_VERSION, normalize
from ivr.speech.worker import SynthJob, SynthResult

__all__ = ["SpeechEngine", "SpeechError", "SpeechUnavailable", "Synth", "Voice"]

log = logging.getLogger(__name__)

Synth = Callable[[SynthJob], SynthResult]

#: Part of the cache key: bump if the file format written by the worker changes.
OUTPUT_FORMAT = "wav8k"
#: Smaller than this cannot be a WAV with audio (44-byte header): treat as a miss.
_MIN_WAV_BYTES = 45
#: Consecutive failed renders after which health() reports "down".
_DOWN_AFTER_FAILURES = 3


class SpeechError(Exception):
    """Base class of speech failures."""


class SpeechUnavailable(SpeechError):
    """No audio could be produced in time: the caller must take its fallback."""


@dataclass(frozen=True)
class Voice:
    """espeak-ng voice settings (SPEECH.md section 1: ``id`` selects ``poz/id``)."""

    name: str = "id"
    #: Words per minute; 150 suits narrowband phone audio (to be tuned by ear).
    rate: int = 150
    #: 0..1. Above 1 saturates (SPEECH.md section 1).
    volume: float = 1.0


class SpeechEngine:
    """Renders text to cached Asterisk-playable WAV files.

    Use as ``async with SpeechEngine(...) as engine`` or call :meth:`start` and
    :meth:`close`. ``synth`` is the function run in the worker process; tests pass a
    picklable top-level function to simulate a hang.
    """

    def __init__(
        self,
        cache_dir: Path,
        voice: Voice = Voice(),  # frozen dataclass: safe as a default
        workers: int = 1,
        timeout: float = 5.0,
        synth: Synth = worker.synthesize,
        *,
        start_timeout: float = 30.0,
        retry_after: float = 5.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.cache_dir = Path(cache_dir)
        self.voice = voice
        self.workers = workers
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.retry_after = retry_after
        self._synth = synth
        self._versions = worker.engine_versions()
        self._started = False
        self._closed = False
        self._pool: ProcessPoolExecutor | None = None
        self._pool_task: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._slots = asyncio.Semaphore(workers)
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        # Counters for health().
        self._hits = 0
        self._misses = 0
        self._failures = 0
        self._consecutive_failures = 0
        self._restarts = 0
        self._last_error: str | None = None
        self._latencies_ms: deque[float] = deque(maxlen=512)
        #: Told the seconds of every successful synthesis (metrics).
        self.on_synthesized: Callable[[float], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start and warm the worker pool, so the first miss is a warm one (~44 ms)."""
        if self._closed:
            raise SpeechError("speech engine is closed")
        self._started = True
        await asyncio.to_thread(self._prepare)
        await self._ensure_pool()

    def _prepare(self) -> None:
        """Load the normalizer's locale data (~30 ms, would stall the first render on the
        event loop), create the cache, remove temp files of workers killed mid-write."""
        normalize("Senin, 11/08/2025 pukul 08.30 WIB, Rp 1.500.000 di RSUD")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        stale_before = time.time() - 300  # younger ones may belong to another live process
        for temp in self.cache_dir.glob("*/.*.tmp"):
            with contextlib.suppress(OSError):
                if temp.stat().st_mtime < stale_before:
                    temp.unlink()

    async def close(self) -> None:
        """Cancel pending renders and stop the workers (killing any that hang)."""
        self._closed = True
        pending = list(self._inflight.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._pool_task is not None:
            # Not cancelled: the pool is being built in a thread we cannot stop; let it
            # finish (bounded by start_timeout) so the pool is shut down, not leaked.
            await asyncio.gather(self._pool_task, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            # Renders were in flight: their workers may be stuck (P3), do not wait for them.
            await asyncio.to_thread(_stop_pool, pool, kill=bool(pending))
        await asyncio.gather(*self._reapers, return_exceptions=True)

    async def __aenter__(self) -> SpeechEngine:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ cache

    def cache_key(self, normalized_text: str) -> str:
        """sha256 over everything that changes the audio (SPEECH.md section 6)."""
        material = {
            "text": normalized_text,
            "voice": self.voice.name,
            "rate": self.voice.rate,
            "volume": self.voice.volume,
            "espeak": self._versions["espeak"],
            "pyttsx3": self._versions["pyttsx3"],
            "normalizer": NORMALIZER_VERSION,
            "format": OUTPUT_FORMAT,
        }
        encoded = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def path_for(self, text: str) -> Path:
        """Where the WAV for ``text`` lives (or will live) in the cache."""
        return self._wav_path(self.cache_key(_normalized_or_raise(text)))

    def _wav_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.wav"

    @staticmethod
    def _is_rendered(path: Path) -> bool:
        try:
            return path.stat().st_size >= _MIN_WAV_BYTES
        except OSError:
            return False

    def cached(self, text: str) -> Path | None:
        """The cached WAV for ``text`` if it exists. No worker round trip (~0.05 ms)."""
        normalized = normalize(text)
        if not normalized:
            return None
        path = self._wav_path(self.cache_key(normalized))
        if self._is_rendered(path):
            self._hits += 1
            return path
        return None

    # ------------------------------------------------------------------ render

    async def render(self, text: str, timeout: float | None = None) -> Path:
        """Return the cached WAV for ``text``, synthesizing it on a miss.

        Concurrent requests for the same text share one synthesis. ``timeout``
        (default: the engine's) bounds this caller's wait; on expiry, or when the
        synthesis fails, raises :class:`SpeechUnavailable`. Raises ``ValueError``
        when the text has nothing to say (empty, only emoji...).
        """
        normalized = _normalized_or_raise(text)
        key = self.cache_key(normalized)
        path = self._wav_path(key)
        if self._is_rendered(path):
            self._hits += 1
            return path
        if self._closed or not self._started:
            raise SpeechUnavailable("speech engine is not running")
        task = self._inflight.get(key)
        if task is None:
            self._misses += 1
            task = asyncio.create_task(self._render_miss(normalized, text, path), name=f"tts-render-{key[:12]}")
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
        wait = self.timeout if timeout is None else timeout
        try:
            # shield: a caller that hangs up must not cancel a render others wait for.
            return await aio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            raise SpeechUnavailable(f"speech not ready within {wait:.1f} s") from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                # The render was cancelled by close(), not this caller: to the caller
                # that is a speech failure, not a reason to unwind its call.
                raise SpeechUnavailable("speech engine closed") from None
            raise

    def _forget(self, key: str, task: asyncio.Task[Path]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: already reported to the callers and in health()

    async def _render_miss(self, normalized: str, original: str, path: Path) -> Path:
        started = time.perf_counter()
        try:
            # In a thread: a burst of misses would otherwise stall the loop on file I/O.
            await asyncio.to_thread(_write_sidecar, path.with_suffix(".txt"), original)
            job = SynthJob(
                text=normalized,
                voice=self.voice.name,
                rate=self.voice.rate,
                volume=self.voice.volume,
                out_path=str(path),
                timeout=self.timeout,
            )
            async with self._slots:
                await self._run(job)
        except Exception as exc:
            self._failures += 1
            self._consecutive_failures += 1
            self._last_error = str(exc) or type(exc).__name__
            log.warning("speech render failed for %r: %s", original[:60], self._last_error)
            if isinstance(exc, SpeechUnavailable):
                raise
            raise SpeechUnavailable(self._last_error) from exc
        self._consecutive_failures = 0
        elapsed = time.perf_counter() - started
        self._latencies_ms.append(elapsed * 1000)
        if self.on_synthesized is not None:
            self.on_synthesized(elapsed)
        return path

    async def _run(self, job: SynthJob) -> SynthResult:
        """Run one job on the pool; on a hang or a dead worker, replace the pool."""
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            pool = await self._ensure_pool()
            try:
                return await aio.wait_for(loop.run_in_executor(pool, self._synth, job), self.timeout)
            except TimeoutError:
                # P3/P6-style hangs never return: only killing the process ends them.
                self._recycle(pool, f"synthesis timed out after {self.timeout:.1f} s")
                raise SpeechUnavailable(f"synthesis timed out after {self.timeout:.1f} s") from None
            except BrokenProcessPool as exc:
                if self._pool is not pool and attempt == 0:
                    continue  # killed because of another job's hang: retry once
                self._recycle(pool, "a TTS worker process died")
                raise SpeechUnavailable("a TTS worker process died") from exc
            except Exception as exc:
                # The worker raised: its engine may be wedged (P1-P4), start afresh.
                self._recycle(pool, f"worker error: {exc!r}")
                raise SpeechUnavailable(f"synthesis failed: {exc}") from exc
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ pool

    async def _ensure_pool(self) -> ProcessPoolExecutor:
        while True:
            if self._closed:
                raise SpeechUnavailable("speech engine is closed")
            if self._pool is not None:
                return self._pool
            task = self._pool_task
            if task is None or (task.done() and time.monotonic() >= self._retry_at):
                task = self._pool_task = asyncio.create_task(self._start_pool(), name="tts-pool-start")
                task.add_done_callback(_retrieve)
            elif task.done():
                raise SpeechUnavailable(f"TTS workers unavailable: {self._last_error}")
            await asyncio.shield(task)

    async def _start_pool(self) -> None:
        started = time.perf_counter()
        try:
            pool, pids = await asyncio.to_thread(self._spawn_pool)
        except Exception as exc:
            self._retry_at = time.monotonic() + self.retry_after
            broken = isinstance(exc, BrokenProcessPool)
            hint = " (the worker logged the initializer's error on stderr)" if broken else ""
            self._last_error = f"TTS workers failed to start: {exc!r}{hint}"
            log.error("%s", self._last_error)
            raise SpeechUnavailable(self._last_error) from exc
        if self._closed:
            await asyncio.to_thread(_stop_pool, pool, kill=True)
            raise SpeechUnavailable("speech engine is closed")
        self._pool = pool
        log.info(
            "TTS pool ready: %d worker(s) %s, espeak-ng %s, pyttsx3 %s, %.0f ms",
            len(pids),
            pids,
            self._versions["espeak"],
            self._versions["pyttsx3"],
            (time.perf_counter() - started) * 1000,
        )

    def _spawn_pool(self) -> tuple[ProcessPoolExecutor, list[int]]:
        """Blocking (run in a thread): the first forkserver start and each process
        spawn block, and must not stall the event loop."""
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            # Never fork: a forked child of a process that ever touched espeak hangs (P6),
            # and Python 3.11's Linux default is fork.
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=worker.init_worker,
            initargs=(self.voice.name, self.voice.rate, self.voice.volume),
        )
        ready = False
        try:
            # Each submit while no worker is idle spawns a process. Ping until every
            # worker has answered, so all of them are started and warmed up (in the
            # initializer) now rather than on a caller's request. A ping holds its
            # worker briefly so that concurrent pings spread over the processes.
            deadline = time.monotonic() + self.start_timeout
            pids: set[int] = set()
            while len(pids) < self.workers:
                futures = [pool.submit(worker.ping, 0.02) for _ in range(self.workers)]
                pids.update(future.result(timeout=max(0.0, deadline - time.monotonic())) for future in futures)
            ready = True
        finally:
            if not ready:
                _stop_pool(pool, kill=True)
        return pool, sorted(pids)

    def _recycle(self, pool: ProcessPoolExecutor, reason: str) -> None:
        """Kill ``pool``'s processes now and build a replacement in the background."""
        if self._pool is not pool:
            return  # already replaced by another failing job
        self._pool = None
        self._restarts += 1
        self._last_error = reason
        log.warning("restarting TTS workers: %s", reason)
        processes = _processes_of(pool)
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.kill()  # SIGKILL: a hang inside espeak ignores anything softer
        reaper = asyncio.create_task(asyncio.to_thread(_stop_pool, pool, kill=True), name="tts-pool-reaper")
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        if not self._closed:
            self._pool_task = asyncio.create_task(self._start_pool(), name="tts-pool-start")
            self._pool_task.add_done_callback(_retrieve)

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """Status for /health and logs: "ok", "degraded" (failing or restarting) or "down"."""
        pids = sorted(p.pid for p in _processes_of(self._pool) if p.is_alive() and p.pid is not None)
        alive = len(pids)
        if self._closed or not self._started or self._consecutive_failures >= _DOWN_AFTER_FAILURES:
            status = "down"
        elif self._pool is None and self._pool_task is not None and self._pool_task.done():
            status = "down"  # the last pool start failed
        elif self._consecutive_failures or alive < self.workers:
            status = "degraded"
        else:
            status = "ok"
        latencies = sorted(self._latencies_ms)
        return {
            "status": status,
            "workers": self.workers,
            "alive_workers": alive,
            "worker_pids": pids,
            "hits": self._hits,
            "misses": self._misses,
            "failures": self._failures,
            "restarts": self._restarts,
            "inflight": len(self._inflight),
            "last_error": self._last_error,
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1) if latencies else None,
            "espeak": self._versions["espeak"],
            "pyttsx3": self._versions["pyttsx3"],
        }


def _normalized_or_raise(text: str) -> str:
    normalized = normalize(text)
    if not normalized:
        raise ValueError(f"nothing to say in {text!r}")
    return normalized


def _write_sidecar(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    replace_atomically(path, lambda handle: handle.write(data))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Done-callback for background tasks: their errors are logged and in health()."""
    if not task.cancelled():
        task.exception()


def _processes_of(pool: ProcessPoolExecutor | None) -> list[multiprocessing.process.BaseProcess]:
    # CPython keeps the worker processes in the private ``_processes`` dict (3.11-3.13;
    # 3.14 adds kill_workers()). It becomes None after shutdown.
    processes = getattr(pool, "_processes", None) or {}
    return list(processes.values())


def _stop_pool(pool: ProcessPoolExecutor, *, kill: bool, grace: float = 2.0) -> None:
    """Blocking: stop a pool, killing workers that do not exit within ``grace``."""
    processes = _processes_of(pool)
    if kill:
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                process.kill()
            process.join(1.0)
    pool.shutdown(wait=True)
