"""The one way to the database: an async engine and a session factory.

SQLite is the embedded default (WAL, foreign keys, a busy timeout so concurrent
calls wait instead of failing); PostgreSQL runs through asyncpg.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, event
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


T = TypeVar("T")


class WholeWork:
    """Runs a synchronous function of a ``Connection`` whole, for work a
    caller waits on (a call's record saved, a ticket looked up by number).

    On an SQLite file it runs in threads of its own with a synchronous engine
    on the same file: one hand-over per unit of work. Through aiosqlite every
    cursor call goes to its thread and back, and each return waits for the
    event loop's next turn: with ten busy calls a one-row lookup took 7 ms
    (p50) instead of well under one. Elsewhere it runs through the async
    session (``run_sync``), where ``timeout`` applies; SQLite cannot be
    interrupted mid-statement, its busy timeout bounds the wait there.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, threads: int, name: str) -> None:
        self.sessions = sessions
        self._engine = sqlite_file_engine(sessions.kw["bind"])
        self._threads = ThreadPoolExecutor(threads, name) if self._engine is not None else None

    async def run(self, work: Callable[[Connection], T], *, write: bool, timeout: float | None = None) -> T:
        if self._engine is None:
            async with asyncio.timeout(timeout), self.sessions.begin() if write else self.sessions() as session:
                return await session.run_sync(lambda sync_session: work(sync_session.connection()))
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._in_thread, work, write)

    def _in_thread(self, work: Callable[[Connection], T], write: bool) -> T:
        assert self._engine is not None
        with self._engine.begin() if write else self._engine.connect() as connection:
            return work(connection)

    def close(self) -> None:
        """Let work under way finish, then release the file."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()
