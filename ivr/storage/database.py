"""The one way to the database: an async engine and a session factory.

SQLite is the embedded default (WAL, foreign keys, a busy timeout so concurrent
calls wait instead of failing); PostgreSQL runs through asyncpg.
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class DatabaseUnavailable(Exception):
    """The database could not be reached or refused the write; callers degrade."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        pool_pre_ping=True,
        pool_timeout=kwargs.pop("pool_timeout", 5),
        connect_args={"timeout": 5, "command_timeout": 10},
        **kwargs,
    )


#: The synchronous engines ``sqlite_file_engine`` made, by the engine they mirror.
_companions: weakref.WeakKeyDictionary[Engine, list[Engine]] = weakref.WeakKeyDictionary()


def sqlite_file_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same SQLite file as ``engine`` (None for
    another database, or an in-memory one), for work that runs whole in one
    thread: aiosqlite hands every cursor operation to its thread and back,
    which costs more than the SQL for short statements."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    companion = sqlalchemy.create_engine(url.set(drivername="sqlite"), connect_args={"timeout": 30})
    event.listen(companion, "connect", _sqlite_pragmas)
    _companions.setdefault(engine.sync_engine, []).append(companion)
    return companion


def companion_engines(engine: AsyncEngine) -> list[Engine]:
    """The engines ``sqlite_file_engine`` made on ``engine``'s database: what
    watches or intercepts the database's statements must watch these too."""
    return list(_companions.get(engine.sync_engine, []))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
