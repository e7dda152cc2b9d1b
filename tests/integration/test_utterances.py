"""Reassembly of utterances in Redis and in memory: out of order, duplicated, split between
replicas, capped, timed out; and no audio left behind."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from hub.conversation.utterances import (
    MemoryUtteranceStore,
    Outcome,
    RedisUtteranceStore,
    UtteranceStore,
)
from hub.protocol.conversation import AudioChunk, Codec

pytestmark = pytest.mark.integration
DEVICE = "toy-0001"
TTL_MS = 10_000


@pytest.fixture
async def redis_utterance_stores(
    redis_url: str, redis_prefix: str, redis_client: aioredis.Redis
) -> AsyncIterator[Callable[[], UtteranceStore]]:
    """Opens Redis stores on this test's prefix, like replicas of one deployment."""
    opened: list[RedisUtteranceStore] = []

    def open_store() -> UtteranceStore:
        store = RedisUtteranceStore(aioredis.Redis.from_url(redis_url), redis_prefix)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture(params=["redis", "memory"])
def stores(request: pytest.FixtureRequest) -> Callable[[], UtteranceStore]:
    """Stores that share state like two replicas: Redis, then the embedded mode's memory."""
    if request.param == "memory":
        shared = MemoryUtteranceStore()
        return lambda: shared
    factory: Callable[[], UtteranceStore] = request.getfixturevalue("redis_utterance_stores")
    return factory


def chunks(count: int, utterance: bytes) -> list[AudioChunk]:
    return [AudioChunk(utterance, seq, Codec.PCM16, bytes([seq]) * 320) for seq in range(count)]


async def test_out_of_order_chunks_over_two_replicas_complete_once(
    stores: Callable[[], UtteranceStore],
) -> None:
    first, second = stores(), stores()
    utterance = os.urandom(8)
    parts = chunks(20, utterance)
    random.Random(7).shuffle(parts)
    finished = await first.finish(DEVICE, utterance, 20, ttl_ms=TTL_MS)  # end overtakes audio
    assert finished.outcome is Outcome.PENDING
    outcomes = []
    for index, chunk in enumerate(parts + parts[:3]):  # three redelivered at the end
        store = first if index % 2 else second
        outcomes.append(await store.add_chunk(DEVICE, chunk, 10, max_ms=15_000, ttl_ms=TTL_MS))
    complete = [progress for progress in outcomes if progress.outcome is Outcome.COMPLETE]
    assert len(complete) == 1
    assert complete[0].chunks == [bytes([seq]) * 320 for seq in range(20)]
    assert complete[0].codec is Codec.PCM16
    assert [progress.outcome for progress in outcomes[-3:]] == [Outcome.DONE] * 3
    assert await first.idle_ms(DEVICE, utterance) is None  # no audio left in the store


async def test_concurrent_writers_complete_exactly_once(
    stores: Callable[[], UtteranceStore],
) -> None:
    utterance = os.urandom(8)
    writers = [stores() for _ in range(4)]
    results = await asyncio.gather(
        *(
            writers[chunk.seq % 4].add_chunk(DEVICE, chunk, 10, max_ms=15_000, ttl_ms=TTL_MS)
            for chunk in chunks(40, utterance)
        ),
        writers[0].finish(DEVICE, utterance, 40, ttl_ms=TTL_MS),
    )
    assert [result.outcome for result in results].count(Outcome.COMPLETE) == 1


async def test_an_utterance_over_the_cap_is_refused_once(
    stores: Callable[[], UtteranceStore],
) -> None:
    store = stores()
    utterance = os.urandom(8)
    results = [
        await store.add_chunk(DEVICE, chunk, 1_000, max_ms=5_000, ttl_ms=TTL_MS)
        for chunk in chunks(8, utterance)
    ]
    assert [result.outcome for result in results] == [Outcome.PENDING] * 5 + [
        Outcome.TOO_LONG,
        Outcome.DONE,
        Outcome.DONE,
    ]
    assert await store.idle_ms(DEVICE, utterance) is None


async def test_an_unfinished_utterance_expires_once(stores: Callable[[], UtteranceStore]) -> None:
    first, second = stores(), stores()
    utterance = os.urandom(8)
    await first.add_chunk(DEVICE, chunks(1, utterance)[0], 60, max_ms=15_000, ttl_ms=TTL_MS)
    idle = await second.idle_ms(DEVICE, utterance)
    assert idle is not None and 0 <= idle < 5_000
    assert await first.expire(DEVICE, utterance) is True
    assert await second.expire(DEVICE, utterance) is False
    late = await second.add_chunk(DEVICE, chunks(2, utterance)[1], 60, max_ms=15_000, ttl_ms=TTL_MS)
    assert late.outcome is Outcome.DONE
    assert await first.idle_ms(DEVICE, utterance) is None


async def test_devices_and_utterances_do_not_mix(stores: Callable[[], UtteranceStore]) -> None:
    store = stores()
    one, two = os.urandom(8), os.urandom(8)
    await store.add_chunk(DEVICE, chunks(1, one)[0], 10, max_ms=15_000, ttl_ms=TTL_MS)
    other = await store.finish("toy-0002", one, 1, ttl_ms=TTL_MS)
    assert other.outcome is Outcome.PENDING
    assert (await store.finish(DEVICE, two, 1, ttl_ms=TTL_MS)).outcome is Outcome.PENDING
    done = await store.finish(DEVICE, one, 1, ttl_ms=TTL_MS)
    assert done.outcome is Outcome.COMPLETE


async def test_completion_needs_every_seq_not_just_enough_chunks(
    stores: Callable[[], UtteranceStore],
) -> None:
    store = stores()
    utterance = os.urandom(8)
    parts = chunks(8, utterance)
    await store.add_chunk(DEVICE, parts[0], 10, max_ms=15_000, ttl_ms=TTL_MS)
    await store.add_chunk(DEVICE, parts[7], 10, max_ms=15_000, ttl_ms=TTL_MS)
    assert (await store.finish(DEVICE, utterance, 2, ttl_ms=TTL_MS)).outcome is Outcome.PENDING
    beyond = await store.add_chunk(DEVICE, parts[5], 10, max_ms=15_000, ttl_ms=TTL_MS)
    assert beyond.outcome is Outcome.PENDING  # past the announced count: not part of it
    done = await store.add_chunk(DEVICE, parts[1], 10, max_ms=15_000, ttl_ms=TTL_MS)
    assert done.outcome is Outcome.COMPLETE
    assert done.chunks == [parts[0].data, parts[1].data]
