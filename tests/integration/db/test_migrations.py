"""The migrations build exactly the models' schema, and undo it, on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from hub.db import migrate
from hub.db.engine import create_engine_for, database_url
from hub.db.models import Base
from hub.settings import Settings

pytestmark = pytest.mark.integration

TABLES = {
    "parents",
    "children",
    "devices",
    "refresh_tokens",
    "audit_log",
    "pairing_codes",
    "conversations",
    "turns",
    "alerts",
}


async def table_names(url: URL) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences: list[Any] = compare_metadata(context, Base.metadata)
    return differences


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_and_downgrade_are_clean_and_repeatable(database_url: URL) -> None:
    for _ in range(2):
        await migrate.upgrade(database_url)
        assert await table_names(database_url) == TABLES | {"alembic_version"}
        await migrate.downgrade(database_url, "base")
        assert await table_names(database_url) <= {"alembic_version"}


async def test_upgraded_schema_matches_the_models(database_url: URL) -> None:
    await migrate.upgrade(database_url)
    head = ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_current_head()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(current_revision) == head
            assert await connection.run_sync(schema_differences) == []
    finally:
        await engine.dispose()


async def test_the_embedded_default_is_a_sqlite_file_in_the_data_dir(settings: Settings) -> None:
    url = database_url(settings)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(settings.data_dir / "teddyhub.sqlite3")
    engine = create_engine_for(settings)  # creates the data dir
    try:
        await migrate.upgrade(url)
        async with engine.connect() as connection:
            assert await connection.run_sync(schema_differences) == []
    finally:
        await engine.dispose()
    assert (settings.data_dir / "teddyhub.sqlite3").is_file()
