"""Hub restarts: no QoS 1 uplink is lost across one, and no effect happens twice.

The hub's broker session is persistent (``clean_session=False`` under a fixed client id), so
Mosquitto queues the uplinks published while the hub is down and delivers them when it is back.
Effects are at most once (docs/protocol.md, "Delivery"): a nonce claimed by a hub that crashed
before its handler ran stays claimed, so a redelivery of that frame is dropped as a replay.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.errors import RejectReason
from hub.nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from hub.protocol.kinds import Kind
from hub.service import Hub
from hub.settings import Settings
from tests.integration.harness import (
    HubRunner,
    Recorder,
    Toys,
    received,
    rejected,
    rejections,
    wait_until,
)

pytestmark = pytest.mark.integration

_FRAMES_WHILE_DOWN = 25


@pytest.fixture(params=["redis", "memory"])
def store(
    request: pytest.FixtureRequest, redis_stores: Callable[[], RedisNonceStore]
) -> NonceStore:
    """The nonce store both hub runs use."""
    return redis_stores() if request.param == "redis" else MemoryNonceStore()


async def test_restart_loses_no_qos1_uplink_published_while_down(
    store: NonceStore, hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    first = Hub.build(hub_settings, nonces=store)
    first.dispatcher.replace(Kind.TEXT, Recorder())
    await hubs.start(first)
    await hubs.stop(first)

    toy = await toys.open()
    sent = [await toy.send(Kind.TEXT, b"%d" % index) for index in range(_FRAMES_WHILE_DOWN)]

    second = Hub.build(hub_settings, nonces=store)
    recorder = Recorder()
    second.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(second)
    await recorder.wait_for(_FRAMES_WHILE_DOWN)
    await wait_until(lambda: received(second) == _FRAMES_WHILE_DOWN, "every queued uplink")

    # A toy's frames may be handled concurrently (device_concurrency), so order is not checked.
    assert sorted(recorder.nonces) == sorted(sent)
    assert sum(rejections(second).values()) == 0


async def test_frame_claimed_by_a_crashed_hub_is_dropped_as_a_replay(
    hub_settings: Settings,
    hubs: HubRunner,
    toys: Toys,
    redis_stores: Callable[[], RedisNonceStore],
) -> None:
    toy = await toys.open()
    topic, data = toy.frame(Kind.TEXT, b"claimed, never handled")

    # The first hub screens the frame and claims its nonce, then dies before the handler runs.
    crashed = Hub.build(hub_settings, nonces=redis_stores())
    frame = crashed.gate.screen(topic, data, crashed.gate.now_ms())
    assert frame is not None
    assert await crashed.gate.admit([frame]) == [True]
    await crashed.nonces.close()

    restarted = Hub.build(hub_settings, nonces=redis_stores())
    recorder = Recorder()
    restarted.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(restarted)
    await toy.publish_raw(topic, data)  # the broker delivers the frame again
    await toy.send(Kind.TEXT, b"next")

    await recorder.wait_for(1)
    await wait_until(lambda: received(restarted) == 2, "both frames to be screened")
    assert recorder.payloads == [b"next"]
    assert rejected(restarted, RejectReason.REPLAY) == 1
    assert sum(rejections(restarted).values()) == 1
