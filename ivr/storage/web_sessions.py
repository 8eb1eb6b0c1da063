"""Server-side sessions of the staff web app, and the login throttle.

A session id is 32 random bytes (``secrets.token_urlsafe``) that live only in
the browser's cookie; the database keeps its SHA-256. The CSRF token of a
session is derived from the id (HMAC), so it is bound to the session, needs no
column, and cannot be computed from a copy of the database.

A session ends ``idle`` after its last request or ``lifetime`` after sign-in,
whichever comes first, and at once when its user is disabled or deleted.

The throttle counts failed sign-ins per key (``user:<name>``, ``addr:<ip>``)
within a window; at the key's limit it is locked for ``lockout``. It works
across processes, since it lives in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.config import Settings
from ivr.storage.models import User
from ivr.storage.users import Account
from ivr.storage.web_models import LoginThrottle, WebSession

#: ``last_seen_at`` is written at most this often, so that reading a page is
#: not a write transaction each time; the idle timeout is that much coarse.
TOUCH_RESOLUTION: Final = timedelta(minutes=1)
#: Session ids longer than this are not even hashed.
MAX_SESSION_ID_LENGTH: Final = 100


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def csrf_token_for(session_id: str) -> str:
    return hmac.new(session_id.encode("utf-8"), b"ivr-csrf-token", hashlib.sha256).hexdigest()


def csrf_matches(session_id: str, offered: str) -> bool:
    return hmac.compare_digest(csrf_token_for(session_id).encode(), offered.encode("utf-8", "replace"))


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    lifetime: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours))


@dataclass(frozen=True)
class SignedIn:
    """A valid session: whose it is and its CSRF token."""

    account: Account
    csrf_token: str


async def start_session(session: AsyncSession, account: Account, client_address: str) -> str:
    """A new session for ``account``; returns the id for the cookie (shown nowhere else)."""
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id_hash=_digest(session_id), user_id=account.id, client_address=client_address[:64]))
    await session.flush()
    return session_id


async def find_session(
    session: AsyncSession, session_id: str, policy: SessionPolicy, now: datetime | None = None
) -> SignedIn | None:
    """The live session with this id, or None (unknown, expired, user disabled).
    An expired session is deleted on the way."""
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
        return None
    now = now or datetime.now(UTC)
    row = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.id_hash == _digest(session_id))
        )
    ).first()
    if row is None:
        return None
    web_session, user = row
    if now - web_session.created_at > policy.lifetime or now - web_session.last_seen_at > policy.idle:
        await session.delete(web_session)
        return None
    if not user.active:
        return None
    if now - web_session.last_seen_at > TOUCH_RESOLUTION:
        web_session.last_seen_at = now
    return SignedIn(Account(user.id, user.username, user.full_name, user.role), csrf_token_for(session_id))


async def end_session(session: AsyncSession, session_id: str) -> None:
    if session_id and len(session_id) <= MAX_SESSION_ID_LENGTH:
        await session.execute(delete(WebSession).where(WebSession.id_hash == _digest(session_id)))


async def purge_expired_sessions(session: AsyncSession, policy: SessionPolicy, now: datetime | None = None) -> None:
    """Forget sessions nobody can use any more (run at each sign-in, so the
    table stays as small as the number of signed-in people)."""
    now = now or datetime.now(UTC)
    await session.execute(
        delete(WebSession).where(
            or_(WebSession.created_at < now - policy.lifetime, WebSession.last_seen_at < now - policy.idle)
        )
    )


# -- login throttle --------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    per_user: int
    per_address: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            per_user=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            window=timedelta(minutes=settings.login_window_minutes),
            lockout=timedelta(minutes=settings.login_lockout_minutes),
        )

    def limits(self, username: str, client_address: str) -> dict[str, int]:
        """The throttle keys of one sign-in attempt, with their limits."""
        return {user_key(username): self.per_user, f"addr:{client_address[:64]}": self.per_address}


def user_key(username: str) -> str:
    return f"user:{username[:80]}"


async def locked_until(session: AsyncSession, keys: Mapping[str, int], now: datetime | None = None) -> datetime | None:
    """When the latest lockout among ``keys`` ends, or None when none is in force."""
    now = now or datetime.now(UTC)
    ends = [
        until
        for until in await session.scalars(select(LoginThrottle.locked_until).where(LoginThrottle.key.in_(keys)))
        if until is not None and until > now
    ]
    return max(ends, default=None)


async def record_failure(
    sessions: async_sessionmaker[AsyncSession],
    keys: Mapping[str, int],
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> datetime | None:
    """Count a failed sign-in under each key (its own transaction, retried once
    when two processes create a key's row at once). Returns the lockout it
    started, if any."""
    now = now or datetime.now(UTC)
    for attempt in range(2):
        try:
            async with sessions.begin() as session:
                return await _count_failure(session, keys, policy, now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _count_failure(
    session: AsyncSession, keys: Mapping[str, int], policy: ThrottlePolicy, now: datetime
) -> datetime | None:
    rows = {
        row.key: row
        for row in await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)).with_for_update())
    }
    locked: datetime | None = None
    for key, limit in keys.items():
        row = rows.get(key)
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        if row.window_started_at is None or now - row.window_started_at > policy.window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + policy.lockout
            row.failures = 0
            row.window_started_at = None
            locked = row.locked_until
    await session.flush()
    return locked


async def clear_failures(session: AsyncSession, key: str) -> None:
    """After a successful sign-in: the user's count starts again (the address's
    does not, or one valid account would reset the guessing of others)."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
