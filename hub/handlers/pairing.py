"""``pair_request`` -> ``pair_code``: a toy asks for a code that it speaks to its parent.

The parent types the code into the app (``POST /api/v1/pair/code``), which binds the toy to
one of their children. The downlink's payload is JSON, ``{"code": "042917",
"expires_in_s": 600}`` (docs/protocol.md, "Pairing codes").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.dispatch import Dispatcher, Inbound
from hub.downlink import DownlinkPublisher
from hub.metrics import HubMetrics
from hub.pairing import PairingCodeCooldown, issue_code
from hub.protocol.kinds import Kind

log = structlog.get_logger("hub.pairing")


class PairRequestHandler:
    """Issues a pairing code for every verified ``pair_request`` and sends it to the toy."""

    def __init__(
        self,
        downlinks: DownlinkPublisher,
        *,
        sessions: async_sessionmaker[AsyncSession],
        code_key: bytes,
        ttl_s: int,
        metrics: HubMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._downlinks = downlinks
        self._sessions = sessions
        self._key = code_key
        self._ttl_s = ttl_s
        self._metrics = metrics
        self._clock = clock

    def register(self, dispatcher: Dispatcher) -> None:
        """Take every ``pair_request`` frame."""
        dispatcher.register(Kind.PAIR_REQUEST, self)

    async def __call__(self, inbound: Inbound) -> None:
        """Issue the code and send it; a request inside the cooldown is dropped."""
        device_id = inbound.device_id
        try:
            code = await issue_code(
                self._sessions, self._key, device_id, now=self._clock(), ttl_s=self._ttl_s
            )
        except PairingCodeCooldown:
            self._metrics.pair_codes.labels(outcome="cooldown").inc()
            log.info("pair_request_ignored", device_id=device_id, reason="cooldown")
            return
        payload = json.dumps({"code": code, "expires_in_s": self._ttl_s}).encode("utf-8")
        await self._downlinks.send(device_id, Kind.PAIR_CODE, payload)
        self._metrics.pair_codes.labels(outcome="issued").inc()
        # The code itself is a short-lived secret: never logged.
        log.info("pair_code_issued", device_id=device_id, expires_in_s=self._ttl_s)
