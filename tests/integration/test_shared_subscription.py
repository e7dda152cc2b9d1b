"""Hub replicas in one MQTT shared subscription split the uplinks and handle each once.

Mosquitto 2 hands each message of a ``$share/<group>/...`` subscription to one member of the
group; the replicas' shared Redis nonce store catches a frame published twice even when its two
copies go to different replicas.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from hub.errors import RejectReason
from hub.nonces import RedisNonceStore
from hub.protocol.frames import TAG_SIZE
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

_TOYS = 3
_FRAMES_PER_TOY = 20


async def test_two_hubs_in_a_share_group_dispatch_every_frame_exactly_once(
    hub_settings: Settings,
    hubs: HubRunner,
    toys: Toys,
    redis_stores: Callable[[], RedisNonceStore],
) -> None:
    group = f"hubs-{uuid.uuid4().hex[:8]}"
    first_settings = hub_settings.model_copy(update={"hub_share_group": group})
    second_settings = first_settings.model_copy(
        update={"hub_client_id": f"hub-{uuid.uuid4().hex[:12]}"}
    )
    replicas = [
        Hub.build(settings, nonces=redis_stores()) for settings in (first_settings, second_settings)
    ]
    recorders = [Recorder(), Recorder()]
    for hub, recorder in zip(replicas, recorders, strict=True):
        hub.dispatcher.replace(Kind.TEXT, recorder)
        await hubs.start(hub)

    senders = [await toys.open() for _ in range(_TOYS)]
    messages = [
        (sender, *sender.frame(Kind.TEXT, b"%d" % index))
        for index in range(_FRAMES_PER_TOY)
        for sender in senders
    ]
    for sender, topic, data in messages:
        await sender.publish_raw(topic, data)
    total = len(messages)

    def handled() -> int:
        return sum(len(recorder.calls) for recorder in recorders)

    await wait_until(lambda: handled() == total, "every frame to be handled")
    assert all(len(recorder.calls) > 0 for recorder in recorders), "one replica got nothing"
    assert sum(received(hub) for hub in replicas) == total

    # Every frame again: whichever replica gets a copy, the shared store rejects it.
    for sender, topic, data in messages:
        await sender.publish_raw(topic, data)
    await wait_until(
        lambda: sum(rejected(hub, RejectReason.REPLAY) for hub in replicas) == total,
        "every copy to be rejected as a replay",
    )

    assert all(received(hub) > 0 for hub in replicas)
    assert sum(received(hub) for hub in replicas) == 2 * total
    assert handled() == total
    handled_frames = [call.frame.signed for recorder in recorders for call in recorder.calls]
    assert sorted(handled_frames) == sorted(data[:-TAG_SIZE] for _, _, data in messages)
    assert sum(sum(rejections(hub).values()) for hub in replicas) == total
