"""Database outage: the database goes away while calls run. Calls go on
(menus, a message with its recording, emergency routing from the roster in
memory), their records go to the fsynced spool, and once the database is back
the spool replays them: every call exactly once, with its whole timeline.

A full disk under the spool while the database is down: the error is logged
clearly and the calls still go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fault_walks import Plan, emergency_accepted, heard, operator_message, place, set_up
from helpers import set_office_override
from outages import EngineOutage, PostgresProxy
from screening import spool_replayed
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ivr import records
from ivr.config import Settings
from ivr.storage import models

pytestmark = pytest.mark.fault("database outage")

#: Each simulated Asterisk waits this long before answering a command, so a
#: call lasts a second or two and outages begin and end in the middle of calls.
PACE = 0.05


@contextlib.asynccontextmanager
async def server_with_outage(settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    """The running server and the switch that takes its database away."""
    from ivr.app import running

    url = make_url(settings.database_url)
    proxy = None
    if url.get_backend_name() == "postgresql":
        proxy = PostgresProxy(url.host or "127.0.0.1", url.port or 5432)
        await proxy.start()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = settings.model_copy(update={"database_url": proxied})
    try:
        async with running(settings, migrate=False) as runtime:
            await set_up(runtime)
            await set_office_override(runtime, "open")  # before the outage: it is stored
            outage = proxy or EngineOutage(runtime.engine)
            try:
                yield runtime, outage
            finally:
                await outage.restore()
    finally:
        if proxy is not None:
            await proxy.close()


async def _plan(runtime: Any, index: int) -> Plan:
    """A mix of what callers do: leave a message, hear the menu and leave,
    reach the duty officer in an emergency."""
    if index % 3 == 0:
        return await operator_message(runtime)
    if index % 3 == 1:
        return Plan(["*", "5", "5", "5"])
    return await emergency_accepted(runtime)


@pytest.mark.parametrize(
    ("outage_seconds", "calls"),
    [pytest.param(5, 20, id="5s-20-calls"), pytest.param(60, 100, id="60s-100-calls", marks=pytest.mark.long)],
)
async def test_calls_go_on_and_every_record_is_replayed_once(
    settings: Settings, outage_seconds: float, calls: int, fault: Any
):
    fault.cases(calls)
    async with server_with_outage(settings) as (runtime, outage):
        plans = [await _plan(runtime, i) for i in range(calls)]
        # Calls start from 1 s before the outage to 1 s before it ends.
        spacing = (outage_seconds) / calls

        async def caller(index: int) -> Any:
            await asyncio.sleep(index * spacing)
            return await place(runtime, plans[index], pace=PACE, settle=False)

        async def outage_window() -> None:
            await asyncio.sleep(1.0)
            await outage.cut()
            await asyncio.sleep(outage_seconds)
            await outage.restore()

        window = asyncio.create_task(outage_window())
        placed = await asyncio.gather(*(caller(i) for i in range(calls)))
        await window
        if runtime.agi.active:
            await asyncio.wait(set(runtime.agi.active), timeout=30)
        spooled = runtime.services.spool.backlog() + runtime.services.spool.replayed
        await spool_replayed(runtime.services.spool, timeout=60)

        legs = [leg for call in placed for leg in call.legs]
        async with runtime.sessions() as session:
            rows = {row.uniqueid: row for row in await session.scalars(select(models.Call).options())}
            event_seqs: dict[int, list[int]] = {}
            for call_id, seq in await session.execute(
                select(models.TicketEvent.call_id, models.TicketEvent.seq).order_by(models.TicketEvent.seq)
            ):
                event_seqs.setdefault(call_id, []).append(seq)
            tickets = await session.scalar(select(func.count()).select_from(models.Ticket))
        missing = [leg.uniqueid for leg in legs if leg.uniqueid not in rows]
        fault.lost(len(missing))

        assert spooled > 0, "the outage spooled nothing: it did not happen"
        assert missing == []
        extra = sorted(set(rows) - {leg.uniqueid for leg in legs})
        assert extra == [], [(u, rows[u].channel, rows[u].outcome, rows[u].started_at) for u in extra]
        assert tickets == len(legs)
        for leg in legs:
            row = rows[leg.uniqueid]
            seqs = event_seqs.get(row.id, [])
            assert seqs == list(range(len(seqs))), f"events lost or doubled for {leg.uniqueid}"
            prompts = heard(leg, recordings=False)
            assert len(seqs) > prompts, f"{leg.uniqueid}: timeline shorter than what the caller heard"
            assert row.outcome not in ("failed", "abandoned"), (row.outcome, leg.render())
            assert leg.result == "OK" or (leg.result is None and leg.request.endswith("screen?lang=id")), leg.render()
        # Emergency routing worked throughout: every emergency reached the officer.
        for call, plan in zip(placed, plans, strict=True):
            if plan.script == "emergency":
                assert [s.variables.get("IVR_SCREEN_DECISION") for s in call.legs[1:]] == ["ACCEPT"], (
                    call.record.render()
                )
        assert runtime.services.spool.backlog() == 0


@contextlib.contextmanager
def full_disk(directory: Path) -> Any:
    """A 64 KiB tmpfs over ``directory``, filled up; without the right to
    mount, every fsync under the spool fails with ENOSPC instead."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], capture_output=True, check=False
    )
    if mounted.returncode == 0:
        try:
            filler = directory / "filler"
            with contextlib.suppress(OSError), open(filler, "wb") as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
            yield "tmpfs"
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
        return
    real_fsync = os.fsync

    def no_space(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(directory):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records.os, "fsync", no_space)
        yield "fsync"


async def test_full_disk_under_the_spool_is_reported_and_calls_go_on(
    settings: Settings, caplog: pytest.LogCaptureFixture, fault: Any
):
    async with server_with_outage(settings) as (runtime, outage):
        with full_disk(settings.data_dir / "spool"):
            await outage.cut()
            placed = await place(runtime, await operator_message(runtime))
            await outage.restore()
            # The disk refused the record: the server keeps it in memory and
            # writes it once the database is back.
            await spool_replayed(runtime.services.spool, timeout=30)
        async with runtime.sessions() as session:
            saved = await session.scalar(
                select(func.count()).select_from(models.Call).where(models.Call.uniqueid == placed.record.uniqueid)
            )
    fault.lost(1 - saved)
    assert saved == 1
    record = placed.record
    assert record.result == "OK", record.render()  # the caller got through: message, ticket number, goodbye
    reported = [r for r in caplog.records if r.levelno >= logging.ERROR and "spool" in r.getMessage()]
    assert reported, "a full spool must be reported as an error"
    assert "No space left on device" in str(reported[0].exc_info[1])
