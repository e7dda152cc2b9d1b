"""Replicas whose clocks differ still agree, because what they share is timed on one clock,
Redis's: when an utterance went quiet, and whether an abort came after a turn began.

Each test runs two replicas' stores against the real Redis and skews one replica's clock
(``time.time``, as a badly synchronised host would have it) by more than any timeout here.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

from hub.conversation.devices import RedisDeviceStates
from hub.conversation.utterances import RedisUtteranceStore
from hub.protocol.conversation import AudioChunk, Codec

pytestmark = pytest.mark.integration

DEVICE = "toy-0001"
SKEW_S = 20.0  # inside the frame clock window (30 s), far beyond the utterance timeout (4 s)


@contextmanager
def clock_skewed_by(seconds: float) -> Iterator[None]:
    """This process's wall clock off by ``seconds`` while the block runs."""
    real_time, real_time_ns = time.time, time.time_ns
    time.time = lambda: real_time() + seconds  # type: ignore[assignment]
    time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time, time.time_ns = real_time, real_time_ns  # type: ignore[assignment]


@pytest.fixture
async def utterance_stores(
    redis_url: str, redis_prefix: str
) -> AsyncIterator[list[RedisUtteranceStore]]:
    stores = [RedisUtteranceStore.from_url(redis_url, redis_prefix) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


@pytest.fixture
async def device_states(
    redis_url: str, redis_prefix: str
) -> AsyncIterator[list[RedisDeviceStates]]:
    states = [RedisDeviceStates.from_url(redis_url, redis_prefix) for _ in range(2)]
    yield states
    for state in states:
        await state.close()


@pytest.mark.parametrize("skew_s", [SKEW_S, -SKEW_S], ids=["ahead", "behind"])
async def test_replicas_agree_how_long_an_utterance_has_been_quiet(
    utterance_stores: list[RedisUtteranceStore], skew_s: float
) -> None:
    writer, watcher = utterance_stores
    utterance = os.urandom(8)
    chunk = AudioChunk(utterance, 0, Codec.PCM16, b"\x00\x00" * 1_600)
    await writer.add_chunk(DEVICE, chunk, 100, max_ms=15_000, ttl_ms=60_000)

    with clock_skewed_by(skew_s):
        idle_ms = await watcher.idle_ms(DEVICE, utterance)

    # The child spoke a moment ago: a replica ahead must not time the utterance out, nor
    # one behind keep it open long after the child stopped.
    assert idle_ms is not None
    assert 0 <= idle_ms < SKEW_S * 1000 / 2


async def test_a_chunk_written_by_a_skewed_replica_counts_from_now(
    utterance_stores: list[RedisUtteranceStore],
) -> None:
    writer, watcher = utterance_stores
    utterance = os.urandom(8)
    chunk = AudioChunk(utterance, 0, Codec.PCM16, b"\x00\x00" * 1_600)
    with clock_skewed_by(-SKEW_S):
        await writer.add_chunk(DEVICE, chunk, 100, max_ms=15_000, ttl_ms=60_000)

    idle_ms = await watcher.idle_ms(DEVICE, utterance)
    assert idle_ms is not None
    assert 0 <= idle_ms < SKEW_S * 1000 / 2


async def test_an_abort_through_a_replica_behind_in_time_stops_the_running_turn(
    device_states: list[RedisDeviceStates],
) -> None:
    speaking, interrupted = device_states
    playing = os.urandom(8)
    started = await speaking.now()  # the turn began on the replica with the right clock

    with clock_skewed_by(-SKEW_S):  # the child's abort reaches a replica 20 s behind
        await interrupted.mark_aborted(DEVICE, None, keep=os.urandom(8))

    assert await speaking.is_aborted(DEVICE, playing, started)


async def test_an_abort_through_a_replica_ahead_does_not_stop_a_later_turn(
    device_states: list[RedisDeviceStates],
) -> None:
    first, second = device_states
    with clock_skewed_by(SKEW_S):  # an abort marked by a replica 20 s ahead...
        await first.mark_aborted(DEVICE, None)
    later = os.urandom(8)
    started = await second.now()  # ...then the child asks again, on another replica

    assert not await second.is_aborted(DEVICE, later, started)


async def test_turns_on_skewed_replicas_read_the_same_clock(
    device_states: list[RedisDeviceStates],
) -> None:
    right, skewed = device_states
    reference = await right.now()
    with clock_skewed_by(SKEW_S):
        other = await skewed.now()
    assert abs(other - reference) < SKEW_S / 2
