"""PostgreSQL for the tests: the local server, else a container; a fresh database per test.

PostgreSQL is the local server (trust authentication, user ``postgres`` or ``root``, database
``test`` to connect to) or, failing that, a container; each test that asks for
``postgres_url`` gets its own database, ``teddy_test_<uuid hex>``, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import URL

from tests.services import Endpoint, docker_engine_available, port_open, unavailable


@dataclass(frozen=True)
class PostgresServer:
    """Where PostgreSQL answers, and who may create databases there."""

    host: str
    port: int
    users: tuple[str, ...]
    password: str | None
    database: str


@contextlib.contextmanager
def postgres_endpoint() -> Iterator[PostgresServer]:
    """The local PostgreSQL, or a container."""
    local = Endpoint(
        os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1"),
        int(os.environ.get("TEST_POSTGRES_PORT", "5432")),
    )
    if port_open(local.host, local.port):
        user = os.environ.get("TEST_POSTGRES_USER")
        yield PostgresServer(
            local.host,
            local.port,
            (user,) if user else ("postgres", "root"),
            os.environ.get("TEST_POSTGRES_PASSWORD"),
            os.environ.get("TEST_POSTGRES_DB", "test"),
        )
        return
    if not docker_engine_available():
        unavailable("PostgreSQL", local)
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    with PostgresContainer("postgres:16-alpine", dbname="test") as container:
        yield PostgresServer(
            container.get_container_host_ip(),
            int(container.get_exposed_port(5432)),
            (container.username,),
            container.password,
            "test",
        )


@pytest.fixture(scope="session")
def postgres_service() -> Iterator[PostgresServer]:
    """The PostgreSQL the storage tests use."""
    with postgres_endpoint() as server:
        yield server


async def _admin_connection(server: PostgresServer) -> tuple[asyncpg.Connection, str]:
    """A connection to the server's maintenance database, with the first user that works."""
    failures: list[str] = []
    for user in server.users:
        try:
            connection = await asyncpg.connect(
                host=server.host,
                port=server.port,
                user=user,
                password=server.password,
                database=server.database,
            )
        except (OSError, asyncpg.PostgresError) as error:
            failures.append(f"{user}: {error}")
            continue
        return connection, user
    raise RuntimeError(f"no PostgreSQL user could connect: {'; '.join(failures)}")


@pytest.fixture
async def postgres_url(postgres_service: PostgresServer) -> AsyncIterator[URL]:
    """The URL of a database created for this test alone, dropped afterwards."""
    name = f"teddy_test_{uuid.uuid4().hex}"
    admin, user = await _admin_connection(postgres_service)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield URL.create(
            "postgresql+asyncpg",
            username=user,
            password=postgres_service.password,
            host=postgres_service.host,
            port=postgres_service.port,
            database=name,
        )
    finally:
        admin, _ = await _admin_connection(postgres_service)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
