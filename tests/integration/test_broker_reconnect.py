"""The hub survives its broker going away: it reconnects with backoff and carries on."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.dispatch import Inbound
from hub.mqtt import BrokerAddress
from hub.protocol import Kind, derive_device_key
from hub.service import Hub
from hub.settings import Settings
from hub.toy.simulator import SimulatedToy
from tests.integration.harness import wait_until
from tests.services import free_port, port_open
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HAVE_MOSQUITTO = Path(MOSQUITTO).exists()


class PrivateMosquitto:
    """A Mosquitto of this test alone, on a free port, that the test can stop and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "set_tcp_nodelay true\n",
            encoding="utf-8",
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(self.config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_until(lambda: port_open("127.0.0.1", self.port), "mosquitto to listen")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), EVENT_TIMEOUT_S)
        self.process = None


@pytest.fixture
async def private_mosquitto(tmp_path: Path) -> AsyncIterator[PrivateMosquitto]:
    if not HAVE_MOSQUITTO:
        pytest.skip("the mosquitto binary is not installed (make test installs it)")
    broker = PrivateMosquitto(tmp_path)
    try:
        yield broker
    finally:
        await broker.stop()


async def test_hub_reconnects_after_the_broker_restarts(
    private_mosquitto: PrivateMosquitto, settings: Settings, fleet_secret: bytes
) -> None:
    await private_mosquitto.start()
    settings = settings.model_copy(update={"mqtt_port": private_mosquitto.port, "mqtt_tls": False})
    hub = Hub.build(settings)
    received: list[bytes] = []

    async def record(item: Inbound) -> None:
        received.append(item.frame.payload)

    hub.dispatcher.replace(Kind.TEXT, record)
    task = asyncio.create_task(hub.run(serve_status=False))
    broker = BrokerAddress("127.0.0.1", private_mosquitto.port)
    key = derive_device_key(fleet_secret, "toy-0001")
    try:
        await asyncio.wait_for(hub.consumer.wait_subscribed(), EVENT_TIMEOUT_S)
        async with SimulatedToy("toy-0001", key, broker, settings.topic_root) as toy:
            await toy.send(Kind.TEXT, b"before")
            await wait_until(lambda: received == [b"before"], "the first frame")

        await private_mosquitto.stop()
        await wait_until(lambda: not hub.readiness()["broker"], "the hub to notice")
        await private_mosquitto.start()
        await wait_until(lambda: hub.readiness()["broker"], "the hub to reconnect")
        assert hub.metrics.broker_reconnects._value.get() >= 1

        async with SimulatedToy("toy-0001", key, broker, settings.topic_root) as toy:
            await toy.send(Kind.TEXT, b"after")
            await wait_until(lambda: received == [b"before", b"after"], "the second frame")
            assert await toy.ping(EVENT_TIMEOUT_S) > 0  # downlinks use the new connection too
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
