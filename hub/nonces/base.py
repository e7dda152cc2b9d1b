"""The nonce store contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

CLAIM_ID_SIZE = 16


def nonce_key(device_id: str, nonce: bytes) -> bytes:
    """The store key of one frame: nonces are scoped to the device that signed them."""
    return device_id.encode("ascii") + b"/" + nonce


class NonceStore(Protocol):
    """Claims nonces in batches: one call, one answer per key, in order."""

    async def claim_many(
        self, keys: Sequence[bytes], ttl_ms: int, claim_id: bytes = b""
    ) -> list[bool]:
        """Claim every key for ``ttl_ms``; ``True`` where the key was new.

        A key repeated inside one batch is new only at its first position. ``claim_id``
        (``CLAIM_ID_SIZE`` random bytes, the same for every retry of one batch) makes retries
        safe: a key already held under the same claim id counts as new, so a claim whose answer
        was lost is not mistaken for a replay when it is retried.

        Raises:
            NonceStoreUnavailable: when the store cannot answer; a retry with the same claim id
                gives the answer the lost call would have given.
        """
        ...

    async def check(self) -> None:
        """Raise ``NonceStoreUnavailable`` unless the store answers now (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
