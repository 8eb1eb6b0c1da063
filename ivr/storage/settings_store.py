"""Runtime settings staff change from the web app, kept in the ``settings`` table."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.models import Setting

OVERRIDE_KEY = "office_override"
OVERRIDE_MODES = ("open", "closed", "emergency-only", "none")


async def get_override(session: AsyncSession) -> str | None:
    row = await session.get(Setting, OVERRIDE_KEY)
    mode = (row.value or {}).get("mode") if row else None
    return mode if mode in OVERRIDE_MODES and mode != "none" else None


async def set_override(session: AsyncSession, mode: str, by: str) -> None:
    if mode not in OVERRIDE_MODES:
        raise ValueError(f"override must be one of {', '.join(OVERRIDE_MODES)}")
    row = await session.get(Setting, OVERRIDE_KEY)
    if row is None:
        session.add(Setting(key=OVERRIDE_KEY, value={"mode": mode}, updated_by=by))
    else:
        row.value = {"mode": mode}
        row.updated_by = by
