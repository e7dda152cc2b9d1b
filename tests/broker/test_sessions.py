"""A toy's connection and session survive what only an impostor can send, and yield to a
newer authenticated login of the same toy."""

from __future__ import annotations

import asyncio

import pytest

from tests.broker.brokers import BrokerUnderTest
from tests.broker.clients import Clients, wait_until

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
    assert await first.wait_disconnected(), "the replaced connection must be closed"
    if clean_session:
        assert await second.subscribe(broker.downlinks("toy-a")) == 1
    # else: the persistent session, and so its subscription, passes to the new connection.
    await hub.publish(broker.downlink("toy-a"), b"to the newest")
    assert (await second.receive()).payload == b"to the newest"
    assert second.is_connected
    assert first.messages.empty()


async def test_simultaneous_logins_leave_one_live_connection(
    broker: BrokerUnderTest, clients: Clients
) -> None:
    """Valid logins racing for one id never leave two live connections for it.

    Mosquitto keeps exactly the newest and serves it. The embedded broker serialises such
    logins, but amqtt's take-over can still close the survivor as well (README: what the
    embedded broker lacks); the toy then simply reconnects.
    """
    hub = await clients.hub()
    racers = [
        clients.new("toy-a", username="toy-a", password=broker.device_password("toy-a"))
        for _ in range(4)
    ]
    accepted = await asyncio.gather(*(racer.connect() for racer in racers))
    assert any(accepted)  # a racer replaced before its CONNACK arrived may see none at all
    # Every CONNECT has been answered (or its connection closed); the broker closes the
    # connections it replaced as it takes each over. Two may be alive only until it has.
    await wait_until(
        lambda: sum(racer.is_connected for racer in racers) <= 1,
        "the take-overs to leave at most one live connection for one device id",
    )
    alive = [racer for racer in racers if racer.is_connected]
    assert len(alive) <= 1, f"{len(alive)} connections for one device id"
    if broker.name == "embedded":
        return
    assert len(alive) == 1
    survivor = alive[0]
    assert await survivor.subscribe(broker.downlinks("toy-a")) == 1
    await hub.publish(broker.downlink("toy-a"), b"to the one")
    assert (await survivor.receive()).payload == b"to the one"
