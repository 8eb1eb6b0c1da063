"""Keeping the agenda read-backs rendered before anyone asks (PRODUCT.md section 4).

A change to an agenda item calls :meth:`AgendaPrerenderer.notify`; one owned
background task then re-composes the read-back of every (leader, day) the change
touches and renders whatever text is not in the TTS cache yet. Notifications are
debounced (a burst of edits waits ``debounce`` seconds and is handled as one
batch) and coalesced (a day notified ten times is composed once). A failed
render is retried after ``retry_after`` seconds.

A sweep renders today, tomorrow and the day after for every leader, plus the
leader menu: at start-up, every ``sweep_interval`` and just after midnight. The
texts of a day do not depend on when they are heard (``ivr.agenda.speech``), so
tomorrow's audio rendered today is what callers hear tomorrow.

The last composed read-back of each day is kept in memory: if the database is
unavailable during a call, the flow can still read the agenda as last known.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.agenda import store
from ivr.agenda.speech import DayReadback, day_readback, leader_menu_text
from ivr.agenda.store import DayKey, LeaderInfo
from ivr.records import STORAGE_ERRORS
from ivr.speech.tts import SpeechUnavailable

log = logging.getLogger("ivr.agenda.prerender")

#: Days ahead of today the sweep renders (0 = today).
SWEEP_DAYS = (0, 1, 2)
#: Read-backs kept in memory for a database outage: this many days back.
KEEP_DAYS_BACK = 1


class Speech(Protocol):
    """What the prerenderer needs of ``ivr.speech.tts.SpeechEngine``."""

    def cached(self, text: str) -> Path | None: ...

    async def render(self, text: str, timeout: float | None = None) -> Path: ...


@dataclass
class _Batch:
    items: dict[int, float] = field(default_factory=dict)
    days: dict[DayKey, float] = field(default_factory=dict)
    sweep: float | None = None

    def __bool__(self) -> bool:
        return bool(self.items or self.days or self.sweep is not None)


def _merge(target: dict[Any, float], key: Any, first: float) -> None:
    target[key] = min(target.get(key, first), first)


class AgendaPrerenderer:
    """Owns one background task; start with :meth:`start`, stop with :meth:`close`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        speech: Speech,
        zone: ZoneInfo,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        debounce: float = 0.05,
        sweep_interval: float = 3600.0,
        retry_after: float = 5.0,
        db_timeout: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.speech = speech
        self.zone = zone
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.debounce = debounce
        self.sweep_interval = sweep_interval
        self.retry_after = retry_after
        self.db_timeout = db_timeout
        self._pending = _Batch()
        #: Work that failed: retried once ``_retry_at`` has passed.
        self._failed = _Batch()
        self._retry_at = math.inf
        self._next_sweep = math.inf
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._last_known: dict[DayKey, DayReadback] = {}
        self._leaders: tuple[LeaderInfo, ...] = ()
        # Counters for stats().
        self._readbacks = 0
        self._synthesized = 0
        self._already_cached = 0
        self._failures = 0
        self._sweeps = 0
        self._last_error: str | None = None
        self._last_sweep_at: dt.datetime | None = None
        self._latencies_ms: deque[float] = deque(maxlen=1000)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background task and queue the start-up sweep."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name="agenda-prerender")
        self.sweep()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # ------------------------------------------------------------------ requests

    def notify(self, item_id: int | None = None, *, leader_id: int | None = None, day: dt.date | None = None) -> None:
        """Re-render what an item (every day its read-back touches, as it is
        now) or one leader's day says. Returns at once; never raises."""
        now = time.monotonic()
        if item_id is not None:
            _merge(self._pending.items, item_id, now)
        if leader_id is not None and day is not None:
            _merge(self._pending.days, (leader_id, day), now)
        self._poke()

    def notify_days(self, days: Iterable[DayKey]) -> None:
        """Re-render these (leader, day) read-backs. An edit that moves an item
        passes the days before and after the change."""
        now = time.monotonic()
        for key in days:
            _merge(self._pending.days, key, now)
        self._poke()

    def sweep(self) -> None:
        """Re-check today, tomorrow and the day after for every leader."""
        if self._pending.sweep is None:
            self._pending.sweep = time.monotonic()
        self._poke()

    def _poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until nothing is pending or being rendered (failed work waiting for
        its retry does not count). For tests and benchmarks; bound it yourself."""
        await self._idle.wait()

    # ------------------------------------------------------------------ what calls read

    def last_known(self, leader_id: int, day: dt.date) -> DayReadback | None:
        """The read-back last composed for this day (for a database outage)."""
        return self._last_known.get((leader_id, day))

    @property
    def leaders(self) -> tuple[LeaderInfo, ...]:
        """The leaders as last read (for a database outage)."""
        return self._leaders

    def remember_leaders(self, leaders: Iterable[LeaderInfo]) -> None:
        self._leaders = tuple(leaders)

    def today(self) -> dt.date:
        return self.clock().astimezone(self.zone).date()

    # ------------------------------------------------------------------ the task

    async def _run(self) -> None:
        while True:
            self._schedule_sweep()
            if not self._pending and time.monotonic() < self._retry_at:
                self._idle.set()
                wait = min(self._retry_at, self._next_sweep) - time.monotonic()
                try:
                    async with asyncio.timeout(max(0.0, wait) if math.isfinite(wait) else None):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                continue
            self._idle.clear()
            # Debounce: the rest of a burst of edits joins this batch.
            await asyncio.sleep(self.debounce)
            self._wake.clear()
            batch, self._pending = self._pending, _Batch()
            if time.monotonic() >= self._retry_at:
                batch = self._with_retries(batch)
            try:
                await self._process(batch)
            except Exception as exc:  # never let one bad batch stop the renderer
                log.exception("agenda prerender batch failed")
                self._fail(batch, f"{type(exc).__name__}: {exc}")

    def _schedule_sweep(self) -> None:
        now = time.monotonic()
        if self._next_sweep == math.inf:
            self._next_sweep = now + self._seconds_to_next_sweep()
        elif now >= self._next_sweep:
            self._next_sweep = now + self._seconds_to_next_sweep()
            if self._pending.sweep is None:
                self._pending.sweep = now

    def _seconds_to_next_sweep(self) -> float:
        """The sweep interval, or just after the next local midnight if sooner
        (a new day brings a new "day after tomorrow")."""
        local = self.clock().astimezone(self.zone)
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0, 0, 5), tzinfo=self.zone)
        return max(1.0, min(self.sweep_interval, (midnight - local).total_seconds()))

    def _with_retries(self, batch: _Batch) -> _Batch:
        failed, self._failed, self._retry_at = self._failed, _Batch(), math.inf
        for item_id, first in failed.items.items():
            _merge(batch.items, item_id, first)
        for key, first in failed.days.items():
            _merge(batch.days, key, first)
        if failed.sweep is not None and batch.sweep is None:
            batch.sweep = failed.sweep
        return batch

    def _fail(self, batch: _Batch, reason: str) -> None:
        self._failures += 1
        self._last_error = reason
        for item_id, first in batch.items.items():
            _merge(self._failed.items, item_id, first)
        for key, first in batch.days.items():
            _merge(self._failed.days, key, first)
        if batch.sweep is not None and self._failed.sweep is None:
            self._failed.sweep = batch.sweep
        self._retry_at = min(self._retry_at, time.monotonic() + self.retry_after)

    async def _process(self, batch: _Batch) -> None:
        days = dict(batch.days)
        #: Days named by a change (not just the sweep): their latency is measured.
        changed: set[DayKey] = set(days)
        render_menu = batch.sweep is not None
        try:
            async with asyncio.timeout(self.db_timeout), self.sessions() as session:
                for item_id, first in batch.items.items():
                    item = await store.find_item(session, item_id)
                    if item is None:
                        continue  # deleted: the deleting side names its days
                    for key in store.affected_days(item):
                        _merge(days, key, first)
                        changed.add(key)
                if batch.sweep is not None:
                    leaders = await store.list_leaders(session)
                    self.remember_leaders(leaders)
                    today = self.today()
                    for leader in leaders:
                        for ahead in SWEEP_DAYS:
                            _merge(days, (leader.id, today + dt.timedelta(days=ahead)), batch.sweep)
        except STORAGE_ERRORS as exc:
            log.warning("agenda prerender: database unavailable (%s); retrying", type(exc).__name__)
            self._fail(batch, f"database: {type(exc).__name__}")
            return
        if render_menu and self._leaders:
            if not await self._render([leader_menu_text(self._leaders)]):
                self._fail(_Batch(sweep=batch.sweep), self._last_error or "render failed")
        failed = _Batch()
        for key, first in sorted(days.items()):
            if not await self._render_day(key, first, measure=key in changed):
                failed.days[key] = first
        if failed:
            self._fail(failed, self._last_error or "render failed")
        if batch.sweep is not None:
            self._sweeps += 1
            self._last_sweep_at = self.clock()
            self._forget_old_days()

    async def _render_day(self, key: DayKey, first: float, *, measure: bool) -> bool:
        leader_id, day = key
        try:
            async with asyncio.timeout(self.db_timeout), self.sessions() as session:
                agenda = await store.load_day(session, leader_id, day)
        except store.LeaderNotFound:
            self._last_known.pop(key, None)
            return True
        except STORAGE_ERRORS as exc:
            self._last_error = f"database: {type(exc).__name__}"
            return False
        readback = day_readback(agenda)
        self._last_known[key] = readback
        if not await self._render(readback.texts):
            return False
        self._readbacks += 1
        if measure:
            self._latencies_ms.append((time.monotonic() - first) * 1000)
        return True

    async def _render(self, texts: Iterable[str]) -> bool:
        """Render every text not yet cached; True when all are cached now."""
        missing = []
        for text in texts:
            if self.speech.cached(text) is None:
                missing.append(text)
            else:
                self._already_cached += 1
        if not missing:
            return True
        results = await asyncio.gather(*(self.speech.render(text) for text in missing), return_exceptions=True)
        ok = True
        for text, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, SpeechUnavailable | ValueError):
                    raise result
                ok = False
                self._last_error = f"tts: {result}"
                log.warning("agenda read-back not rendered (%s): %r", result, text[:60])
            else:
                self._synthesized += 1
        return ok

    def _forget_old_days(self) -> None:
        oldest = self.today() - dt.timedelta(days=KEEP_DAYS_BACK)
        for key in [key for key in self._last_known if key[1] < oldest]:
            del self._last_known[key]

    # ------------------------------------------------------------------ health

    def stats(self) -> dict[str, Any]:
        latencies = sorted(self._latencies_ms)
        running = self._task is not None and not self._task.done()
        pending = len(self._pending.items) + len(self._pending.days) + (self._pending.sweep is not None)
        waiting = len(self._failed.items) + len(self._failed.days) + (self._failed.sweep is not None)
        return {
            "status": "ok" if running and not waiting else ("degraded" if running else "down"),
            "pending": pending,
            "retrying": waiting,
            "readbacks_rendered": self._readbacks,
            "texts_synthesized": self._synthesized,
            "texts_already_cached": self._already_cached,
            "failures": self._failures,
            "sweeps": self._sweeps,
            "last_sweep_at": self._last_sweep_at.isoformat() if self._last_sweep_at else None,
            "last_error": self._last_error,
            "change_to_cached_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "change_to_cached_p99_ms": (
                round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1) if latencies else None
            ),
        }
