"""Limits that drop one client, never the others; revocation of a toy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.broker.brokers import BrokerUnderTest
from tests.broker.clients import Clients, mosquitto_clients_available, mosquitto_pub

pytestmark = pytest.mark.integration
MAX_PACKET_SIZE = 20_480


@pytest.mark.parametrize(
    "broker_overrides", [{"broker_max_packet_size": MAX_PACKET_SIZE}], indirect=True
)
async def test_oversized_publish_drops_only_that_client(
    broker: BrokerUnderTest, clients: Clients, broker_overrides: dict[str, Any]
) -> None:
    hub = await clients.hub()
    toy_a = await clients.toy("toy-a")
    assert await toy_a.subscribe(broker.downlinks("toy-a")) == 1
    big = await clients.toy("toy-big")
    await big.publish(broker.uplink("toy-big", "audio"), b"\0" * 65_536)
    assert await big.wait_disconnected(), "the client over the packet limit is dropped"
    assert hub.is_connected
    assert toy_a.is_connected
    await hub.publish(broker.downlink("toy-a"), b"still here")
    assert (await toy_a.receive()).payload == b"still here"
    await toy_a.publish(broker.uplink("toy-a"), b"me too")
    message = await hub.receive()
    assert (message.topic, message.payload) == (broker.uplink("toy-a"), b"me too")
    # Just under the limit still passes.
    fits = b"\1" * (MAX_PACKET_SIZE - 200)
    await toy_a.publish(broker.uplink("toy-a", "audio"), fits)
    assert (await hub.receive()).payload == fits
    assert toy_a.is_connected


async def test_revoked_toy_cannot_log_in(broker: BrokerUnderTest, clients: Clients) -> None:
    assert (await clients.toy("toy-x")).is_connected
    await broker.revoke("toy-x")
    revoked = clients.new("toy-x", username="toy-x", password=broker.device_password("toy-x"))
    assert not await revoked.connect()
    assert revoked.connack is not None and revoked.connack.is_failure
    assert (await clients.toy("toy-y")).is_connected
    assert (await clients.hub()).is_connected
    if mosquitto_clients_available():
        refused = await mosquitto_pub(
            broker, "toy-x", "toy-x", broker.device_password("toy-x"), broker.uplink("toy-x")
        )
        assert refused.returncode != 0
        assert "Connection Refused" in refused.stderr, refused.stderr


QUEUED, INFLIGHT = 5, 2


@pytest.mark.parametrize(
    "broker_overrides",
    [{"broker_max_queued_messages": QUEUED, "broker_max_inflight_messages": INFLIGHT}],
    indirect=True,
)
async def test_an_away_toys_queue_is_bounded(
    broker: BrokerUnderTest, clients: Clients, broker_overrides: dict[str, Any]
) -> None:
    """A toy that stays away cannot make the broker keep an unbounded queue for it.

    Both brokers keep at most the queue bound plus the in-flight window for a persistent
    session (Mosquitto counts messages it had begun to send as in flight, amqtt those that
    reached the closing connection), the oldest first; the rest is discarded.
    """
    away = clients.new(
        "toy-away",
        username="toy-away",
        password=broker.device_password("toy-away"),
        clean_session=False,
    )
    await away.connected()
    assert await away.subscribe(broker.downlinks("toy-away")) == 1
    await away.close()
    hub = await clients.hub()
    sent = [b"reply %d" % n for n in range(30)]
    for payload in sent:
        await hub.publish(broker.downlink("toy-away"), payload)
    back = clients.new(
        "toy-away",
        username="toy-away",
        password=broker.device_password("toy-away"),
        clean_session=False,
    )
    await back.connected()
    kept = [(await back.receive()).payload for _ in range(QUEUED)]
    kept += [message.payload for message in await back.received_nothing()]
    assert QUEUED <= len(kept) <= QUEUED + INFLIGHT, f"{len(kept)} of {len(sent)} kept"
    assert kept == sent[: len(kept)], "the oldest are kept, in order"


async def test_a_revoked_toy_already_connected_is_disconnected(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    revoked = await clients.toy("toy-gone")
    other = await clients.toy("toy-stays")
    await broker.revoke("toy-gone")
    # The broker's sweep of open connections runs on its own schedule after the refresh.
    assert await revoked.wait_disconnected(), "the revoked toy was cut off"
    assert other.is_connected
