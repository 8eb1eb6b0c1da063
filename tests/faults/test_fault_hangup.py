"""Hang up everywhere: every flow's representative walks are played once
without faults (at collection, against a throwaway server) to learn their
commands; then one test per (walk, command, fault) plays the walk again and
breaks it there. Whatever the moment, the call must leave a complete,
consistent record: its row with the right outcome, its ticket, the timeline up
to that moment with nothing doubled, no error logged, no session or task left.

The default run covers a deterministic sample of each walk (its first and last
commands, every recording and dial, a few in between); ``--long`` runs the
full matrix.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fault_walks import (
    HANGUP_DURING,
    TIMED_VERBS,
    VARIANTS,
    WALKS,
    Fault,
    Recorded,
    heard,
    place,
    record_walks,
    set_up,
    verb,
)
from helpers import server_settings
from sqlalchemy import select

from ivr import ticket_number
from ivr.storage import models
from ivr.storage.database import create_engine
from ivr.storage.models import Base

pytestmark = pytest.mark.fault("hang-up at every step")

WALK_BY_NAME = {walk.name: walk for walk in WALKS}
#: How many commands of each (walk, fault) the default run breaks, besides
#: the first, the last and every recording and dial.
SAMPLES_BETWEEN = 2


@dataclass(frozen=True)
class Case:
    walk: str
    step: int
    variant: str
    verbs: tuple[str, ...]  # the walk's commands up to and including the step
    outcome: str  # how the walk ends without the fault

    @property
    def id(self) -> str:
        return f"{self.walk}-{self.step:02d}-{self.verbs[-1].replace(' ', '_')}-{self.variant}"


@functools.cache
def recorded_walks() -> tuple[Recorded, ...]:
    """Play every walk once, without faults, on a throwaway SQLite server."""

    async def record(directory: Path) -> list[Recorded]:
        from ivr.app import running

        url = f"sqlite+aiosqlite:///{directory / 'walks.sqlite3'}"
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        await engine.dispose()
        settings = server_settings(directory / "data", url, directory / "recordings")
        async with running(settings, migrate=False) as runtime:
            return await record_walks(runtime)

    with tempfile.TemporaryDirectory(prefix="ivr-walks-") as directory:
        return tuple(asyncio.run(record(Path(directory))))


def cases_of(recorded: Recorded) -> list[tuple[Case, bool]]:
    """Every (step, fault) of a walk, each flagged whether the default run takes it."""
    cases = []
    for variant in VARIANTS:
        steps = [i for i, v in enumerate(recorded.verbs) if variant != HANGUP_DURING or v in TIMED_VERBS]
        if not steps:
            continue
        stride = max(1, len(steps) // (SAMPLES_BETWEEN + 1))
        sampled = {steps[0], steps[-1], *steps[stride:-1:stride][:SAMPLES_BETWEEN]}
        sampled |= {i for i in steps if recorded.verbs[i] in ("RECORD FILE", "EXEC Dial")}
        for step in steps:
            case = Case(recorded.walk, step, variant, recorded.verbs[: step + 1], recorded.outcome)
            cases.append((case, step in sampled))
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    params = []
    for recorded in recorded_walks():
        for case, default in cases_of(recorded):
            marks = () if default else (pytest.mark.long,)
            params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


def test_every_flow_in_the_registry_has_a_walk() -> None:
    from ivr.flows import build_registry

    assert set(build_registry()) == {walk.flow for walk in WALKS}
    assert all(recorded.outcome and recorded.verbs for recorded in recorded_walks())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def center(module_runtime: Any) -> Any:
    await set_up(module_runtime)
    return module_runtime


async def _stored(runtime: Any, uniqueid: str) -> tuple[Any, Any, list[Any]]:
    async with runtime.sessions() as session:
        call = await session.scalar(select(models.Call).where(models.Call.uniqueid == uniqueid))
        if call is None:
            return None, None, []
        ticket = await session.get(models.Ticket, call.ticket_id) if call.ticket_id else None
        events = list(
            await session.scalars(
                select(models.TicketEvent).where(models.TicketEvent.call_id == call.id).order_by(models.TicketEvent.seq)
            )
        )
    return call, ticket, events


@pytest.mark.asyncio(loop_scope="module")
async def test_hangup_leaves_a_complete_record(center: Any, case: Case, caplog: pytest.LogCaptureFixture, fault: Any):
    runtime = center
    walk = WALK_BY_NAME[case.walk]
    plan = await walk.prepare(runtime)
    caplog.clear()  # only this call's log lines count
    placed = await place(runtime, plan, Fault(case.step, case.variant), leg=walk.leg)
    record = placed.record
    walked = tuple(verb(c) for c in record.commands[: case.step + 1])
    assert walked == case.verbs, f"the walk went differently than recorded:\n{record.render()}"

    call, ticket, events = await _stored(runtime, record.uniqueid)
    timeline = sum(1 for e in events if e.kind == "prompt" and not e.data.get("missing"))
    at_least = heard(record, recordings=False)
    fault.lost((call is None) + (ticket is None) + max(0, at_least - timeline))

    assert call is not None, f"no call row:\n{record.render()}"
    assert ticket is not None and ticket_number.is_valid(ticket.number)
    assert call.ended_at is not None
    assert call.outcome in ("abandoned", case.outcome), (call.outcome, call.outcome_step, record.render())
    if call.outcome == "abandoned" and case.outcome != "abandoned":
        assert call.outcome_step, "an abandoned call says where the caller left"
    assert [e.seq for e in events] == list(range(len(events))), "events lost or doubled"
    # Every prompt the caller heard is on the timeline; the one command that
    # got no live reply may be there too (it was sent, nobody heard it).
    unanswered = 0 if case.variant == HANGUP_DURING else 1
    assert at_least <= timeline <= heard(record, recordings=True) + unanswered, record.render()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not runtime.agi.active and not runtime.calls.active
    leftovers = [t.get_name() for t in asyncio.all_tasks() if not t.done() and record.uniqueid in t.get_name()]
    assert leftovers == []
