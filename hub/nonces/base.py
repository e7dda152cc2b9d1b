"""The nonce store contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


def nonce_key(device_id: str, nonce: bytes) -> bytes:
    """The store key of one frame: nonces are scoped to the device that signed them."""
    return device_id.encode("ascii") + b"/" + nonce


class NonceStore(Protocol):
    """Claims nonces in batches: one call, one answer per key, in order."""

    async def claim_many(self, keys: Sequence[bytes], ttl_ms: int) -> list[bool]:
        """Claim every key for ``ttl_ms``; ``True`` where the key was new.

        A key repeated inside one batch is new only at its first position.

        Raises:
            NonceStoreUnavailable: when the store cannot answer; nothing was claimed for sure.
        """
        ...

    async def check(self) -> None:
        """Raise ``NonceStoreUnavailable`` unless the store answers now (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
