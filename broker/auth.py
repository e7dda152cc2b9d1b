"""Broker logins: device connect tokens, service accounts, anonymous (docs/protocol.md,
"Connect tokens").

The checker holds the connect root only: it derives each toy's connect key, never a frame
key. Accepted token nonces are remembered for the token's whole validity, so a captured token
logs in at most once on this broker. Revoked devices are refused from a list kept current in
the background.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter

from broker.acl import Principal, Role
from hub.errors import (
    ConnectRefused,
    ConnectRejectReason,
    NonceStoreUnavailable,
    ProtocolError,
)
from hub.nonces.memory import MemoryNonceStore
from hub.protocol.keys import derive_connect_key
from hub.protocol.tokens import (
    SERVICE_PREFIX,
    TOKEN_REPLAY_TTL_S,
    verify_connect_token,
    verify_service_login,
)

log = structlog.get_logger("broker.auth")
_KEY_CACHE_LIMIT = 65_536
# Tokens one device may have accepted within the replay window (docs/protocol.md).
MAX_LOGINS_PER_DEVICE = 32
_SERVICE_CLIENT_ID = re.compile(r"svc:[a-z0-9:_-]{1,60}")


@dataclass(frozen=True)
class LoginPolicy:
    """What the broker accepts."""

    connect_root: bytes
    allow_anonymous: bool = False


class LoginChecker:
    """Decides one login at a time; counts refusals by reason."""

    def __init__(
        self,
        policy: LoginPolicy,
        is_revoked: Callable[[str], Awaitable[bool]],
        *,
        registry: CollectorRegistry | None = None,
        clock_s: Callable[[], int] = lambda: int(time.time()),
        replay_capacity: int = 1_000_000,
    ) -> None:
        self._policy = policy
        self._is_revoked = is_revoked
        self._clock_s = clock_s
        self._seen = MemoryNonceStore(replay_capacity)
        self._keys: dict[str, bytes] = {}
        self._logins: dict[str, deque[float]] = {}
        self._last_sweep = time.monotonic()
        self.registry = registry or CollectorRegistry()
        refused = Counter(
            "teddy_broker_logins_refused",
            "Broker logins refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._refused = {reason: refused.labels(reason.value) for reason in ConnectRejectReason}
        self._accepted = Counter(
            "teddy_broker_logins_accepted",
            "Broker logins accepted.",
            ["role"],
            registry=self.registry,
        )

    async def check(self, client_id: str, username: str | None, password: str | None) -> Principal:
        """The principal of an acceptable login.

        Raises:
            ConnectRefused: with the reason; counted and logged once.
        """
        try:
            principal = await self._check(client_id, username, password)
        except ConnectRefused as refused:
            self._refused[refused.reason].inc()
            log.warning(
                "login_refused",
                reason=refused.reason.value,
                detail=refused.detail,
                username=_loggable(username),
                client_id=_loggable(client_id),
            )
            raise
        self._accepted.labels(principal.role.value).inc()
        return principal

    async def _check(self, client_id: str, username: str | None, password: str | None) -> Principal:
        if username is None:
            if self._policy.allow_anonymous:
                return Principal(Role.ANONYMOUS, client_id)
            raise ConnectRefused(ConnectRejectReason.ANONYMOUS, "anonymous logins are off")
        if username.startswith(SERVICE_PREFIX):
            name = verify_service_login(self._policy.connect_root, username, password or "")
            if _SERVICE_CLIENT_ID.fullmatch(client_id) is None or (
                client_id != username and not client_id.startswith(username + "-")
            ):
                raise ConnectRefused(
                    ConnectRejectReason.ID_MISMATCH,
                    "a service's client id must be its username, or it and '-<suffix>'",
                )
            return Principal(Role(name), name)
        token = verify_connect_token(
            self._key_for(username, client_id), username, client_id, password or "", self._clock_s()
        )
        if await self._is_revoked(username):
            raise ConnectRefused(ConnectRejectReason.REVOKED, "device is revoked")
        recent = self._recent_logins(username)
        if len(recent) >= MAX_LOGINS_PER_DEVICE:
            # One toy (or its stolen key) may only fill its own share of the replay cache.
            raise ConnectRefused(ConnectRejectReason.REPLAY, "too many logins")
        try:
            (fresh,) = await self._seen.claim_many(
                [f"{username}/{token.nonce_hex}".encode()], TOKEN_REPLAY_TTL_S * 1000
            )
        except NonceStoreUnavailable:
            raise ConnectRefused(ConnectRejectReason.REPLAY, "replay cache full") from None
        if not fresh:
            raise ConnectRefused(ConnectRejectReason.REPLAY, "token already used")
        recent.append(time.monotonic())
        return Principal(Role.DEVICE, username)

    def _recent_logins(self, device_id: str) -> deque[float]:
        """The device's accepted logins within the replay window (older ones forgotten)."""
        now = time.monotonic()
        horizon = now - TOKEN_REPLAY_TTL_S
        if now - self._last_sweep >= 60:  # forget quiet devices now and then, not per login
            self._last_sweep = now
            for quiet in [
                d for d, times in self._logins.items() if not times or times[-1] < horizon
            ]:
                del self._logins[quiet]
        recent = self._logins.setdefault(device_id, deque())
        while recent and recent[0] < horizon:
            recent.popleft()
        return recent

    def _key_for(self, username: str, client_id: str) -> bytes:
        if client_id != username:
            raise ConnectRefused(ConnectRejectReason.ID_MISMATCH, "client id must equal username")
        key = self._keys.get(username)
        if key is None:
            try:
                key = derive_connect_key(self._policy.connect_root, username)
            except ProtocolError:
                raise ConnectRefused(
                    ConnectRejectReason.MALFORMED, "username is not a device id"
                ) from None
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            self._keys[username] = key
        return key


def _loggable(value: str | None) -> str | None:
    """Usernames and client ids are attacker-chosen: bound them before they reach a log."""
    return None if value is None else value[:64].encode("unicode_escape").decode("ascii")
