"""The caller directory: who is calling, by normalized number."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.models import Caller, CallerNumber, Office


@dataclass(frozen=True)
class DirectoryMatch:
    caller_id: int
    name: str
    office_id: int | None
    office_name: str | None


async def find_by_number(session: AsyncSession, e164: str) -> DirectoryMatch | None:
    row = (
        await session.execute(
            select(Caller.id, Caller.name, Caller.office_id, Office.name)
            .join(CallerNumber, CallerNumber.caller_id == Caller.id)
            .outerjoin(Office, Office.id == Caller.office_id)
            .where(CallerNumber.e164 == e164, Caller.active.is_(True))
        )
    ).first()
    if row is None:
        return None
    return DirectoryMatch(caller_id=row[0], name=row[1], office_id=row[2], office_name=row[3])
