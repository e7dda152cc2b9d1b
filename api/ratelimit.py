"""Rate limits through the ``limits`` library: Redis when ``REDIS_URL`` is set, else memory.

Routes opt in with a dependency::

    @router.post("/auth/login")
    async def login(
        body: LoginBody,
        account_limit: Annotated[AccountLimit, Depends(rate_limited("login", per_account=True))],
    ) -> Tokens:
        await account_limit(body.email)  # the account key is known only once the body is read
        ...

Every limited request counts against its client IP (``request.client.host``; the last
``X-Forwarded-For`` hop only with ``TEDDY_TRUST_PROXY_HEADERS``), per scope, with the moving
window of ``TEDDY_RATE_LIMIT``. ``per_account`` adds a second bucket per account key (hashed:
no e-mail address is stored in Redis), so one account cannot be guessed at from many IPs.

Fail closed: when the store cannot answer (Redis down), limited routes answer 503 problem
details. These routes (login, register, refresh, claim, pairing codes) are exactly the ones an
attacker would hammer while the limiter is out; refusing them for the outage costs parents a
retry, while failing open would hand out unlimited password and pairing-code guesses.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import limits
import redis.asyncio as aioredis
from fastapi import Request
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from api.errors import RateLimited, RateLimitUnavailable
from hub.errors import ConfigError
from hub.settings import Settings

KEY_NAMESPACE = "ratelimit"
# A Redis that does not answer must not hold a login request for long.
REDIS_TIMEOUT_S = 1.0


def parse_limit(text: str, variable: str = "TEDDY_RATE_LIMIT") -> limits.RateLimitItem:
    """The one limit ``text`` names in the ``limits`` notation ("60/minute").

    Raises:
        ConfigError: when ``text`` is not a rate limit (naming ``variable``).
    """
    try:
        return limits.parse(text)
    except ValueError as error:
        raise ConfigError(f"{variable} is not a rate limit: {text!r}") from error


class RateLimiter:
    """Counts hits per (scope, kind, key) in ``limits`` storage with a moving window."""

    def __init__(self, storage: Storage, limit: limits.RateLimitItem) -> None:
        self.storage = storage
        self.limit = limit
        self._strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(
        cls, settings: Settings, pool: aioredis.ConnectionPool | None = None
    ) -> RateLimiter:
        """Redis storage on ``pool`` (``REDIS_URL``'s) when given, else in-process memory.

        The pool stays the caller's to close; memory storage is per process, which is right
        for the embedded mode's one API process only.
        """
        limit = parse_limit(settings.rate_limit)
        if pool is None or settings.redis_url is None:
            return cls(MemoryStorage(), limit)
        storage = RedisStorage(
            "async+" + settings.redis_url,
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}{KEY_NAMESPACE}",
            # limits types its options as scalars; a pool is what redis-py accepts here.
            connection_pool=cast(Any, pool),
        )
        return cls(storage, limit)

    async def hit(
        self, scope: str, kind: str, key: str, limit: limits.RateLimitItem | None = None
    ) -> None:
        """Count one request against ``limit`` (the general limit by default).

        Raises:
            RateLimited: past the limit, with the seconds until a slot frees.
            RateLimitUnavailable: the store did not answer (fail closed).
        """
        item = limit or self.limit
        try:
            if await self._strategy.hit(item, scope, kind, key):
                return
            stats = await self._strategy.get_window_stats(item, scope, kind, key)
        except (StorageError, RedisError, OSError) as error:
            raise RateLimitUnavailable from error
        raise RateLimited(math.ceil(stats.reset_time - time.time()))


def client_ip(request: Request, *, trust_proxy_headers: bool) -> str:
    """The address a request counts against.

    Behind a trusted proxy, the last ``X-Forwarded-For`` entry is the one that proxy appended;
    earlier entries are whatever the client sent and must not choose its bucket.
    """
    if trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.client.host if request.client else "unknown"


def address_block(ip: str) -> str:
    """The block one client controls: the IPv4 address itself, the /64 of an IPv6 address.

    An IPv6 client usually holds a whole /64; keying limits on single addresses would give it
    2^64 buckets.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class AccountLimit:
    """Counts a request against an account key the route supplies once it has read it."""

    def __init__(self, limiter: RateLimiter, scope: str, *, enabled: bool) -> None:
        self._limiter = limiter
        self._scope = scope
        self._enabled = enabled

    async def __call__(self, account_key: str) -> None:
        """Count this request against ``account_key`` (an e-mail, an account id).

        Raises:
            RateLimited, RateLimitUnavailable: as :meth:`RateLimiter.hit`.
            RuntimeError: the dependency was declared without ``per_account``.
        """
        if not self._enabled:
            raise RuntimeError(f"rate limit scope {self._scope!r} is not per account")
        normalised = account_key.strip().casefold().encode("utf-8")
        await self._limiter.hit(self._scope, "account", hashlib.sha256(normalised).hexdigest())


def rate_limited(
    scope: str, per_account: bool = False
) -> Callable[[Request], Awaitable[AccountLimit]]:
    """A dependency limiting a route per client IP, and per account when ``per_account``."""

    async def dependency(request: Request) -> AccountLimit:
        limiter: RateLimiter = request.app.state.rate_limiter
        settings: Settings = request.app.state.settings
        ip = client_ip(request, trust_proxy_headers=settings.trust_proxy_headers)
        await limiter.hit(scope, "ip", ip)
        return AccountLimit(limiter, scope, enabled=per_account)

    return dependency
