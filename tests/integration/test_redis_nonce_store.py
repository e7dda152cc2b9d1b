"""Nonce stores against the real Redis, and replay protection shared by two hubs.

The two stores share one contract (:class:`hub.nonces.NonceStore`); the contract tests run on
both. The Redis-only tests read Redis directly to check what the claim script leaves behind:
keys under the configured prefix, each with the TTL it was claimed for.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from hub.errors import RejectReason
from hub.nonces import MemoryNonceStore, NonceStore, RedisNonceStore, nonce_key
from hub.protocol.frames import NONCE_SIZE
from hub.protocol.kinds import Kind
from hub.protocol.verify import NONCE_TTL_MS
from hub.service import Hub
from hub.settings import Settings
from tests.integration.harness import (
    HubRunner,
    Recorder,
    Toys,
    new_device_id,
    received,
    rejected,
    rejections,
    wait_until,
)
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

StoreFactory = Callable[[], NonceStore]


def _key(device_id: str | None = None) -> bytes:
    return nonce_key(device_id or new_device_id(), os.urandom(NONCE_SIZE))


@pytest.fixture(params=["memory", "redis"])
def store_factory(
    request: pytest.FixtureRequest, redis_stores: Callable[[], RedisNonceStore]
) -> StoreFactory:
    """Stores that share their nonces, as the hub replicas of one deployment do.

    Memory: the same instance every time (one process). Redis: a new client every time, on
    the test's key prefix, as separate processes would have.
    """
    if request.param == "memory":
        memory = MemoryNonceStore()
        return lambda: memory
    return redis_stores


async def test_claim_many_is_new_only_at_a_keys_first_position(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    a, b, c = _key(), _key(), _key()

    assert await store.claim_many([], NONCE_TTL_MS) == []
    assert await store.claim_many([a, b, a], NONCE_TTL_MS) == [True, True, False]
    assert await store.claim_many([a, c, b, c], NONCE_TTL_MS) == [False, True, False, False]
    await store.check()


async def test_a_nonce_is_scoped_to_its_device(store_factory: StoreFactory) -> None:
    store = store_factory()
    nonce = os.urandom(NONCE_SIZE)
    keys = [nonce_key(new_device_id(), nonce), nonce_key(new_device_id(), nonce)]

    assert await store.claim_many(keys, NONCE_TTL_MS) == [True, True]


async def test_concurrent_claims_of_one_nonce_have_one_winner(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    key = _key()

    results = await asyncio.gather(
        first.claim_many([key], NONCE_TTL_MS), second.claim_many([key], NONCE_TTL_MS)
    )

    assert sorted(results) == [[False], [True]]


async def test_redis_claims_are_keys_under_the_prefix_with_the_claimed_ttl(
    redis_store: RedisNonceStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    claimed = [_key(), _key(), _key()]
    claim_id = b"c" * 16
    assert await redis_store.claim_many([*claimed, claimed[0]], NONCE_TTL_MS, claim_id) == [
        True,
        True,
        True,
        False,
    ]

    stored = {key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")}
    assert stored == {redis_prefix.encode() + b"n:" + key for key in claimed}
    for key in stored:
        pttl = await redis_client.pttl(key)
        assert NONCE_TTL_MS - 10_000 < pttl <= NONCE_TTL_MS
        assert await redis_client.get(key) == claim_id


async def test_redis_forgets_a_nonce_when_its_ttl_ends(
    redis_store: RedisNonceStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    key = _key()
    stored_key = redis_prefix.encode() + b"n:" + key
    assert await redis_store.claim_many([key], 50) == [True]
    assert await redis_store.claim_many([key], 50) == [False]

    deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT_S
    while await redis_client.exists(stored_key):
        assert asyncio.get_running_loop().time() < deadline, "the nonce key never expired"
        await asyncio.sleep(0.01)

    assert await redis_store.claim_many([key], NONCE_TTL_MS) == [True]


async def test_redis_prefixes_keep_deployments_apart(
    redis_url: str,
    redis_prefix: str,
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
) -> None:
    key = _key()
    one = RedisNonceStore.from_url(redis_url, redis_prefix + "one:")
    other = RedisNonceStore.from_url(redis_url, redis_prefix + "other:")
    try:
        assert await one.claim_many([key], NONCE_TTL_MS) == [True]
        assert await other.claim_many([key], NONCE_TTL_MS) == [True]
    finally:
        await one.close()
        await other.close()


async def test_hubs_sharing_a_store_dispatch_each_frame_once(
    store_factory: StoreFactory, hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    """Two hubs without a share group both get every uplink; the shared store picks one."""
    other_settings = hub_settings.model_copy(update={"hub_client_id": f"hub-{uuid.uuid4().hex}"})
    pair = [
        Hub.build(hub_settings, nonces=store_factory()),
        Hub.build(other_settings, nonces=store_factory()),
    ]
    recorders = [Recorder(), Recorder()]
    for hub, recorder in zip(pair, recorders, strict=True):
        hub.dispatcher.replace(Kind.TEXT, recorder)
        await hubs.start(hub)
    senders = [await toys.open(), await toys.open()]
    sent = [await toy.send(Kind.TEXT, b"%d" % index) for toy in senders for index in range(10)]

    await wait_until(
        lambda: all(received(hub) == len(sent) for hub in pair), "both hubs to screen every frame"
    )
    await wait_until(
        lambda: sum(rejected(hub, RejectReason.REPLAY) for hub in pair) == len(sent),
        "the second copy of every frame to be rejected",
    )
    await wait_until(
        lambda: sum(len(recorder.calls) for recorder in recorders) == len(sent),
        "every frame to be handled",
    )

    handled = [nonce for recorder in recorders for nonce in recorder.nonces]
    assert sorted(handled) == sorted(sent)
    for hub in pair:
        assert sum(rejections(hub).values()) == rejected(hub, RejectReason.REPLAY)


async def test_a_retried_batch_is_not_mistaken_for_a_replay(redis_store: RedisNonceStore) -> None:
    # The first try reached Redis but its answer was lost; the retry carries the same claim id.
    batch = [_key(), _key()]
    claim_id = b"r" * 16
    assert await redis_store.claim_many(batch, NONCE_TTL_MS, claim_id) == [True, True]
    assert await redis_store.claim_many([*batch, batch[0]], NONCE_TTL_MS, claim_id) == [
        True,
        True,
        False,
    ], "ours once each; the repeat inside the batch is still a repeat"
    assert await redis_store.claim_many(batch, NONCE_TTL_MS, b"x" * 16) == [False, False], (
        "another batch (a replay) never passes"
    )
    assert await redis_store.claim_many(batch, NONCE_TTL_MS) == [False, False]
