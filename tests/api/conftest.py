"""An API app on the test settings (SQLite under tmp_path), served in-process with its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

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


@pytest.fixture
def api_settings(settings: Settings, broker_port: int) -> Settings:
    """The shared test settings, with the broker probe pointed at the stand-in listener."""
    return settings.model_copy(
        update={"mqtt_tls": False, "mqtt_host": "127.0.0.1", "mqtt_port": broker_port}
    )


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
