"""Staff accounts: argon2 password hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.models import User
from ivr.storage.tokens import ROLES

HASHER = PasswordHasher()


async def create_user(session: AsyncSession, username: str, password: str, role: str, full_name: str = "") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user = User(username=username, full_name=full_name, password_hash=HASHER.hash(password), role=role)
    session.add(user)
    await session.flush()
    return user
