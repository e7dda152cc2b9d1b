"""Alembic environment of Teddy Hub: async engines, PostgreSQL or SQLite.

The URL comes from, in order: the caller (``hub.db.migrate`` puts it in
``config.attributes["url"]``), ``alembic -x url=...``, ``sqlalchemy.url`` in the configuration,
and finally the settings (``DATABASE_URL``, else the embedded SQLite file in the data dir).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import URL, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hub.db.engine import async_url, database_url, is_sqlite
from hub.db.models import Base
from hub.settings import Settings

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def migration_url() -> URL:
    """The database to migrate (see the module docstring for the order)."""
    given = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not given:
        given = config.get_main_option("sqlalchemy.url")
    if given:
        return async_url(given)
    settings = Settings()
    url = database_url(settings)
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return url


def configure(url: URL, **options: object) -> None:
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=is_sqlite(url),
        compare_type=True,
        **options,
    )


def run_migrations_offline() -> None:
    """Emit the SQL for ``alembic upgrade --sql`` without a connection."""
    url = migration_url()
    configure(url, url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection, url: URL) -> None:
    configure(url, connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = migration_url()
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations, url)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
