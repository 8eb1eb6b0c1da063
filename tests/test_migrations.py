"""The Alembic migrations in db/ build exactly the schema the models describe,
and every migration can be undone and redone (up, down, up)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivr.storage import migrations
from ivr.storage.database import create_engine
from ivr.storage.models import Base


async def _drop_all(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
    await engine.dispose()


async def _differences(url: str) -> list:
    engine = create_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
        )
    await engine.dispose()
    return diff


async def test_stairway_up_down_up_matches_the_models(database_url: str):
    await _drop_all(database_url)  # the fixture built the schema from the models; start empty
    await migrations.upgrade(database_url)
    await migrations.downgrade(database_url, "base")
    await migrations.upgrade(database_url)
    assert await _differences(database_url) == []
