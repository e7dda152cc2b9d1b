"""The gate in front of every handler, driven through the real Mosquitto by simulated toys.

Each rejection reason of docs/protocol.md ("Rejections") is produced by a toy that misbehaves
in exactly one way; the test then checks that the handler never saw the frame and that exactly
that reason's counter moved by one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from hub.errors import RejectReason
from hub.gate import wall_clock_ms
from hub.protocol.frames import MAX_PAYLOAD_SIZE, NONCE_SIZE
from hub.protocol.kinds import Kind
from hub.protocol.topics import uplink_topic
from hub.revocation import InMemoryRevocations
from hub.service import Hub
from hub.settings import Settings
from hub.toy.simulator import SimulatedToy
from tests.integration.harness import (
    HubRunner,
    Recorder,
    Toys,
    dispatched,
    hand_built_frame,
    received,
    rejected,
    rejections,
    wait_until,
)

pytestmark = pytest.mark.integration

# Far enough outside the ±30 s clock window that clock drift between the steps cannot matter.
_OUTSIDE_WINDOW_MS = 120_000

Messages = list[tuple[str, bytes]]


async def _start_recording_hub(
    settings: Settings, hubs: HubRunner, revocations: InMemoryRevocations | None = None
) -> tuple[Hub, Recorder]:
    hub = Hub.build(settings, revocation_source=revocations)
    recorder = Recorder()
    hub.dispatcher.replace(Kind.TEXT, recorder)
    await hubs.start(hub)
    return hub, recorder


async def test_valid_frame_is_dispatched_once_and_its_replay_is_rejected(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub, recorder = await _start_recording_hub(hub_settings, hubs)
    toy = await toys.open()
    topic, data = toy.frame(Kind.TEXT, b"hello teddy")

    await toy.publish_raw(topic, data)
    await recorder.wait_for(1)
    assert recorder.calls[0].device_id == toy.device_id
    assert recorder.payloads == [b"hello teddy"]

    await toy.publish_raw(topic, data)
    await wait_until(lambda: rejected(hub, RejectReason.REPLAY) == 1, "the replay to be rejected")

    assert received(hub) == 2
    assert len(recorder.calls) == 1
    assert dispatched(hub, Kind.TEXT) == 1
    assert rejections(hub) == {
        reason: float(reason is RejectReason.REPLAY) for reason in RejectReason
    }


def _valid(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    return [toy.frame(Kind.TEXT, b"fine")]


def _malformed(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    return [(uplink_topic(root, toy.device_id, Kind.TEXT), b"\x01\x00this is not a frame")]


def _topic_mismatch(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    _, data = toy.frame(Kind.TEXT, b"text on the ping topic")
    return [(uplink_topic(root, toy.device_id, Kind.PING), data)]


def _oversized(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    payload = b"a" * (MAX_PAYLOAD_SIZE + 1)
    return [
        hand_built_frame(key, root, toy.device_id, Kind.TEXT, payload, nonce=os.urandom(NONCE_SIZE))
    ]


def _bad_signature(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    topic, data = toy.frame(Kind.TEXT, b"tampered")
    return [(topic, data[:-1] + bytes((data[-1] ^ 0x01,)))]


def _stale(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    return [toy.frame(Kind.TEXT, b"old", timestamp_ms=wall_clock_ms() - _OUTSIDE_WINDOW_MS)]


def _future(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    return [toy.frame(Kind.TEXT, b"ahead", timestamp_ms=wall_clock_ms() + _OUTSIDE_WINDOW_MS)]


def _replay(toy: SimulatedToy, key: bytes, root: str) -> Messages:
    message = toy.frame(Kind.TEXT, b"once")
    return [message, message]


_BAD_MESSAGES: dict[RejectReason, Callable[[SimulatedToy, bytes, str], Messages]] = {
    RejectReason.MALFORMED: _malformed,
    RejectReason.TOPIC_MISMATCH: _topic_mismatch,
    RejectReason.OVERSIZED: _oversized,
    RejectReason.BAD_SIGNATURE: _bad_signature,
    RejectReason.STALE: _stale,
    RejectReason.FUTURE: _future,
    RejectReason.REVOKED: _valid,
    RejectReason.REPLAY: _replay,
}


def test_every_reject_reason_is_covered() -> None:
    assert set(_BAD_MESSAGES) == set(RejectReason)


@pytest.mark.parametrize("reason", list(RejectReason), ids=str)
async def test_rejected_frame_never_reaches_the_handler_and_counts_its_reason(
    reason: RejectReason, hub_settings: Settings, hubs: HubRunner, toys: Toys, topic_root: str
) -> None:
    culprit = await toys.open()
    bystander = await toys.open()
    revoked = {culprit.device_id} if reason is RejectReason.REVOKED else set()
    hub, recorder = await _start_recording_hub(
        hub_settings, hubs, InMemoryRevocations(frozenset(revoked))
    )
    messages = _BAD_MESSAGES[reason](culprit, toys.key_for(culprit.device_id), topic_root)
    for topic, data in messages:
        await culprit.publish_raw(topic, data)
    # A valid frame from another toy afterwards shows the hub is alive and still dispatching.
    await bystander.send(Kind.TEXT, b"bystander")

    culprit_handled = 1 if reason is RejectReason.REPLAY else 0  # the replay's first copy
    expected_handled = culprit_handled + 1
    await recorder.wait_for(expected_handled)
    await wait_until(lambda: received(hub) == len(messages) + 1, "every message to be screened")
    await wait_until(lambda: rejected(hub, reason) >= 1, f"the {reason} rejection")

    assert rejections(hub) == {other: float(other is reason) for other in RejectReason}
    culprit_frames = [call for call in recorder.calls if call.device_id == culprit.device_id]
    assert len(culprit_frames) == culprit_handled
    assert [call.device_id for call in recorder.calls].count(bystander.device_id) == 1
    assert len(recorder.calls) == expected_handled
    assert sum(dispatched(hub, kind) for kind in Kind) == expected_handled


class CountedRevocations(InMemoryRevocations):
    """The in-memory source, counting how often the hub has read it."""

    reads = 0

    async def revoked_device_ids(self) -> frozenset[str]:
        self.reads += 1
        return await super().revoked_device_ids()


async def test_revocation_while_running_takes_effect_at_the_next_refresh(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    # The list is re-read every TEDDY_REVOCATION_REFRESH_S (2 s, at most 5 by construction):
    # counting the reads proves "at the next refresh" without racing the machine's speed.
    revocations = CountedRevocations()
    hub, recorder = await _start_recording_hub(hub_settings, hubs, revocations)
    toy = await toys.open()
    await toy.send(Kind.TEXT, b"before")
    await recorder.wait_for(1)

    revocations.revoke(toy.device_id)
    reads_at_revocation = revocations.reads
    await wait_until(lambda: revocations.reads > reads_at_revocation, "the next refresh")
    await toy.send(Kind.TEXT, b"probe")
    await wait_until(lambda: rejected(hub, RejectReason.REVOKED) == 1, "the probe rejected")
    handled_at_revocation = len(recorder.calls)
    assert handled_at_revocation == 1  # only "before"

    await toy.send(Kind.TEXT, b"after")
    await wait_until(lambda: rejected(hub, RejectReason.REVOKED) == 2, "the next frame rejected")
    assert len(recorder.calls) == handled_at_revocation
    assert sum(rejections(hub).values()) == 2
