"""A toy's connection and session survive what only an impostor can send, and yield to a
newer authenticated login of the same toy."""

from __future__ import annotations

import pytest

from tests.broker.brokers import BrokerUnderTest
from tests.broker.clients import Clients

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean", "persistent"])
async def test_failed_login_with_a_toys_id_leaves_the_toy_alone(
    broker: BrokerUnderTest, clients: Clients, clean_session: bool
) -> None:
    hub = await clients.hub()
    toy_a = await clients.toy("toy-a", clean_session=clean_session)
    assert await toy_a.subscribe(broker.downlinks("toy-a")) == 1
    impostors = [
        ("toy-a", "toy-a", broker.device_password("toy-b")),  # someone else's key
        ("toy-a", "toy-a", "v1.0.0000000000000000." + "0" * 64),
        ("toy-a", None, None),  # anonymous with the toy's id
        ("toy-a", "svc:hub", "0" * 64),
    ]
    for client_id, username, password in impostors:
        impostor = clients.new(
            client_id, username=username, password=password, clean_session=clean_session
        )
        assert not await impostor.connect()
        await impostor.close()
    assert toy_a.is_connected
    await hub.publish(broker.downlink("toy-a"), b"still yours")
    assert (await toy_a.receive()).payload == b"still yours"
    assert toy_a.is_connected


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean", "persistent"])
async def test_second_valid_login_takes_over(
    broker: BrokerUnderTest, clients: Clients, clean_session: bool
) -> None:
    hub = await clients.hub()
    first = await clients.toy("toy-a", clean_session=clean_session)
    assert await first.subscribe(broker.downlinks("toy-a")) == 1
    second = await clients.toy("toy-a", clean_session=clean_session)
    assert await first.wait_disconnected(5.0), "the replaced connection must be closed"
    if clean_session:
        assert await second.subscribe(broker.downlinks("toy-a")) == 1
    # else: the persistent session, and so its subscription, passes to the new connection.
    await hub.publish(broker.downlink("toy-a"), b"to the newest")
    assert (await second.receive()).payload == b"to the newest"
    assert second.is_connected
    assert first.messages.empty()
