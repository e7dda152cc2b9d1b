"""amqtt's hardening in broker.server: keepalive, connection cap, CONNECT timeout.

Embedded broker only: these are fixes to amqtt (Mosquitto has them natively).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

import broker.server
from tests.broker.brokers import embedded_broker
from tests.broker.clients import closed_within, connect_packet, paho_clients

pytestmark = pytest.mark.integration
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _tls_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


async def test_silent_client_is_dropped_after_1_5_keepalives_and_its_will_sent(
    tmp_path: Path,
) -> None:
    async with embedded_broker(tmp_path) as running, paho_clients(running) as clients:
        hub = await clients.hub()
        reader, writer = await asyncio.open_connection(
            running.host, running.tls_port, ssl=_tls_context(running.ca_file)
        )
        try:
            writer.write(
                connect_packet(
                    "toy-w",
                    "toy-w",
                    running.device_password("toy-w"),
                    keepalive=2,
                    will_topic=running.uplink("toy-w"),
                    will_message=b"toy-w is gone",
                )
            )
            await writer.drain()
            assert await reader.readexactly(4) == CONNACK_ACCEPTED
            silent_since = time.monotonic()
            assert await closed_within(reader, 5.0), "a silent client must be disconnected"
            silent_for = time.monotonic() - silent_since
        finally:
            writer.close()
        assert 2.5 <= silent_for <= 4.5, silent_for  # 1.5 x keepalive 2 = 3 s
        will = await hub.receive(3.0)
        assert (will.topic, will.payload) == (running.uplink("toy-w"), b"toy-w is gone")


async def test_connections_past_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    async with (
        embedded_broker(tmp_path, broker_max_connections=3) as running,
        paho_clients(running) as clients,
    ):
        hub = await clients.hub()
        toy_1 = await clients.toy("toy-1")
        toy_2 = await clients.toy("toy-2")
        assert await toy_2.subscribe(running.downlinks("toy-2")) == 1
        started = time.monotonic()
        fourth = clients.new("toy-3", username="toy-3", password=running.device_password("toy-3"))
        assert not await fourth.connect()
        assert fourth.connack is None, "closed before any CONNACK"
        assert time.monotonic() - started < 2.0, "closed at once, not after a timeout"
        reader, writer = await asyncio.open_connection(
            running.host, running.tls_port, ssl=_tls_context(running.ca_file)
        )
        try:
            assert await closed_within(reader, 1.0)
        finally:
            writer.close()
        assert all(client.is_connected for client in (hub, toy_1, toy_2))
        await toy_1.publish(running.uplink("toy-1"), b"from 1")
        assert (await hub.receive()).payload == b"from 1"
        await hub.publish(running.downlink("toy-2"), b"to 2")
        assert (await toy_2.receive()).payload == b"to 2"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_connection_without_connect_is_closed_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: bool
) -> None:
    monkeypatch.setattr(broker.server, "CONNECT_TIMEOUT_S", 1.0)
    async with embedded_broker(tmp_path) as running, paho_clients(running) as clients:
        hub = await clients.hub()
        assert running.plain_port is not None
        started = time.monotonic()
        if tls:
            reader, writer = await asyncio.open_connection(
                running.host, running.tls_port, ssl=_tls_context(running.ca_file)
            )
        else:
            reader, writer = await asyncio.open_connection(running.host, running.plain_port)
        try:
            assert await closed_within(reader, 4.0), "a client that never sends CONNECT is closed"
        finally:
            writer.close()
        assert 0.8 <= time.monotonic() - started <= 3.0
        assert hub.is_connected
