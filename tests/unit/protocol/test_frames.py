"""Frames: round trips, every field checked, and properties over arbitrary input."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import ProtocolError, RejectReason
from hub.protocol import (
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_SIZE,
    NONCE_SIZE,
    Direction,
    Kind,
    derive_device_key,
    downlink_topic,
    encode_frame,
    parse_frame,
    uplink_topic,
    verify_frame,
)

SECRET = b"unit-test-fleet-secret-0123456789abcdef"
DEVICE = "toy-0001"
KEY = derive_device_key(SECRET, DEVICE)
NOW = 1_790_000_000_000
TOPIC = uplink_topic("teddy", DEVICE, Kind.AUDIO)

# Hypothesis's too_slow health check times the generation of examples by the wall clock: a busy
# machine would fail it for its own slowness (the profile Hypothesis loads under CI=true, too,
# turns it off). The deadline of each example is off for the same reason.
NOT_TIMED = [HealthCheck.too_slow]


def signed(
    payload: bytes = b"hello",
    *,
    kind: Kind = Kind.AUDIO,
    topic: str = TOPIC,
    timestamp_ms: int = NOW,
    nonce: bytes = b"\x01" * NONCE_SIZE,
) -> bytes:
    return encode_frame(
        key=KEY,
        topic=topic,
        kind=kind,
        device_id=DEVICE,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        seq=7,
        payload=payload,
    )


def key_for(_: str) -> bytes:
    return KEY


def test_round_trip_keeps_every_field() -> None:
    frame = verify_frame(TOPIC, signed(b"\x00\xff audio"), key_for, NOW)
    assert (frame.direction, frame.kind, frame.device_id) == (Direction.UP, Kind.AUDIO, DEVICE)
    assert (frame.timestamp_ms, frame.nonce, frame.seq) == (NOW, b"\x01" * NONCE_SIZE, 7)
    assert frame.payload == b"\x00\xff audio"


def test_downlink_verifies_only_as_a_downlink() -> None:
    topic = downlink_topic("teddy", DEVICE, Kind.PONG)
    data = encode_frame(
        key=KEY,
        topic=topic,
        kind=Kind.PONG,
        device_id=DEVICE,
        timestamp_ms=NOW,
        nonce=os.urandom(NONCE_SIZE),
        seq=0,
        payload=b"",
    )
    assert verify_frame(topic, data, key_for, NOW, direction=Direction.DOWN).kind is Kind.PONG
    with pytest.raises(ProtocolError) as caught:
        verify_frame(topic, data, key_for, NOW, direction=Direction.UP)
    assert caught.value.reason is RejectReason.TOPIC_MISMATCH


def test_reflected_uplink_on_the_downlink_topic_is_rejected() -> None:
    reflected = downlink_topic("teddy", DEVICE, Kind.AUDIO)
    with pytest.raises(ProtocolError) as caught:
        verify_frame(reflected, signed(), key_for, NOW, direction=Direction.DOWN)
    assert caught.value.reason is RejectReason.MALFORMED  # "audio" is not a downlink kind


@pytest.mark.parametrize(
    ("timestamp_ms", "reason"),
    [(NOW - 30_001, RejectReason.STALE), (NOW + 30_001, RejectReason.FUTURE)],
)
def test_clock_window(timestamp_ms: int, reason: RejectReason) -> None:
    with pytest.raises(ProtocolError) as caught:
        verify_frame(TOPIC, signed(timestamp_ms=timestamp_ms), key_for, NOW)
    assert caught.value.reason is reason


@pytest.mark.parametrize("timestamp_ms", [NOW - 30_000, NOW + 30_000])
def test_clock_window_edges_are_inside(timestamp_ms: int) -> None:
    verify_frame(TOPIC, signed(timestamp_ms=timestamp_ms), key_for, NOW)


def test_encoder_refuses_what_receivers_reject() -> None:
    with pytest.raises(ProtocolError) as caught:
        signed(b"x" * (MAX_PAYLOAD_SIZE + 1))
    assert caught.value.reason is RejectReason.OVERSIZED
    with pytest.raises(ProtocolError):
        signed(nonce=b"short")
    assert len(signed(b"x" * MAX_PAYLOAD_SIZE)) > MAX_PAYLOAD_SIZE


def test_shortest_frame_parses() -> None:
    device = "abc"
    topic = uplink_topic("teddy", device, Kind.PING)
    data = encode_frame(
        key=KEY,
        topic=topic,
        kind=Kind.PING,
        device_id=device,
        timestamp_ms=NOW,
        nonce=bytes(NONCE_SIZE),
        seq=0,
    )
    assert len(data) == MIN_FRAME_SIZE
    assert parse_frame(data).device_id == device


@settings(max_examples=300, deadline=None, suppress_health_check=NOT_TIMED)
@given(payload=st.binary(max_size=256), data=st.data())
def test_any_single_bit_flip_in_a_frame_fails_verification(
    payload: bytes, data: st.DataObject
) -> None:
    frame = bytearray(signed(payload))
    bit = data.draw(st.integers(min_value=0, max_value=len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        verify_frame(TOPIC, bytes(frame), key_for, NOW)


@settings(max_examples=300, deadline=None, suppress_health_check=NOT_TIMED)
@given(data=st.data())
def test_any_single_bit_flip_in_the_topic_fails_verification(data: st.DataObject) -> None:
    frame = signed()
    topic = bytearray(TOPIC.encode())
    bit = data.draw(st.integers(min_value=0, max_value=len(topic) * 8 - 1))
    topic[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        verify_frame(topic.decode("utf-8", errors="replace"), frame, key_for, NOW)


@settings(max_examples=500, deadline=None, suppress_health_check=NOT_TIMED)
@given(topic=st.text(max_size=80), data=st.binary(max_size=400))
def test_arbitrary_input_raises_only_protocol_errors(topic: str, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        verify_frame(topic, data, key_for, NOW)


@settings(max_examples=300, deadline=None, suppress_health_check=NOT_TIMED)
@given(prefix=st.binary(min_size=4, max_size=4), rest=st.binary(max_size=200))
def test_arbitrary_headers_raise_only_protocol_errors(prefix: bytes, rest: bytes) -> None:
    # Start from a valid version byte so the fuzzing reaches past the first check.
    with contextlib.suppress(ProtocolError):
        parse_frame(b"\x01" + prefix[1:] + rest)
