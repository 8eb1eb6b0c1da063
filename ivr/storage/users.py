"""Staff accounts: usernames, roles and argon2 password hashes.

Hashing and verifying run in a thread: argon2 is deliberately slow and must not
stall the event loop that serves calls. A sign-in for an unknown or disabled
username verifies against a dummy hash, so it takes as long as a wrong password
and its timing tells nothing about which accounts exist.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.models import User
from ivr.storage.tokens import ROLES
from ivr.storage.web_models import WebSession

log = logging.getLogger("ivr.users")

HASHER: Final = PasswordHasher()
MIN_PASSWORD_LENGTH: Final = 10
#: Longer passwords only cost hashing time; no person types more.
MAX_PASSWORD_LENGTH: Final = 200
USERNAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,79}")


class AccountError(ValueError):
    """An account cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class Account:
    """A staff member as the web app knows them once signed in."""

    id: int
    username: str
    full_name: str
    role: str


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


async def create_user(session: AsyncSession, username: str, password: str, role: str, full_name: str = "") -> User:
    username = normalize_username(username)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not USERNAME_PATTERN.fullmatch(username):
        raise AccountError("username: 2-80 characters, lower-case letters, digits, '.', '_' or '-'")
    check_new_password(password)
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username} already exists")
    password_hash = await asyncio.to_thread(HASHER.hash, password)
    user = User(username=username, full_name=full_name.strip(), password_hash=password_hash, role=role)
    session.add(user)
    await session.flush()
    return user


@cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_hex(16))


def _verify_dummy(password: str) -> None:
    """As slow as a real check, for a username that cannot sign in."""
    _verify(_dummy_hash(), password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        log.warning("a user's password hash cannot be verified (corrupt or unsupported)")
        return False


async def check_password(session: AsyncSession, username: str, password: str) -> Account | None:
    """The active account with this username and password, else None (for any
    reason: the caller must not tell which)."""
    user = await session.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None or not user.active or len(password) > MAX_PASSWORD_LENGTH:
        await asyncio.to_thread(_verify_dummy, password[:MAX_PASSWORD_LENGTH])
        return None
    if not await asyncio.to_thread(_verify, user.password_hash, password):
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(HASHER.hash, password)
    return Account(user.id, user.username, user.full_name, user.role)


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username)))


async def _existing(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None:
        raise AccountError(f"no user {normalize_username(username)}")
    return user


async def set_active(session: AsyncSession, username: str, active: bool) -> None:
    """Enable or disable an account; disabling also ends its sessions at once."""
    user = await _existing(session, username)
    user.active = active
    if not active:
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))


async def set_password(session: AsyncSession, username: str, password: str) -> None:
    """An administrator's reset: the new password, and every session signed in
    with the old one ends (whoever knew it is out)."""
    check_new_password(password)
    user = await _existing(session, username)
    user.password_hash = await asyncio.to_thread(HASHER.hash, password)
    await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
