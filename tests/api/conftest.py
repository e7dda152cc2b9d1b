"""An API app served in-process with its lifespan, on each of the two stacks it runs on.

Every API test runs twice: on PostgreSQL (a fresh database, migrated) with Redis (a key prefix
of its own) for rate limits and nonces, as in production; and on the embedded default, a
SQLite file with in-process limits and nonces.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import URL

from api.app import create_app
from hub.settings import Settings


@contextlib.asynccontextmanager
async def serve(
    app: FastAPI, *, client_host: str = "127.0.0.1", raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client talking to it over ASGI."""
    transport = httpx.ASGITransport(
        app=app, client=(client_host, 50000), raise_app_exceptions=raise_app_exceptions
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@pytest.fixture
async def broker_port() -> AsyncIterator[int]:
    """A TCP listener standing in for the broker (the readiness probe only connects)."""

    async def close_at_once(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(params=["postgres", "sqlite"])
def api_settings(request: pytest.FixtureRequest, settings: Settings, broker_port: int) -> Settings:
    """The shared test settings on one stack, with the broker probe pointed at the stand-in."""
    changes: dict[str, Any] = {
        "mqtt_tls": False,
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker_port,
    }
    if request.param == "postgres":
        url: URL = request.getfixturevalue("migrated_postgres_url")
        changes["database_url"] = url.render_as_string(hide_password=False)
        changes["redis_url"] = request.getfixturevalue("redis_url")
        changes["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
        request.getfixturevalue("redis_client")  # deletes the prefix's keys afterwards
    return settings.model_copy(update=changes)


@pytest.fixture
def make_settings(api_settings: Settings) -> Callable[..., Settings]:
    """``api_settings`` with some fields changed."""

    def make(**changes: Any) -> Settings:
        return api_settings.model_copy(update=changes)

    return make


@pytest.fixture
async def client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app built on ``api_settings``."""
    async with serve(create_app(api_settings)) as test_client:
        yield test_client


# Argon2id at its production cost takes ~0.2 s a hash; route tests are not about its cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
async def app_and_client(
    api_settings: Settings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with a cheap password hasher, served in-process, and a client of it."""
    app = create_app(api_settings)
    app.state.password_hasher = CHEAP_HASHER
    async with serve(app) as test_client:
        yield app, test_client


@pytest.fixture
def app(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    """The app of ``app_and_client``."""
    return app_and_client[0]
