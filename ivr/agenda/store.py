"""The agenda in the database: repository functions that take an ``AsyncSession``.

They return plain frozen views (``LeaderInfo``, ``ItemView``, ``DayAgenda``), so
what a call or the prerenderer holds never lazy-loads or goes stale mid-flight,
and raise domain errors (``AgendaError`` and subclasses) that the edges (web API,
call flow) translate. Units of work are the caller's: these functions flush,
never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.agenda_models import AGENDA_STATUSES, AgendaItem
from ivr.storage.models import Leader

#: Statuses whose detail is a new date and/or start time.
RESCHEDULED: Final = ("dipindahkan", "ditunda")
#: Accepted spellings for a status (what people type) -> the stored value.
STATUS_ALIASES: Final = {"sedang berlangsung": "berlangsung", "berlangsung": "berlangsung"}

MAX_ACTIVITY: Final = 2000
MAX_PLACE: Final = 500
MAX_NOTE: Final = 500
MAX_REPRESENTATIVE: Final = 200
#: Dates outside this range are typing mistakes (and years spoken wrongly).
FIRST_DATE: Final = dt.date(2000, 1, 1)
LAST_DATE: Final = dt.date(2099, 12, 31)

DayKey = tuple[int, dt.date]
"""``(leader_id, date)``: the unit the read-back is composed and cached by."""


class AgendaError(Exception):
    """Base of the agenda's domain errors."""


class LeaderNotFound(AgendaError):
    pass


class ItemNotFound(AgendaError):
    pass


class InvalidItem(AgendaError):
    """One message per field (Indonesian / English), like the API's 422."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


@dataclass(frozen=True)
class LeaderInfo:
    id: int
    title: str
    name: str
    menu_key: str
    position: int = 0


@dataclass(frozen=True)
class ItemView:
    """An agenda item as read from the database (or about to be written)."""

    id: int
    leader_id: int
    date: dt.date
    start: dt.time
    end: dt.time | None
    activity: str
    place: str = ""
    status: str = "terjadwal"
    new_date: dt.date | None = None
    new_start: dt.time | None = None
    representative: str = ""
    note: str = ""
    updated_by: str = ""
    updated_at: dt.datetime | None = None
    created_at: dt.datetime | None = None

    @property
    def overnight(self) -> bool:
        """Runs past midnight into the next day (end before start)."""
        return self.end is not None and self.end < self.start

    @property
    def moved_to(self) -> dt.date | None:
        """The other day this item now takes place on, if it was moved there."""
        if self.status in RESCHEDULED and self.new_date is not None and self.new_date != self.date:
            return self.new_date
        return None


@dataclass(frozen=True)
class DayAgenda:
    """What one leader's read-back for one day is made of."""

    leader: LeaderInfo
    day: dt.date
    #: Items dated this day.
    items: tuple[ItemView, ...] = ()
    #: Items of the day before that run past midnight into this day.
    carried: tuple[ItemView, ...] = ()
    #: Items of another day moved or postponed to this day.
    moved_in: tuple[ItemView, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.items or self.carried or self.moved_in)


# -- views -----------------------------------------------------------------------


def _leader(row: Leader) -> LeaderInfo:
    return LeaderInfo(row.id, row.title, row.name, row.menu_key, row.position)


def _view(row: AgendaItem) -> ItemView:
    return ItemView(
        id=row.id,
        leader_id=row.leader_id,
        date=row.date,
        start=row.start,
        end=row.end,
        activity=row.activity,
        place=row.place or "",
        status=row.status,
        new_date=row.new_date,
        new_start=row.new_start,
        representative=row.representative or "",
        note=row.note or "",
        updated_by=row.updated_by or "",
        updated_at=row.updated_at,
        created_at=row.created_at,
    )


def affected_days(item: ItemView) -> set[DayKey]:
    """Every (leader, day) whose read-back mentions ``item``."""
    days: set[DayKey] = {(item.leader_id, item.date)}
    if item.overnight:
        days.add((item.leader_id, item.date + dt.timedelta(days=1)))
    if item.moved_to is not None:
        days.add((item.leader_id, item.moved_to))
    return days


def sort_key(item: ItemView) -> tuple[dt.time, int]:
    return (item.start, item.id)


# -- leaders -----------------------------------------------------------------------


