"""amqtt's hardening in broker.server: keepalive, connection cap, CONNECT timeout.

Embedded broker only: these are fixes to amqtt (Mosquitto has them natively).

Times are measured from the last moment the broker could have started its clock (the client's
last packet, or before the connection was opened), so a connection closed after a timeout is
never closed sooner than the timeout: lower bounds are the product's figures exactly. A slow
machine only closes later, so upper bounds allow :data:`LATE_S` more.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

import broker.server
from tests.broker.brokers import embedded_broker
from tests.broker.clients import close_stream, closed_within, connect_packet, paho_clients
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
# How much later than its deadline a slow machine may close a connection; a hundred times what
# it takes here, and still shorter than the next deadline each test tells apart from the right one.
LATE_S = 5.0
CLOCK_ROUNDING_S = 0.001


def _tls_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


async def test_silent_client_is_dropped_after_1_5_keepalives_and_its_will_sent(
    tmp_path: Path,
) -> None:
    keepalive = 2
    allowed_silence = 1.5 * keepalive  # [MQTT-3.1.2-24]: 3 s
    async with embedded_broker(tmp_path) as running, paho_clients(running) as clients:
        hub = await clients.hub()
        reader, writer = await asyncio.open_connection(
            running.host, running.tls_port, ssl=_tls_context(running.ca_file)
        )
        try:
            connect = connect_packet(
                "toy-w",
                "toy-w",
                running.device_password("toy-w"),
                keepalive=keepalive,
                will_topic=running.uplink("toy-w"),
                will_message=b"toy-w is gone",
            )
            # The CONNECT is the client's last packet: the broker's clock starts after it.
            silent_since = time.monotonic()
            writer.write(connect)
            await writer.drain()
            assert await reader.readexactly(4) == CONNACK_ACCEPTED
            closed = await closed_within(reader, allowed_silence + EVENT_TIMEOUT_S)
            silent_for = time.monotonic() - silent_since
        finally:
            await close_stream(writer)
        assert closed, "a silent client must be disconnected"
        assert silent_for >= allowed_silence - CLOCK_ROUNDING_S, "dropped before 1.5 keepalives"
        assert silent_for <= allowed_silence + LATE_S, silent_for
        will = await hub.receive()
        assert (will.topic, will.payload) == (running.uplink("toy-w"), b"toy-w is gone")


async def test_connections_past_the_cap_are_closed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "At once" is told apart from "after the CONNECT timeout", the other way such a connection
    # could end: a timeout long enough that no slow machine blurs the two.
    connect_timeout = EVENT_TIMEOUT_S
    monkeypatch.setattr(broker.server, "CONNECT_TIMEOUT_S", connect_timeout)
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
        assert time.monotonic() - started < connect_timeout, "closed at once, not after a timeout"
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(
            running.host, running.tls_port, ssl=_tls_context(running.ca_file)
        )
        try:
            closed = await closed_within(reader, connect_timeout + EVENT_TIMEOUT_S)
        finally:
            await close_stream(writer)
        assert closed
        assert time.monotonic() - started < connect_timeout, "closed at once, not after a timeout"
        assert all(client.is_connected for client in (hub, toy_1, toy_2))
        await toy_1.publish(running.uplink("toy-1"), b"from 1")
        assert (await hub.receive()).payload == b"from 1"
        await hub.publish(running.downlink("toy-2"), b"to 2")
        assert (await toy_2.receive()).payload == b"to 2"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_connection_without_connect_is_closed_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: bool
) -> None:
    # A tenth of the product's timeout: closing after the patched one is told apart from
    # closing after the real one (or never) with LATE_S to spare.
    connect_timeout = broker.server.CONNECT_TIMEOUT_S / 10
    assert connect_timeout + LATE_S < broker.server.CONNECT_TIMEOUT_S
    monkeypatch.setattr(broker.server, "CONNECT_TIMEOUT_S", connect_timeout)
    async with embedded_broker(tmp_path) as running, paho_clients(running) as clients:
        hub = await clients.hub()
        assert running.plain_port is not None
        started = time.monotonic()  # before the broker can have accepted the connection
        if tls:
            reader, writer = await asyncio.open_connection(
                running.host, running.tls_port, ssl=_tls_context(running.ca_file)
            )
        else:
            reader, writer = await asyncio.open_connection(running.host, running.plain_port)
        try:
            closed = await closed_within(reader, connect_timeout + EVENT_TIMEOUT_S)
        finally:
            await close_stream(writer)
        open_for = time.monotonic() - started
        assert closed, "a client that never sends CONNECT is closed"
        assert open_for >= connect_timeout - CLOCK_ROUNDING_S, "closed before the timeout"
        assert open_for <= connect_timeout + LATE_S, open_for
        assert hub.is_connected
