"""In-memory nonce store for the embedded mode: one process, bounded memory."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from hub.errors import NonceStoreUnavailable


class MemoryNonceStore:
    """Remembers claimed nonces until they expire, up to ``capacity`` at once.

    Every claim in one store uses the same TTL in practice, so insertion order is expiry order
    and a deque swept from the left expires entries in O(1) each. When the store is full of
    unexpired nonces it refuses the claim (fail closed) rather than forget a live nonce, which
    would reopen a replay window.
    """

    def __init__(
        self, capacity: int = 1_000_000, clock_ms: Callable[[], int] | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._clock_ms = clock_ms or (lambda: time.monotonic_ns() // 1_000_000)
        self._expiry: dict[bytes, int] = {}
        self._order: deque[tuple[int, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._expiry)

    async def claim_many(
        self, keys: Sequence[bytes], ttl_ms: int, claim_id: bytes = b""
    ) -> list[bool]:
        """Claim each key, all or nothing; see :class:`hub.nonces.NonceStore`.

        Nothing is lost between call and answer in memory, so ``claim_id`` is not needed; the
        batch is refused whole when it would not fit, so a retry sees no half-claimed batch.
        """
        now = self._clock_ms()
        self._sweep(now)
        expiry_of = self._expiry
        fresh = {key for key in keys if (expiry_of.get(key) or 0) <= now}
        if len(expiry_of) + len(fresh) > self._capacity:
            raise NonceStoreUnavailable(
                f"in-memory nonce store full ({self._capacity} live nonces)"
            )
        expiry = now + ttl_ms
        results: list[bool] = []
        for key in keys:
            if key in fresh:
                fresh.discard(key)
                expiry_of[key] = expiry
                self._order.append((expiry, key))
                results.append(True)
            else:
                results.append(False)
        return results

    async def check(self) -> None:
        """Raise ``NonceStoreUnavailable`` while the store is full of live nonces."""
        self._sweep(self._clock_ms())
        if len(self._expiry) >= self._capacity:
            raise NonceStoreUnavailable(
                f"in-memory nonce store full ({self._capacity} live nonces)"
            )

    async def close(self) -> None:
        """Forget every nonce."""
        self._expiry.clear()
        self._order.clear()

    def _sweep(self, now: int) -> None:
        order, expiry_of = self._order, self._expiry
        while order and order[0][0] <= now:
            expiry, key = order.popleft()
            if expiry_of.get(key) == expiry:
                del expiry_of[key]