async def list_leaders(session: AsyncSession) -> list[LeaderInfo]:
    """Leaders in menu order (their keypad key, then position)."""
    rows = await session.scalars(select(Leader).order_by(Leader.menu_key, Leader.position, Leader.id))
    return [_leader(row) for row in rows]


async def get_leader(session: AsyncSession, leader_id: int) -> LeaderInfo:
    row = await session.get(Leader, leader_id)
    if row is None:
        raise LeaderNotFound(f"no leader {leader_id}")
    return _leader(row)


# -- reading the agenda ------------------------------------------------------------


async def load_day(session: AsyncSession, leader_id: int, day: dt.date) -> DayAgenda:
    """Everything the read-back of ``leader_id`` on ``day`` says, in one query."""
    leader = await get_leader(session, leader_id)
    yesterday = day - dt.timedelta(days=1)
    rows = await session.scalars(
        select(AgendaItem).where(
            AgendaItem.leader_id == leader_id,
            or_(
                AgendaItem.date == day,
                and_(AgendaItem.date == yesterday, AgendaItem.end.is_not(None), AgendaItem.end < AgendaItem.start),
                and_(AgendaItem.new_date == day, AgendaItem.status.in_(RESCHEDULED)),
            ),
        )
    )
    own: list[ItemView] = []
    carried: list[ItemView] = []
    moved_in: list[ItemView] = []
    for view in map(_view, rows):
        if view.date == day:
            own.append(view)
        elif view.date == yesterday and view.overnight:
            carried.append(view)
        if view.moved_to == day:
            moved_in.append(view)
    return DayAgenda(
        leader=leader,
        day=day,
        items=tuple(sorted(own, key=sort_key)),
        carried=tuple(sorted(carried, key=sort_key)),
        moved_in=tuple(sorted(moved_in, key=lambda i: (i.new_start or i.start, i.id))),
    )


async def get_item(session: AsyncSession, item_id: int) -> ItemView:
    row = await session.get(AgendaItem, item_id)
    if row is None:
        raise ItemNotFound(f"no agenda item {item_id}")
    return _view(row)


async def find_item(session: AsyncSession, item_id: int) -> ItemView | None:
    row = await session.get(AgendaItem, item_id)
    return None if row is None else _view(row)


