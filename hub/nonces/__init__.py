"""Replay protection: a frame's nonce may be claimed once within its TTL.

Two stores share one contract (:class:`NonceStore`): Redis for production and scale-out, and a
bounded in-memory store for the embedded mode. Both fail closed: when a store cannot give a
definite answer it raises :class:`hub.errors.NonceStoreUnavailable`, and the hub dispatches
nothing until it can.
"""

from hub.nonces.base import NonceStore, nonce_key
from hub.nonces.memory import MemoryNonceStore
from hub.nonces.redis import RedisNonceStore

__all__ = ["MemoryNonceStore", "NonceStore", "RedisNonceStore", "nonce_key"]
