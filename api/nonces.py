"""The API's replay-protection store, shared by claim proofs and signed device requests.

Redis on the app's pool when ``REDIS_URL`` is set (every API replica sees every nonce), else
one in-process store per app (the embedded mode runs one API process). Keys are namespaced by
what they protect (``claim/...``, ``http/...``), so one nonce cannot be spent in two places.
"""

from __future__ import annotations

import secrets
from http import HTTPStatus
from typing import Annotated, Final

import redis.asyncio as aioredis
from fastapi import Depends, Request

from api.errors import ApiError
from hub.errors import NonceStoreUnavailable
from hub.nonces import MemoryNonceStore, NonceStore, RedisNonceStore

MEMORY_NONCE_CAPACITY: Final = 100_000


class NonceStoreDown(ApiError):
    """The nonce store cannot answer; whatever needs replay protection fails closed."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "nonce_store_unavailable"


def api_nonce_store(request: Request) -> NonceStore:
    """The app's nonce store, made on first use and kept on ``app.state``.

    A Redis store is remade when the lifespan opened a new pool (the pool stays the lifespan's
    to close).
    """
    state = request.app.state
    pool: aioredis.ConnectionPool | None = getattr(state, "redis_pool", None)
    store: NonceStore | None = getattr(state, "api_nonces", None)
    if store is None or getattr(state, "api_nonces_pool", None) is not pool:
        if pool is None:
            store = MemoryNonceStore(capacity=MEMORY_NONCE_CAPACITY)
        else:
            settings = state.settings
            store = RedisNonceStore(
                aioredis.Redis(connection_pool=pool), key_prefix=settings.redis_key_prefix
            )
        state.api_nonces = store
        state.api_nonces_pool = pool
    return store


NonceStoreDep = Annotated[NonceStore, Depends(api_nonce_store)]


async def spend_nonce(store: NonceStore, key: bytes, ttl_s: int) -> bool:
    """Claim ``key`` for ``ttl_s`` seconds; False when it was spent before.

    Raises:
        NonceStoreDown: when the store cannot answer (fail closed).
    """
    try:
        (fresh,) = await store.claim_many([key], ttl_s * 1000, secrets.token_bytes(16))
    except NonceStoreUnavailable as error:
        raise NonceStoreDown("replay protection is unavailable; try again shortly") from error
    return fresh
