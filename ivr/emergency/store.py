"""The duty roster in the database: read it whole, replace it whole.

Functions take the session and leave the commit to the caller (one unit of
work per request). ``save_roster`` bumps ``duty_roster_meta.version``, which
is how every process's ``RosterCache`` sees the change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from ivr import callerid
from ivr.emergency.roster import Chain, Level, Officer, Override, Roster, Shift
from ivr.storage.models import utcnow
from ivr.storage.roster_models import (
    DutyLevel,
    DutyLevelMember,
    DutyOfficer,
    DutyOverride,
    DutyRosterMeta,
    DutyShift,
)

META_ID = 1


class VersionConflict(Exception):
    """The roster changed since the client read it (``version`` does not match)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the roster is at version {current}")
        self.current = current


async def _meta(session: AsyncSession) -> DutyRosterMeta | None:
    return await session.get(DutyRosterMeta, META_ID)


async def roster_version(session: AsyncSession) -> int:
    """The cheap probe the cache runs every few seconds."""
    version = await session.scalar(select(DutyRosterMeta.version).where(DutyRosterMeta.id == META_ID))
    return int(version or 0)


async def roster_meta(session: AsyncSession) -> tuple[int, datetime | None, str]:
    meta = await _meta(session)
    return (meta.version, meta.updated_at, meta.updated_by) if meta else (0, None, "")


async def load_roster(session: AsyncSession) -> Roster:
    meta = await _meta(session)
    officers = list(await session.scalars(select(DutyOfficer).order_by(DutyOfficer.position, DutyOfficer.id)))
    codes = {o.id: o.code for o in officers}
    shifts = list(
        await session.scalars(
            select(DutyShift)
            .order_by(DutyShift.position, DutyShift.id)
            .options(
                selectinload(DutyShift.levels).selectinload(DutyLevel.members),
                selectinload(DutyShift.overrides),
            )
        )
    )
    fallback_levels = list(
        await session.scalars(
            select(DutyLevel)
            .where(DutyLevel.shift_id.is_(None))
            .order_by(DutyLevel.position)
            .options(selectinload(DutyLevel.members))
        )
    )

    def level(row: DutyLevel) -> Level:
        return Level(tuple(codes[m.officer_id] for m in row.members), row.mode, row.ring_seconds)

    return Roster(
        officers=tuple(
            Officer(o.code, o.name, tuple(o.dial_strings or ()), phone=o.phone, active=o.active) for o in officers
        ),
        shifts=tuple(
            Shift(
                s.name,
                s.starts_at,
                s.ends_at,
                s.timezone,
                s.repeat,
                s.repeat_until,
                s.rounds,
                tuple(level(v) for v in s.levels),
                tuple(Override(codes[o.replaces_id], codes[o.substitute_id], o.on_date, o.note) for o in s.overrides),
            )
            for s in shifts
        ),
        fallback=Chain(tuple(level(v) for v in fallback_levels), meta.fallback_rounds if meta else 2),
        version=meta.version if meta else 0,
    )


async def save_roster(session: AsyncSession, roster: Roster, *, by: str, expected_version: int | None = None) -> int:
    """Replace the roster with ``roster`` (already validated by ``document.parse``).

    Officers are kept by ``code`` (their rows, and so their ids, survive);
    shifts, levels and overrides are rewritten. Returns the new version.
    Raises :class:`VersionConflict` when ``expected_version`` is stale.
    """
    meta = await session.get(DutyRosterMeta, META_ID, with_for_update=True)
    if meta is None:
        meta = DutyRosterMeta(id=META_ID, version=0)
        session.add(meta)
        await session.flush()
    if expected_version is not None and expected_version != meta.version:
        raise VersionConflict(meta.version)

    existing = {o.code: o for o in await session.scalars(select(DutyOfficer))}
    keep = {o.code for o in roster.officers}
    for code, row in existing.items():
        if code not in keep:
            await session.delete(row)
    rows: dict[str, DutyOfficer] = {}
    for position, officer in enumerate(roster.officers):
        row = existing.get(officer.code) or DutyOfficer(code=officer.code)
        row.name = officer.name
        row.phone = officer.phone
        row.phone_e164 = callerid.normalize(officer.phone).e164 if officer.phone else None
        row.dial_strings = list(officer.dial_strings)
        row.active = officer.active
        row.position = position
        session.add(row)
        rows[officer.code] = row

    await session.execute(delete(DutyShift))
    await session.execute(delete(DutyLevel).where(DutyLevel.shift_id.is_(None)))
    await session.flush()

    def level_rows(levels: tuple[Level, ...], shift_id: int | None) -> list[DutyLevel]:
        out = []
        for position, level in enumerate(levels):
            row = DutyLevel(shift_id=shift_id, position=position, mode=level.mode, ring_seconds=level.ring_seconds)
            row.members = [
                DutyLevelMember(officer_id=rows[code].id, position=index) for index, code in enumerate(level.officers)
            ]
            out.append(row)
        return out

    for position, shift in enumerate(roster.shifts):
        shift_row = DutyShift(
            name=shift.name,
            timezone=shift.timezone,
            starts_at=shift.start,
            ends_at=shift.end,
            repeat=shift.repeat,
            repeat_until=shift.until,
            rounds=shift.rounds,
            position=position,
        )
        session.add(shift_row)
        await session.flush()
        for level_row in level_rows(shift.levels, shift_row.id):
            session.add(level_row)
        for override in shift.overrides:
            session.add(
                DutyOverride(
                    shift_id=shift_row.id,
                    on_date=override.date,
                    replaces_id=rows[override.replaces].id,
                    substitute_id=rows[override.substitute].id,
                    note=override.note,
                )
            )
    for level_row in level_rows(roster.fallback.levels, None):
        session.add(level_row)
    meta.version += 1
    meta.fallback_rounds = roster.fallback.rounds
    meta.updated_at = utcnow()
    meta.updated_by = by[:80]
    await session.flush()
    return meta.version
