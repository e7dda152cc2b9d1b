"""Running the Alembic migrations in ``migrations/`` from code (tests, ``teddyhub up``).

Alembic's command API is blocking (and its ``env.py`` runs its own event loop), so each
command runs in a worker thread through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL

from hub.db.engine import async_url

# The repository root holds ``migrations/`` next to ``alembic.ini``.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic configuration for ``url`` that needs no ``alembic.ini``.

    The URL travels in ``attributes`` rather than in the ini options, where a ``%`` in a
    password would be taken for interpolation; ``env.py`` reads it from there.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = async_url(url)
    return config


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (the newest by default)."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` removes every table)."""
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)
