"""The in-memory nonce store: claim semantics, expiry, and failing closed when full."""

from __future__ import annotations

import pytest

from hub.errors import NonceStoreUnavailable
from hub.nonces import MemoryNonceStore, nonce_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


async def test_a_nonce_is_new_once() -> None:
    store = MemoryNonceStore()
    assert await store.claim_many([b"a", b"b"], 1_000) == [True, True]
    assert await store.claim_many([b"a", b"c"], 1_000) == [False, True]


async def test_a_repeat_inside_one_batch_is_new_only_first() -> None:
    store = MemoryNonceStore()
    assert await store.claim_many([b"a", b"a", b"b", b"a"], 1_000) == [True, False, True, False]


async def test_nonces_expire_after_their_ttl() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(clock_ms=clock)
    await store.claim_many([b"a"], 1_000)
    clock.now += 999
    assert await store.claim_many([b"a"], 1_000) == [False]
    clock.now += 1
    assert await store.claim_many([b"a"], 1_000) == [True]


async def test_memory_is_bounded_and_fails_closed() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(capacity=2, clock_ms=clock)
    await store.claim_many([b"a", b"b"], 1_000)
    with pytest.raises(NonceStoreUnavailable):
        await store.claim_many([b"c"], 1_000)
    assert await store.claim_many([b"a"], 1_000) == [False], "live nonces are never forgotten"
    clock.now += 1_000
    assert await store.claim_many([b"c"], 1_000) == [True]
    assert len(store) == 1


def test_keys_are_scoped_to_the_device() -> None:
    nonce = b"\x00" * 16
    assert nonce_key("toy-0001", nonce) != nonce_key("toy-0002", nonce)


async def test_a_batch_that_does_not_fit_is_refused_whole() -> None:
    store = MemoryNonceStore(capacity=3)
    await store.claim_many([b"a"], 1_000)
    with pytest.raises(NonceStoreUnavailable):
        await store.claim_many([b"b", b"c", b"d"], 1_000)
    assert await store.claim_many([b"b", b"c"], 1_000) == [True, True], "nothing was half-kept"
    with pytest.raises(NonceStoreUnavailable):
        await store.check()
