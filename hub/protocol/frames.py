"""The binary frame (docs/protocol.md, "Frame layout").

All integers are big-endian; the layout is::

    u8  version (1)          u8  flags (bit 0: direction, bits 1-7 zero)
    u8  kind                 u8  id_len (3..32)
    id_len bytes device id   u64 timestamp, Unix ms
    16 bytes nonce           u32 sequence number
    u32 payload length       payload
    32 bytes tag = HMAC-SHA256(device_key, u16 len(topic) || topic || every byte before the tag)

The topic is inside the MAC so a frame cannot be moved to another device's or kind's topic,
and the payload is raw bytes so audio travels without base64.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from dataclasses import dataclass

from hub.errors import ProtocolError, RejectReason
from hub.protocol.kinds import KIND_BY_CODE, Direction, Kind
from hub.protocol.topics import (
    DEVICE_ID_MAX_LENGTH,
    DEVICE_ID_MIN_LENGTH,
    DEVICE_ID_PATTERN,
    validate_device_id,
)

PROTOCOL_VERSION = 1
NONCE_SIZE = 16
TAG_SIZE = 32
MAX_PAYLOAD_SIZE = 16 * 1024
MAX_TOPIC_SIZE = 255
HEADER_FIXED_SIZE = 4  # version, flags, kind, id_len
_TAIL_HEADER = struct.Struct(">Q16sII")  # timestamp, nonce, seq, payload_len
_TOPIC_LENGTH = struct.Struct(">H")
MIN_FRAME_SIZE = HEADER_FIXED_SIZE + DEVICE_ID_MIN_LENGTH + _TAIL_HEADER.size + TAG_SIZE
MAX_FRAME_SIZE = (
    HEADER_FIXED_SIZE + DEVICE_ID_MAX_LENGTH + _TAIL_HEADER.size + MAX_PAYLOAD_SIZE + TAG_SIZE
)
_FLAG_DIRECTION = 0x01
_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_DIRECTIONS = (Direction.UP, Direction.DOWN)


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed frame; ``signed`` is every byte the tag covers after the topic."""

    direction: Direction
    kind: Kind
    device_id: str
    timestamp_ms: int
    nonce: bytes
    seq: int
    payload: bytes
    signed: bytes
    tag: bytes


@functools.lru_cache(maxsize=65_536)
def mac_input_prefix(topic: str) -> bytes:
    """The topic part of the MAC input: its length as u16 and its UTF-8 bytes."""
    encoded = topic.encode("utf-8")
    if len(encoded) > MAX_TOPIC_SIZE:
        raise ProtocolError(RejectReason.MALFORMED, "topic longer than 255 bytes")
    return _TOPIC_LENGTH.pack(len(encoded)) + encoded


def compute_tag(key: bytes, topic: str, signed: bytes) -> bytes:
    """HMAC-SHA256 over the topic and the frame bytes before the tag."""
    return hmac.digest(key, mac_input_prefix(topic) + signed, hashlib.sha256)


def encode_frame(
    *,
    key: bytes,
    topic: str,
    kind: Kind,
    device_id: str,
    timestamp_ms: int,
    nonce: bytes,
    seq: int,
    payload: bytes = b"",
) -> bytes:
    """Build and sign one frame for ``topic``.

    The direction comes from the kind. Raises ``ProtocolError`` (malformed or oversized) when
    a field is out of range, so nothing that the receiver would reject is ever sent.
    """
    validate_device_id(device_id)
    if len(nonce) != NONCE_SIZE:
        raise ProtocolError(RejectReason.MALFORMED, f"nonce must be {NONCE_SIZE} bytes")
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise ProtocolError(RejectReason.OVERSIZED, f"payload over {MAX_PAYLOAD_SIZE} bytes")
    if not 0 <= seq <= _U32_MAX or not 0 <= timestamp_ms <= _U64_MAX:
        raise ProtocolError(RejectReason.MALFORMED, "sequence or timestamp out of range")
    device = device_id.encode("ascii")
    signed = b"".join(
        (
            bytes((PROTOCOL_VERSION, kind.direction.value, kind.value, len(device))),
            device,
            _TAIL_HEADER.pack(timestamp_ms, nonce, seq, len(payload)),
            payload,
        )
    )
    return signed + compute_tag(key, topic, signed)


def parse_frame(data: bytes) -> Frame:
    """Split a frame into its fields without checking the tag.

    Raises:
        ProtocolError: (malformed) for anything that is not a well-formed version-1 frame.
            The payload length is not capped here: the size rule is its own step.
    """
    if len(data) < MIN_FRAME_SIZE:
        raise ProtocolError(RejectReason.MALFORMED, "frame shorter than the minimum")
    version, flags, kind_code, id_length = data[0], data[1], data[2], data[3]
    if version != PROTOCOL_VERSION:
        raise ProtocolError(RejectReason.MALFORMED, f"unsupported version {version}")
    if flags & ~_FLAG_DIRECTION:
        raise ProtocolError(RejectReason.MALFORMED, "reserved flag bits set")
    kind = KIND_BY_CODE.get(kind_code)
    if kind is None:
        raise ProtocolError(RejectReason.MALFORMED, f"unknown kind 0x{kind_code:02x}")
    direction = _DIRECTIONS[flags & _FLAG_DIRECTION]
    if kind.direction is not direction:
        raise ProtocolError(RejectReason.MALFORMED, "direction flag contradicts the kind")
    if not DEVICE_ID_MIN_LENGTH <= id_length <= DEVICE_ID_MAX_LENGTH:
        raise ProtocolError(RejectReason.MALFORMED, "device id length out of range")
    tail_start = HEADER_FIXED_SIZE + id_length
    payload_start = tail_start + _TAIL_HEADER.size
    if len(data) < payload_start + TAG_SIZE:
        raise ProtocolError(RejectReason.MALFORMED, "frame truncated in the header")
    try:
        device_id = data[HEADER_FIXED_SIZE:tail_start].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(RejectReason.MALFORMED, "device id is not ASCII") from None
    if DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise ProtocolError(RejectReason.MALFORMED, "device id outside the safe alphabet")
    timestamp_ms, nonce, seq, payload_length = _TAIL_HEADER.unpack_from(data, tail_start)
    tag_start = len(data) - TAG_SIZE
    if payload_start + payload_length != tag_start:
        raise ProtocolError(RejectReason.MALFORMED, "payload length does not match the frame")
    return Frame(
        direction=direction,
        kind=kind,
        device_id=device_id,
        timestamp_ms=timestamp_ms,
        nonce=nonce,
        seq=seq,
        payload=data[payload_start:tag_start],
        signed=data[:tag_start],
        tag=data[tag_start:],
    )
