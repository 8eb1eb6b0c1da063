"""Alembic environment: runs the migrations on the async engine ``ivr`` uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ivr.storage.database import create_engine
from ivr.storage.models import Base

config = context.config
target_metadata = Base.metadata
#: Key of the PostgreSQL advisory lock that one migration run holds at a time.
MIGRATION_LOCK = 0x1F5_0001


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Instances started together take turns: the first migrates, the others
        # wait here (the lock ends with the transaction) and find nothing to do.
        # Taken before configure(), so the migrations run in this transaction,
        # which the caller commits.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run(existing)
    else:
        asyncio.run(_run_async())
