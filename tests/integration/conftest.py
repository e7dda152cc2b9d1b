"""Fixtures of the integration tests: hubs on the local Mosquitto, toys, Redis nonce stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from hub.mqtt import BrokerAddress
from hub.nonces import RedisNonceStore
from hub.settings import Settings
from tests.integration.harness import HubRunner, Toys


@pytest.fixture
def hub_settings(settings: Settings, mosquitto: BrokerAddress) -> Settings:
    """The test's settings, pointed at the test Mosquitto."""
    return settings.model_copy(
        update={"mqtt_host": mosquitto.host, "mqtt_port": mosquitto.port, "mqtt_tls": False}
    )


@pytest.fixture
async def hubs(mosquitto: BrokerAddress) -> AsyncIterator[HubRunner]:
    """Starts hubs; stops them and forgets their persistent broker sessions afterwards."""
    runner = HubRunner(mosquitto)
    try:
        yield runner
    finally:
        await runner.close()


@pytest.fixture
async def toys(
    fleet_secret: bytes, mosquitto: BrokerAddress, topic_root: str
) -> AsyncIterator[Toys]:
    """Opens simulated toys on the test's topic root."""
    async with Toys(fleet_secret, mosquitto, topic_root) as opened:
        yield opened


@pytest.fixture
async def redis_stores(
    redis_url: str, redis_prefix: str, redis_client: aioredis.Redis
) -> AsyncIterator[Callable[[], RedisNonceStore]]:
    """Opens Redis nonce stores on the test's key prefix, each with its own connection pool.

    Stores opened by one test share their nonces, as the replicas (or the successive
    processes) of one deployment do. All are closed, and the prefix's keys deleted, afterwards.
    """
    opened: list[RedisNonceStore] = []

    def open_store() -> RedisNonceStore:
        store = RedisNonceStore.from_url(redis_url, redis_prefix)
        opened.append(store)
        return store

    try:
        yield open_store
    finally:
        for store in opened:
            await store.close()


@pytest.fixture
def redis_store(redis_stores: Callable[[], RedisNonceStore]) -> RedisNonceStore:
    """One Redis nonce store on the test's key prefix."""
    return redis_stores()
