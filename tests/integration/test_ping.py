"""``ping`` -> ``pong`` end to end: toy, Mosquitto, hub gate, handler, signed downlink, toy.

The toy verifies every downlink as firmware must, so a pong signed with any other key, or a
genuine pong played back, is dropped by the toy with its reason.
"""

from __future__ import annotations

import os

import pytest

from hub.errors import ToyError
from hub.gate import wall_clock_ms
from hub.protocol.frames import NONCE_SIZE, Frame, encode_frame
from hub.protocol.keys import derive_device_key
from hub.protocol.kinds import Kind
from hub.protocol.topics import downlink_topic
from hub.service import Hub
from hub.settings import Settings
from hub.toy.simulator import SimulatedToy
from tests.integration.harness import HubRunner, Toys, dispatched, sample, wait_until
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

_OTHER_FLEET_SECRET = b"another-fleet-secret-that-is-not-ours-0123456789"


async def _ping_with(toy: SimulatedToy, nonce: bytes) -> Frame:
    """Send a ping carrying ``nonce`` and return the verified pong that answers it."""
    topic, data = toy.frame(Kind.PING, nonce=nonce)
    await toy.publish_raw(topic, data)
    return await toy.receive(Kind.PONG, 5.0, match=lambda frame: frame.payload == nonce)


async def test_ping_gets_a_verified_pong(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub = Hub.build(hub_settings)
    await hubs.start(hub)
    toy = await toys.open()

    round_trip_ms = await toy.ping(timeout_s=EVENT_TIMEOUT_S)

    assert 0 < round_trip_ms < 5_000
    assert toy.rejected == []
    assert dispatched(hub, Kind.PING) == 1
    # The toy may verify the pong before the hub's publish has its PUBACK and is counted.
    await wait_until(
        lambda: sample(hub, "teddy_hub_downlinks_published_total", {"kind": "pong"}) == 1,
        "the pong to be counted",
    )


async def test_toy_rejects_forged_and_replayed_downlinks(
    hub_settings: Settings, hubs: HubRunner, toys: Toys, topic_root: str
) -> None:
    hub = Hub.build(hub_settings)
    await hubs.start(hub)
    toy = await toys.open()
    attacker = await toys.open()  # any client of the broker may publish on a toy's topics
    pong_topic = downlink_topic(topic_root, toy.device_id, Kind.PONG)

    # A pong that answers the right ping, but is signed with a key from another fleet secret.
    nonce = os.urandom(NONCE_SIZE)
    forged = encode_frame(
        key=derive_device_key(_OTHER_FLEET_SECRET, toy.device_id),
        topic=pong_topic,
        kind=Kind.PONG,
        device_id=toy.device_id,
        timestamp_ms=wall_clock_ms(),
        nonce=os.urandom(NONCE_SIZE),
        seq=0,
        payload=nonce,
    )
    await attacker.publish_raw(pong_topic, forged)
    genuine = await _ping_with(toy, nonce)
    assert toy.rejected == ["bad_signature"]

    # The genuine pong played back before the next genuine one.
    await attacker.publish_raw(pong_topic, genuine.signed + genuine.tag)
    await _ping_with(toy, os.urandom(NONCE_SIZE))
    assert toy.rejected == ["bad_signature", "replay"]
    await wait_until(
        lambda: sample(hub, "teddy_hub_downlinks_published_total", {"kind": "pong"}) == 2,
        "both pongs to be counted",
    )


async def test_toy_gets_no_pong_when_the_hub_is_not_running(toys: Toys) -> None:
    toy = await toys.open()

    with pytest.raises(ToyError, match="no verified pong"):
        await toy.ping(timeout_s=0.3)
