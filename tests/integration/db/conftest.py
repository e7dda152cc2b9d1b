"""Fixtures of the storage tests: each test runs on a fresh PostgreSQL database
(``tests.postgres``), then on a fresh SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import URL, make_url

from hub.settings import Settings


@pytest.fixture
def sqlite_url(tmp_path: Path) -> URL:
    """The URL of a SQLite file of this test alone."""
    return make_url(f"sqlite+aiosqlite:///{tmp_path / 'teddyhub.sqlite3'}")


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> URL:
    """A fresh, empty database: PostgreSQL, then SQLite."""
    url: URL = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def db_settings(settings: Settings, database_url: URL) -> Settings:
    """The test's settings, with ``DATABASE_URL`` naming the fresh database."""
    return settings.model_copy(
        update={"database_url": database_url.render_as_string(hide_password=False)}
    )
