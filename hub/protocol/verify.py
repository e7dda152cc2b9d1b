"""The stateless checks every frame passes, in the order docs/protocol.md fixes.

Order: parse, topic match, size, signature (constant time), clock window. The stateful checks
(revocation, then the nonce claim) follow in the hub's gate, so a forged frame never reaches
the nonce store. The toy runs the same function on downlinks with ``direction=Direction.DOWN``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from hub.errors import ProtocolError, RejectReason
from hub.protocol.frames import MAX_PAYLOAD_SIZE, Frame, compute_tag, parse_frame
from hub.protocol.kinds import Direction
from hub.protocol.topics import parse_topic

CLOCK_WINDOW_MS = 30_000
# A nonce must be remembered for as long as its frame could pass the clock check again. A frame
# claimed at `now` may carry a timestamp up to `now + window`, and passes until its timestamp is
# `window` old, so replays stay possible until `now + 2 * window`; the TTL doubles that margin.
NONCE_TTL_MS = 4 * CLOCK_WINDOW_MS


def check_clock(timestamp_ms: int, now_ms: int, window_ms: int = CLOCK_WINDOW_MS) -> None:
    """Reject a timestamp outside ``now ± window``.

    Raises:
        ProtocolError: ``stale`` (too old) or ``future`` (too far ahead).
    """
    if timestamp_ms < now_ms - window_ms:
        raise ProtocolError(RejectReason.STALE, f"timestamp {now_ms - timestamp_ms} ms old")
    if timestamp_ms > now_ms + window_ms:
        raise ProtocolError(RejectReason.FUTURE, f"timestamp {timestamp_ms - now_ms} ms ahead")


def verify_frame(
    topic: str,
    data: bytes,
    key_for: Callable[[str], bytes],
    now_ms: int,
    *,
    direction: Direction = Direction.UP,
    window_ms: int = CLOCK_WINDOW_MS,
) -> Frame:
    """Parse ``data`` received on ``topic`` and run every stateless check.

    ``key_for`` maps a device id to its key; it is only called once the frame has parsed and
    matched its topic, so garbage never costs a key derivation.

    Raises:
        ProtocolError: with the reason of the first check that failed.
    """
    frame = parse_frame(data)
    parts = parse_topic(topic)
    if (
        parts.device_id != frame.device_id
        or parts.kind is not frame.kind
        or parts.direction is not direction
    ):
        raise ProtocolError(RejectReason.TOPIC_MISMATCH, "topic does not match the frame")
    if len(frame.payload) > MAX_PAYLOAD_SIZE:
        raise ProtocolError(RejectReason.OVERSIZED, f"payload over {MAX_PAYLOAD_SIZE} bytes")
    expected = compute_tag(key_for(frame.device_id), topic, frame.signed)
    if not hmac.compare_digest(expected, frame.tag):
        raise ProtocolError(RejectReason.BAD_SIGNATURE, "tag does not verify")
    check_clock(frame.timestamp_ms, now_ms, window_ms)
    return frame
