"""Async engines and sessions for the configured database.

``DATABASE_URL`` names PostgreSQL (through asyncpg) in production and in the tests; without it
the embedded default is one SQLite file (through aiosqlite) in the data directory, so that
``teddyhub up`` needs no database server.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hub.settings import Settings

SQLITE_FILE = "teddyhub.sqlite3"
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 15.0
# The driver-less spellings the earlier product (and most hosting providers) use.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def database_url(settings: Settings) -> URL:
    """The URL to connect to: ``DATABASE_URL`` made async, else the embedded SQLite file."""
    if settings.database_url:
        return async_url(settings.database_url)
    return make_url(f"sqlite+aiosqlite:///{settings.data_dir / SQLITE_FILE}")


def async_url(url: str | URL) -> URL:
    """``url`` with the async driver this project uses when it names none."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed if driver is None else parsed.set(drivername=driver)


def is_sqlite(url: URL) -> bool:
    """True for any SQLite URL."""
    return url.get_backend_name() == "sqlite"


def create_engine_for(settings: Settings) -> AsyncEngine:
    """An engine for the configured database.

    PostgreSQL gets a pool of ``TEDDY_DB_POOL_SIZE`` connections, checked before use so that
    a database restart costs no failed request. SQLite gets its data directory created,
    foreign keys enforced on every connection (the deletion rules of ``hub.db.models`` rely on
    them) and write-ahead logging, since the hub and the API share the file.
    """
    url = database_url(settings)
    if is_sqlite(url):
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(url)
        enable_sqlite_foreign_keys(engine)
        return engine
    # A database that does not answer must fail a request in seconds, not hold it (and a hub
    # worker) for the driver's default minute.
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": COMMAND_TIMEOUT_S},
    )


def enable_sqlite_foreign_keys(engine: AsyncEngine) -> None:
    """Turn on SQLite's foreign-key enforcement for every new connection of ``engine``."""
    event.listen(engine.sync_engine, "connect", _foreign_keys_on)


def _foreign_keys_on(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        # The hub and the API write one file from two processes: write-ahead logging lets
        # readers go on during a write, and the busy timeout waits out the other's lock.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; objects stay readable after commit (no lazy reload in async)."""
    return async_sessionmaker(engine, expire_on_commit=False)
