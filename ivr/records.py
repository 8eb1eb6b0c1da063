"""Keeping a call's record safe: the recorder a call writes to, and the spool.

The recorder collects the timeline in memory (appending is free on the call
path) and saves the whole snapshot at checkpoints: when the call starts, when
something staff must see happens (a ticket is submitted), and when it ends.
When the database is down the snapshot goes to a local journal instead, one
fsynced JSON file per call, and the spool replays it once the database answers;
saving is idempotent, so a replay never duplicates anything.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr import aio
from ivr.storage.calls import CallSnapshot, EventFacts, RecordingFacts, SavedCall, save_calls
from ivr.storage.database import WholeWork

log = logging.getLogger("ivr.records")

#: Errors that mean "the database is not there right now" rather than a bug.
STORAGE_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


#: A write under way for longer than this makes the health check say so: a
#: caller is never kept waiting this long (``CALLER_WAIT``).
SLOW_WRITE_SECONDS = 5.0


class CallStore:
    """Saves call snapshots: the one way call records reach the database.

    With ``batch_writes`` one writer task saves everything in batches (group
    commit): a few hundred calls that checkpoint at once cost a few
    transactions instead of queueing on SQLite's lock (whose busy handler
    sleeps and retries) or on PostgreSQL's connection pool, which the calls'
    reads need too.

    Each transaction runs whole (``WholeWork``): on an SQLite file in one
    thread of its own, one hand-over per batch, and not cut short by
    ``timeout`` (SQLite cannot be interrupted mid-commit; its busy timeout
    bounds the wait). A waiter that gives up may therefore find its save written after
    all: ``CallRecorder`` then looks the stored state up on its next save.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch_writes: bool,
        timeout: float = 10.0,
        batch_size: int = 100,
    ) -> None:
        self.sessions = sessions
        self.timeout = timeout
        self.batch_size = batch_size
        self._queue: asyncio.Queue[tuple[CallSnapshot, SavedCall | None, asyncio.Future[SavedCall]]] | None = (
            asyncio.Queue() if batch_writes else None
        )
        self._writer: asyncio.Task[None] | None = None
        self._work = WholeWork(sessions, threads=1, name="call-store")
        #: For the health check: did the last write fail, and when did each
        #: write still under way start (a read may work while writes do not:
        #: SQLite locked by another process, a read-only file, a full disk).
        self.last_write_failed = False
        self._writes_started: dict[int, float] = {}
        self._write_ids = itertools.count()

    async def save(self, snapshot: CallSnapshot, known: SavedCall | None = None) -> SavedCall:
        frozen = snapshot.frozen()
        try:
            return await self._save_frozen(frozen, known)
        finally:
            # The save may have given the call a new uniqueid (another call
            # had it): later saves and the spool must use that one too.
            snapshot.uniqueid = frozen.uniqueid

    async def _save_frozen(self, snapshot: CallSnapshot, known: SavedCall | None) -> SavedCall:
        if self._queue is None:
            return await self._save_one(snapshot, known)
        if self._writer is None or self._writer.done():
            # A fresh context: the writer serves every call, not the one that
            # happened to start it (log lines carry a call's uniqueid).
            self._writer = asyncio.create_task(
                self._write_batches(), name="call-store-writer", context=contextvars.Context()
            )
        done: asyncio.Future[SavedCall] = asyncio.get_running_loop().create_future()
        # A waiter that gave up must not leave "exception never retrieved" behind.
        done.add_done_callback(lambda future: future.cancelled() or future.exception())
        self._queue.put_nowait((snapshot, known, done))
        # shield: a caller that hangs up must not cancel a batch others are in.
        return await aio.wait_for(asyncio.shield(done), self.timeout * 2)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        self._work.close()

    async def _save_one(self, snapshot: CallSnapshot, known: SavedCall | None) -> SavedCall:
        return (await self._transaction([(snapshot, known)]))[0]

    async def _transaction(self, saves: list[tuple[CallSnapshot, SavedCall | None]]) -> list[SavedCall]:
        """Save snapshots in one transaction."""

        def work(connection: Connection) -> list[SavedCall]:
            return save_calls(connection, saves)

        write = next(self._write_ids)
        self._writes_started[write] = time.monotonic()
        try:
            saved = await self._work.run(work, write=True, timeout=self.timeout)
        except STORAGE_ERRORS:
            self.last_write_failed = True
            raise
        finally:
            del self._writes_started[write]
        self.last_write_failed = False
        return saved

    def write_status(self) -> str:
        """ "ok"; "failing" when the last write failed; "slow" when one has
        been under way for more than ``SLOW_WRITE_SECONDS``."""
        if self.last_write_failed:
            return "failing"
        oldest = min(self._writes_started.values(), default=None)
        if oldest is not None and time.monotonic() - oldest > SLOW_WRITE_SECONDS:
            return "slow"
        return "ok"

    async def _write_batches(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [item for item in batch if not item[2].done()]
            try:
                saved = await self._transaction([(snapshot, known) for snapshot, known, _ in batch])
            except STORAGE_ERRORS as exc:
                if len(batch) > 1 and not isinstance(exc, TimeoutError):
                    # One bad snapshot must not fail the others: retry them alone.
                    for snapshot, known, done in batch:
                        await self._settle(done, self._save_one(snapshot, known))
                    continue
                # A slow database fails the batch as a whole: retrying its
                # snapshots one by one would only queue everyone behind it.
                for _, _, done in batch:
                    _fail(done, exc)
                continue
            except Exception as exc:  # a bug in one save: report it to every waiter
                for _, _, done in batch:
                    _fail(done, exc)
                continue
            for (_, _, done), result in zip(batch, saved, strict=True):
                if not done.done():
                    done.set_result(result)

    @staticmethod
    async def _settle(done: asyncio.Future[SavedCall], work: Awaitable[SavedCall]) -> None:
        try:
            result = await work
        except Exception as exc:
            _fail(done, exc)
        else:
            if not done.done():
                done.set_result(result)


def _fail(done: asyncio.Future[SavedCall], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


class Spool:
    """A directory of call snapshots waiting for the database, and the
    snapshots the disk refused too (full disk): those wait in memory."""

    def __init__(self, directory: Path, store: CallStore, retry_seconds: float = 5.0):
        self.directory = directory
        self.store = store
        self.retry_seconds = retry_seconds
        self.replayed = 0
        self._wake = asyncio.Event()
        self._held: dict[str, CallSnapshot] = {}

    def backlog(self) -> int:
        on_disk = sum(1 for _ in self.directory.glob("*.json")) if self.directory.exists() else 0
        return on_disk + len(self._held)

    def hold(self, snapshot: CallSnapshot) -> None:
        """Keep a snapshot the disk would not take until the database takes it
        (lost only if the process dies before that)."""
        self._held[snapshot.uniqueid] = snapshot
        self._wake.set()

    def put(self, snapshot: CallSnapshot) -> Path:
        """Write the snapshot durably (temp file, fsync, rename) and wake the replayer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        safe_name = "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in snapshot.uniqueid) or "call"
        path = self.directory / f"{safe_name}.json"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(snapshot.to_json(), handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        self._wake.set()
        return path

    async def replay_once(self) -> int:
        """Write every spooled snapshot that the database now accepts."""
        done = 0
        for uniqueid, snapshot in list(self._held.items()):
            try:
                await self.store.save(snapshot)
            except STORAGE_ERRORS as exc:
                log.info("database still unavailable for the spool: %s", type(exc).__name__)
                self.replayed += done
                return done
            del self._held[uniqueid]
            done += 1
        for path in sorted(self.directory.glob("*.json")) if self.directory.exists() else []:
            try:
                snapshot = CallSnapshot.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable spool file %s kept aside: %s", path.name, exc)
                path.rename(path.with_suffix(".bad"))
                continue
            try:
                await self.store.save(snapshot)
            except STORAGE_ERRORS as exc:
                log.info("database still unavailable for the spool: %s", type(exc).__name__)
                break
            except Exception:
                log.exception("spooled record %s cannot be saved; kept aside", path.name)
                path.rename(path.with_suffix(".bad"))
                continue
            path.unlink()
            done += 1
        self.replayed += done
        if done:
            log.info("spool: %d call record(s) written to the database", done)
        return done

    async def run(self) -> None:
        """Replay forever; owned and cancelled by the application."""
        while True:
            try:
                async with asyncio.timeout(self.retry_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self.backlog():
                await self.replay_once()


#: The longest a caller waits for a save a flow needs (a ticket number).
CALLER_WAIT = 4.0


class CallRecorder:
    """The record of one call. Flows append; checkpoints save."""

    def __init__(
        self,
        snapshot: CallSnapshot,
        spool: Spool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.snapshot = snapshot
        self.spool = spool
        self.clock = clock
        self.saved: SavedCall | None = None
        self.database_ok = True
        self._seq = 0
        self._pending: asyncio.Task[bool] | None = None
        #: A save failed or was given up on: it may still have been written,
        #: so the next save looks the stored state up instead of trusting
        #: ``saved`` (which would write its timeline rows twice).
        self._stored_state_unknown = False

    @property
    def ticket_number(self) -> str | None:
        return self.saved.ticket_number if self.saved else None

    def add(self, kind: str, /, **data: Any) -> None:
        self.snapshot.events.append(EventFacts(self._seq, self.clock(), kind, data))
        self._seq += 1

    def add_recording(self, kind: str, relative_path: str, seconds: float) -> None:
        self.snapshot.recordings.append(RecordingFacts(kind, relative_path, seconds, self.clock()))
        self.add("record", kind=kind, path=relative_path, seconds=round(seconds, 2))

    def classify(self, kind: str, *, status: str = "open", priority: str = "normal", **details: Any) -> None:
        """Say what the call's ticket is about (a message, a request, ...)."""
        self.snapshot.ticket_kind = kind
        self.snapshot.ticket_status = status
        self.snapshot.ticket_priority = priority
        self.snapshot.ticket_details.update(details)

    def _save_next(self) -> asyncio.Task[bool]:
        """Queue a save behind the one under way (saves of a call stay in order)."""
        previous = self._pending

        async def save() -> bool:
            if previous is not None:
                await previous  # never raises: _save reports failure as False
            return await self._save()

        self._pending = asyncio.create_task(save(), name=f"save-{self.snapshot.uniqueid}")
        return self._pending

    def save_in_background(self) -> None:
        """Make the call visible to staff at once without making the caller
        wait for the database."""
        self._save_next()

    async def checkpoint(self, wait: float = CALLER_WAIT) -> bool:
        """Save what we have, waiting at most ``wait`` seconds: a caller never
        sits in silence behind a slow database. Returns False when the save
        did not complete in time (it goes on in the background) or failed; the
        call goes on either way and the final save spools if it must."""
        task = self._save_next()
        try:
            return await aio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            log.warning("database slow: the call goes on while its record is saved")
            return False

    async def _save(self) -> bool:
        try:
            known = None if self._stored_state_unknown else self.saved
            self.saved = await self.spool.store.save(self.snapshot, known)
            self.database_ok = True
            self._stored_state_unknown = False
            return True
        except STORAGE_ERRORS as exc:
            self.database_ok = False
            self._stored_state_unknown = True
            log.warning("could not save call record (%s); continuing", type(exc).__name__)
            return False
        except Exception:
            # A bug must not end the call either; the snapshot is still spooled.
            self._stored_state_unknown = True
            log.exception("saving the call record failed")
            return False

    async def finish(self, outcome: str, step: str = "") -> None:
        """Close the record. Never raises: if the database is down, the
        snapshot is spooled to disk and replayed later."""
        self.snapshot.ended_at = self.clock()
        self.snapshot.outcome = outcome
        self.snapshot.outcome_step = step
        if self.snapshot.ticket_kind == "info" and self.snapshot.ticket_status == "open":
            self.snapshot.ticket_status = "closed"
        if not await self._save_next():
            try:
                path = self.spool.put(self.snapshot)
                log.warning("call record spooled to %s", path.name)
            except (OSError, TypeError, ValueError):
                log.exception("could not spool the call record either; it waits in memory for the database")
                self.spool.hold(self.snapshot)
