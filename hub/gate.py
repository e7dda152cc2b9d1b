"""The one gate in front of every handler (docs/protocol.md, "Verification order").

``screen`` runs the cheap, stateless checks and the revocation look-up on each message;
``admit`` then claims the surviving nonces in one store call. A frame that fails anything is
counted by reason, logged (throttled per reason, so a flood cannot flood the logs too) and
never reaches a handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from hub.errors import ProtocolError, RejectReason
from hub.metrics import HubMetrics
from hub.nonces.base import NonceStore, nonce_key
from hub.protocol.frames import Frame
from hub.protocol.keys import DeviceKeyring
from hub.protocol.topics import DEVICE_ID_PATTERN
from hub.protocol.verify import CLOCK_WINDOW_MS, NONCE_TTL_MS, check_clock, verify_frame
from hub.revocation import RevocationList

log = structlog.get_logger("hub.gate")


def wall_clock_ms() -> int:
    """Unix time in milliseconds, the clock frames are stamped with."""
    return time.time_ns() // 1_000_000


class RejectionLog:
    """One log line per rejection, at most ``per_second`` a reason; the rest are summed up.

    Metrics count every rejection; the log says what happened without letting a flood of
    forged frames turn into a flood of log lines.
    """

    def __init__(self, per_second: int = 20) -> None:
        self._per_second = per_second
        self._window: dict[RejectReason, tuple[int, int, int]] = {}

    def record(self, reason: RejectReason, device_id: str | None, detail: str) -> None:
        """Log this rejection unless its reason is over budget for the current second."""
        second = time.monotonic_ns() // 1_000_000_000
        window_second, logged, suppressed = self._window.get(reason, (second, 0, 0))
        if window_second != second:
            window_second, logged = second, 0
        if logged < self._per_second:
            log.warning(
                "frame_rejected",
                reason=reason.value,
                device_id=device_id,
                detail=detail,
                suppressed_before=suppressed,
            )
            self._window[reason] = (window_second, logged + 1, 0)
        else:
            self._window[reason] = (window_second, logged, suppressed + 1)


class Gate:
    """Verifies uplink frames and claims their nonces."""

    def __init__(
        self,
        keyring: DeviceKeyring,
        revocations: RevocationList,
        nonces: NonceStore,
        metrics: HubMetrics,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        window_ms: int = CLOCK_WINDOW_MS,
    ) -> None:
        self._keyring = keyring
        self._revocations = revocations
        self._nonces = nonces
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._window_ms = window_ms
        self._rejections = RejectionLog()

    def now_ms(self) -> int:
        """The gate's clock (injectable so tests can move time)."""
        return self._clock_ms()

    def screen(self, topic: str, payload: bytes, now_ms: int) -> Frame | None:
        """Every check before the nonce: parse, topic, size, signature, clock, revocation."""
        self._metrics.received.inc()
        try:
            frame = verify_frame(
                topic, payload, self._keyring.key_for, now_ms, window_ms=self._window_ms
            )
        except ProtocolError as error:
            self.reject(error.reason, _device_id_of(topic), error.detail)
            return None
        if self._revocations.is_revoked(frame.device_id):
            self.reject(RejectReason.REVOKED, frame.device_id, "device is revoked")
            return None
        return frame

    def recheck_clock(self, frames: Sequence[Frame], now_ms: int) -> list[bool]:
        """Which frames are still inside the clock window after waiting (nonce store outage)."""
        fresh: list[bool] = []
        for frame in frames:
            try:
                check_clock(frame.timestamp_ms, now_ms, self._window_ms)
            except ProtocolError as error:
                self.reject(error.reason, frame.device_id, error.detail)
                fresh.append(False)
            else:
                fresh.append(True)
        return fresh

    async def admit(self, frames: Sequence[Frame], claim_id: bytes = b"") -> list[bool]:
        """Claim the frames' nonces in one call; ``True`` where a frame is seen the first time.

        Raises:
            NonceStoreUnavailable: nothing is admitted; the caller holds the frames and retries.
        """
        if not frames:
            return []
        claimed = await self._nonces.claim_many(
            [nonce_key(frame.device_id, frame.nonce) for frame in frames], NONCE_TTL_MS, claim_id
        )
        for frame, is_new in zip(frames, claimed, strict=True):
            if not is_new:
                self.reject(RejectReason.REPLAY, frame.device_id, "nonce already claimed")
        return claimed

    async def check_store(self) -> None:
        """Raise ``NonceStoreUnavailable`` unless the nonce store answers."""
        await self._nonces.check()

    def reject(self, reason: RejectReason, device_id: str | None, detail: str) -> None:
        """Count and log one rejection."""
        self._metrics.rejected[reason].inc()
        self._rejections.record(reason, device_id, detail)


def _device_id_of(topic: str) -> str | None:
    """The device id named by a topic, if it is one; used to label rejections."""
    parts = topic.split("/", 3)
    if len(parts) >= 3 and DEVICE_ID_PATTERN.fullmatch(parts[2]):
        return parts[2]
    return None
