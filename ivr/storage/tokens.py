"""API bearer tokens: random, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.models import ApiToken

ROLES = ("admin", "staff", "duty")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, role: str, label: str = "") -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_digest(token), role=role, label=label))
    return token


@dataclass(frozen=True)
class TokenIdentity:
    id: int
    role: str
    label: str


#: ``last_used_at`` is informative; writing it on every request would make each
#: API call a write transaction (SQLite serialises those).
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def identify_token(session: AsyncSession, token: str) -> TokenIdentity | None:
    """Who holds this token, or None when it is unknown or revoked."""
    if not token or len(token) > 200:
        return None
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return TokenIdentity(row.id, row.role, row.label)


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.id)))


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    """Revoke a token at once; False when there is no such live token."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = datetime.now(UTC)
    return True