async def list_items(
    session: AsyncSession,
    *,
    date_from: dt.date,
    date_to: dt.date,
    leader_id: int | None = None,
    statuses: Iterable[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> list[ItemView]:
    """Items dated ``date_from``..``date_to`` (inclusive), by date, time, id."""
    query = (
        select(AgendaItem)
        .where(AgendaItem.date >= date_from, AgendaItem.date <= date_to)
        .order_by(AgendaItem.date, AgendaItem.start, AgendaItem.id)
        .limit(limit)
        .offset(offset)
    )
    if leader_id is not None:
        query = query.where(AgendaItem.leader_id == leader_id)
    wanted = list(statuses)
    if wanted:
        query = query.where(AgendaItem.status.in_(wanted))
    return [_view(row) for row in await session.scalars(query)]


# -- rules -------------------------------------------------------------------------


def canonical_status(value: str) -> str | None:
    """The stored form of a status as typed, or None if it is not one."""
    cleaned = " ".join(value.strip().lower().split())
    cleaned = STATUS_ALIASES.get(cleaned, cleaned)
    return cleaned if cleaned in AGENDA_STATUSES else None


def check_item(item: ItemView) -> ItemView:
    """Apply the agenda's rules to a complete item; raise ``InvalidItem``.

    A status's detail belongs to that status: a new date/time only with
    ``dipindahkan``/``ditunda``, a representative only with ``diwakilkan``.
    The detail may be missing (the read-back then says it is not known yet).
    """
    errors: dict[str, str] = {}
    if item.status not in AGENDA_STATUSES:
        errors["status"] = f"Status harus salah satu dari / Status must be one of: {', '.join(AGENDA_STATUSES)}"
    for name, value in (("date", item.date), ("status_detail.new_date", item.new_date)):
        if value is not None and not FIRST_DATE <= value <= LAST_DATE:
            errors[name] = "Tanggal harus antara 2000 dan 2099 / Date must be between 2000 and 2099"
    if item.end is not None and item.end == item.start:
        errors["end"] = "Waktu selesai sama dengan waktu mulai / End equals start"
    if not item.activity.strip():
        errors["activity"] = "Wajib diisi / Required"
    for name, text, limit in (
        ("activity", item.activity, MAX_ACTIVITY),
        ("place", item.place, MAX_PLACE),
        ("note", item.note, MAX_NOTE),
        ("status_detail.representative", item.representative, MAX_REPRESENTATIVE),
    ):
        if len(text) > limit:
            errors[name] = f"Maks. {limit} karakter / At most {limit} characters"
    if item.status not in RESCHEDULED:
        only_rescheduled = "Hanya untuk status dipindahkan atau ditunda / Only when moved or postponed"
        if item.new_date is not None:
            errors["status_detail.new_date"] = only_rescheduled
        if item.new_start is not None:
            errors["status_detail.new_start"] = only_rescheduled
    if item.status != "diwakilkan" and item.representative:
        errors["status_detail.representative"] = "Hanya untuk status diwakilkan / Only when represented"
    if errors:
        raise InvalidItem(errors)
    return item


def without_stale_detail(item: ItemView) -> ItemView:
    """Drop detail that belonged to a previous status (after a status change)."""
    if item.status not in RESCHEDULED:
        item = replace(item, new_date=None, new_start=None)
    if item.status != "diwakilkan":
        item = replace(item, representative="")
    return item


def _clean(item: ItemView) -> ItemView:
    return replace(
        item,
        activity=item.activity.strip(),
        place=item.place.strip(),
        note=item.note.strip(),
        representative=item.representative.strip(),
    )


# -- writing -----------------------------------------------------------------------

_WRITABLE: Final = (
    "leader_id",
    "date",
    "start",
    "end",
    "activity",
    "place",
    "status",
    "new_date",
    "new_start",
    "representative",
    "note",
)


async def create_item(session: AsyncSession, item: ItemView, *, by: str) -> ItemView:
    """Insert ``item`` (its ``id`` is ignored) after checking the rules."""
    item = check_item(_clean(item))
    await get_leader(session, item.leader_id)
    row = AgendaItem(**{name: getattr(item, name) for name in _WRITABLE}, updated_by=by[:80])
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return _view(row)


async def update_item(
    session: AsyncSession, item_id: int, changes: Mapping[str, Any], *, by: str
) -> tuple[ItemView, ItemView]:
    """Apply ``changes`` (field name -> new value); return (before, after).

    A status change drops the detail of the old status unless the same change
    gives detail for the new one (which must then fit it).
    """
    unknown = set(changes) - set(_WRITABLE)
    if unknown:
        raise InvalidItem({name: "Kolom tidak dikenal / Unknown field" for name in sorted(unknown)})
    row = await session.get(AgendaItem, item_id, with_for_update=True)
    if row is None:
        raise ItemNotFound(f"no agenda item {item_id}")
    before = _view(row)
    after = replace(before, **changes)
    if "status" in changes and changes["status"] != before.status:
        detail = {k: v for k, v in changes.items() if k in ("new_date", "new_start", "representative")}
        after = replace(without_stale_detail(after), **detail)
    after = check_item(_clean(after))
    if after.leader_id != before.leader_id:
        await get_leader(session, after.leader_id)
    for name in _WRITABLE:
        setattr(row, name, getattr(after, name))
    if after != before:
        row.updated_by = by[:80]
        row.updated_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return before, _view(row)


async def delete_item(session: AsyncSession, item_id: int) -> ItemView:
    row = await session.get(AgendaItem, item_id, with_for_update=True)
    if row is None:
        raise ItemNotFound(f"no agenda item {item_id}")
    view = _view(row)
    await session.delete(row)
    await session.flush()
    return view


def new_item(
    leader_id: int,
    date: dt.date,
    start: dt.time,
    activity: str,
    *,
    end: dt.time | None = None,
    place: str = "",
    status: str = "terjadwal",
    new_date: dt.date | None = None,
    new_start: dt.time | None = None,
    representative: str = "",
    note: str = "",
) -> ItemView:
    """An unsaved item (id 0) for :func:`create_item`."""
    return ItemView(
        id=0,
        leader_id=leader_id,
        date=date,
        start=start,
        end=end,
        activity=activity,
        place=place,
        status=status,
        new_date=new_date,
        new_start=new_start,
        representative=representative,
        note=note,
    )
