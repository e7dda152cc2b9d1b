"""Fixtures shared by every test layer: isolated settings, service endpoints, unique names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy import URL

from hub.db.migrate import upgrade
from hub.mqtt import BrokerAddress
from hub.settings import Settings
from tests.postgres import postgres_service, postgres_url
from tests.services import Endpoint, mosquitto_endpoint, redis_endpoint

__all__ = ["postgres_service", "postgres_url"]  # fixtures every layer may ask for

TEST_FLEET_SECRET = "test-fleet-secret-0123456789-abcdefghijklmnop"


@pytest.fixture
def fleet_secret() -> bytes:
    """The fleet secret every test hub and toy share."""
    return TEST_FLEET_SECRET.encode()


@pytest.fixture
def topic_root() -> str:
    """A topic root no other test (or test run) uses, so runs on one broker never collide."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, topic_root: str) -> Settings:
    """Development settings in a private data dir, with explicit secrets."""
    return Settings(
        data_dir=tmp_path / "data",
        esp32_shared_secret=SecretStr(TEST_FLEET_SECRET),
        jwt_secret_key=SecretStr("test-jwt-secret-" + "x" * 40),
        topic_root=topic_root,
        hub_client_id=f"svc:hub-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Endpoint]:
    """The Redis the integration tests use."""
    with redis_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def mosquitto_service() -> Iterator[Endpoint]:
    """The Mosquitto the integration tests use."""
    with mosquitto_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def mosquitto(mosquitto_service: Endpoint) -> BrokerAddress:
    """The broker address of the test Mosquitto."""
    return BrokerAddress(mosquitto_service.host, mosquitto_service.port)


@pytest.fixture
def redis_url(redis_service: Endpoint) -> str:
    """A URL of the test Redis."""
    return f"redis://{redis_service.host}:{redis_service.port}/0"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test alone."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis; every key under this test's prefix is deleted afterwards."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def migrated_postgres_url(postgres_url: URL) -> URL:
    """A fresh PostgreSQL database at the newest migration (production runs `db upgrade`)."""
    await upgrade(postgres_url)
    return postgres_url
