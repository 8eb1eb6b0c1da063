"""Shared fixtures: a throwaway database per test (SQLite, or PostgreSQL when
``IVR_TEST_DATABASE_URL`` names a server), settings pointing at temporary
folders, and a running ``ivr serve`` runtime without the web listener.

The TTS cache lives in one folder for the whole run, so the prompt catalog is
synthesized once and every later runtime finds it cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from browser_fixtures import chromium, live_server, logged_in_page, new_context
from helpers import server_settings
from sqlalchemy.engine import make_url

from ivr.config import Settings
from ivr.storage.database import create_engine
from ivr.storage.models import Base

POSTGRES_URL = os.environ.get("IVR_TEST_DATABASE_URL", "")

# The browser tests' fixtures, shared by every test_browser_* module.
__all__ = ["chromium", "live_server", "logged_in_page", "new_context"]


# -- the long fault suites: marked ``long``, run only with ``--long`` (CI runs them)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="also run the tests marked long (full fault matrices, 60 s outages, 100,000 fuzz cases)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: a long fault suite, deselected unless --long is given")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    kept = [item for item in items if item.get_closest_marker("long") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("long")])
        items[:] = kept


@pytest.fixture(scope="session")
def shared_recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


async def _create_schema(url: str) -> None:
    """The schema straight from the models; ``test_migrations.py`` proves the
    migrations build the same one."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file with the schema; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    asyncio.run(_create_schema(f"sqlite+aiosqlite:///{path}"))
    return path


async def _postgres_admin(sql: str) -> None:
    import asyncpg

    url = make_url(POSTGRES_URL)
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL configured")
    name = f"ivr_template_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(_create_schema(make_url(POSTGRES_URL).set(database=name).render_as_string(False)))
    yield name
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def throwaway_database(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A fresh, migrated database (a PostgreSQL database, or a SQLite file in
    ``directory``), dropped on exit; fixtures of any scope build on it."""
    if POSTGRES_URL:
        template = request.getfixturevalue("postgres_template")
        name = f"ivr_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(False)
        finally:
            asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        template = request.getfixturevalue("sqlite_template")
        path = directory / "ivr.sqlite3"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test only."""
    with throwaway_database(request, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database shared by one module's tests (suites that place hundreds of calls)."""
    with throwaway_database(request, tmp_path_factory.mktemp("module-db")) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, shared_recordings: Path) -> Settings:
    return server_settings(tmp_path / "data", database_url, shared_recordings)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[object]:
    from ivr.app import running

    async with running(settings, migrate=False) as runtime:
        yield runtime
