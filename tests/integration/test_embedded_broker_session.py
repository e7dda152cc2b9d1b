"""The hub's persistent session on the embedded broker: nothing published while it is away
is lost (amqtt 0.12 keeps such messages only for authenticated sessions, which every Teddy
Hub login is)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.embedded import run_broker
from hub.dispatch import Inbound
from hub.protocol import Kind, derive_device_key
from hub.protocol.keys import derive_connect_key
from hub.service import Hub
from hub.settings import Settings
from hub.toy.simulator import SimulatedToy
from tests.integration.harness import wait_until
from tests.services import free_port, port_open
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration


@pytest.fixture
async def embedded(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """The hardened embedded broker on free ports; the settings to reach it."""
    settings = settings.model_copy(
        update={"mqtt_port": free_port(), "mqtts_port": free_port(), "data_dir": tmp_path}
    )
    task = asyncio.create_task(run_broker(settings))
    try:
        await wait_until(lambda: port_open("127.0.0.1", settings.mqtts_port), "the broker")
        yield settings
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_messages_published_while_the_hub_is_away_arrive(
    embedded: Settings, fleet_secret: bytes
) -> None:
    received: list[bytes] = []

    async def record(item: Inbound) -> None:
        received.append(item.frame.payload)

    async def run_hub_until_subscribed() -> tuple[Hub, asyncio.Task[None]]:
        hub = Hub.build(embedded)
        hub.dispatcher.replace(Kind.TEXT, record)
        task = asyncio.create_task(hub.run(serve_status=False))
        await asyncio.wait_for(hub.consumer.wait_subscribed(), EVENT_TIMEOUT_S)
        return hub, task

    _, task = await run_hub_until_subscribed()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    toy = SimulatedToy(
        "toy-0001",
        derive_device_key(fleet_secret, "toy-0001"),
        embedded.broker_address(),
        embedded.topic_root,
        connect_key=derive_connect_key(embedded.connect_root(), "toy-0001"),
    )
    async with toy:
        for n in range(5):
            await toy.send(Kind.TEXT, b"while away %d" % n)

    _, task = await run_hub_until_subscribed()
    try:
        await wait_until(lambda: len(received) == 5, "the queued frames", 10)
        assert sorted(received) == [b"while away %d" % n for n in range(5)]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
