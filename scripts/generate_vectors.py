#!/usr/bin/env python3
"""Write ``docs/vectors/protocol-vectors.json``, the test vectors of ``docs/protocol.md``.

This is a second, independent implementation of the wire protocol: standard library only
(HKDF from RFC 5869 on top of ``hmac``, frames packed with ``struct``) and no import from
``hub``, so the tests that hold ``hub.protocol`` (and the C core) to these vectors are not
circular. A small reference verifier below checks every vector against the verification order
before anything is written, so a vector cannot claim a reason it would not fail for.

Every input is fixed (fleet secrets, device ids, clocks, nonces, sequence numbers, payloads):
running the script twice writes the same bytes.

    python scripts/generate_vectors.py           # (re)write the vector file
    python scripts/generate_vectors.py --check   # exit 1 if the file differs from the output
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "vectors" / "protocol-vectors.json"
VECTORS_VERSION = 1

# docs/protocol.md, "Frame layout", "Keys", "Clock".
PROTOCOL_VERSION = 1
TOPIC_VERSION = "v1"
NONCE_SIZE = 16
TAG_SIZE = 32
KEY_SIZE = 32
MAX_PAYLOAD = 16 * 1024
MAX_TOPIC_SIZE = 255
ID_MIN = 3
ID_MAX = 32
CLOCK_WINDOW_MS = 30_000
NONCE_TTL_MS = 120_000
KEY_SALT = b"teddy/v1"
FRAME_KEY_INFO_PREFIX = b"teddy/v1/frame-key/"
HEADER = struct.Struct(">BBBB")  # version, flags, kind, id_len
TAIL = struct.Struct(">Q16sII")  # timestamp_ms, nonce, seq, payload_len
TOPIC_LENGTH = struct.Struct(">H")
MIN_FRAME_SIZE = HEADER.size + ID_MIN + TAIL.size + TAG_SIZE
MAX_FRAME_SIZE = HEADER.size + ID_MAX + TAIL.size + MAX_PAYLOAD + TAG_SIZE
FLAG_DIRECTION = 0x01
ID_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
ID_REST = ID_FIRST | {"-", "_"}

# docs/protocol.md, "Kinds": codes below 0x80 travel up, codes from 0x80 travel down.
KIND_CODES: dict[str, int] = {
    "ping": 0x01,
    "hello": 0x02,
    "pair_request": 0x03,
    "listen_start": 0x10,
    "audio": 0x11,
    "listen_end": 0x12,
    "text": 0x13,
    "abort": 0x14,
    "pong": 0x81,
    "config": 0x82,
    "pair_code": 0x83,
    "unpaired": 0x84,
    "reply_text": 0x90,
    "reply_audio": 0x91,
    "reply_end": 0x92,
    "error": 0x9F,
}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}

# Fixed inputs. The secrets are test material only and never valid in production.
FLEET_A = "teddy-vectors-fleet-secret-A-0123456789abcdef"
FLEET_B = "fleet B secret, UTF-8: ünïcødé 🧸 0123456789"
TOY_1 = "toy-0001"
TOY_2 = "toy-0002"
TOY_MIN = "abc"
TOY_MAX = "0123456789abcdefghijklmnopqrstuv"
TOY_ESP = "esp32-a1b2c3d4e5f6"
TOY_UNDERSCORE = "a_b-c"
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BINARY = b"\x00\xff\x00\xff" + bytes(range(256)) + bytes(range(255, -1, -1)) + b"\xff\x00"
TEXT = "Hallo Teddy! Wie geht's? 🧸".encode()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256, RFC 5869: extract, then expand."""
    if length > 255 * hashlib.sha256().digest_size:
        raise ValueError("HKDF output too long")
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def check_hkdf() -> None:
    """RFC 5869, appendix A.1 (test case 1)."""
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    expected = bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    if okm != expected:
        raise AssertionError("HKDF does not reproduce RFC 5869 test case 1")


def device_key(fleet_secret: str, device_id: str) -> bytes:
    """A device's frame-signing key (docs/protocol.md, "Keys")."""
    info = FRAME_KEY_INFO_PREFIX + device_id.encode("ascii")
    return hkdf_sha256(fleet_secret.encode("utf-8"), KEY_SALT, info, KEY_SIZE)


def tag_of(key: bytes, topic: str, body: bytes) -> bytes:
    """HMAC-SHA256 over u16 topic length, topic, and every frame byte before the tag."""
    encoded = topic.encode("utf-8")
    return hmac.new(key, TOPIC_LENGTH.pack(len(encoded)) + encoded + body, hashlib.sha256).digest()


def nonce_for(label: str) -> bytes:
    """A fixed nonce per label, so every vector carries a distinct one."""
    return hashlib.sha256(b"teddy-vectors/nonce/" + label.encode()).digest()[:NONCE_SIZE]


def pattern(length: int, label: str) -> bytes:
    """``length`` fixed pseudo-random bytes (a SHA-256 counter stream)."""
    blocks = (length + 31) // 32
    seed = b"teddy-vectors/payload/" + label.encode()
    stream = b"".join(hashlib.sha256(seed + n.to_bytes(4, "big")).digest() for n in range(blocks))
    return stream[:length]


@dataclass(frozen=True)
class Msg:
    """The fields of one frame, and how to lay them out (overrides make broken frames)."""

    kind: str
    device_id: str
    timestamp_ms: int
    nonce: bytes
    seq: int
    payload: bytes = b""
    root: str = "teddy"

    @property
    def code(self) -> int:
        return KIND_CODES[self.kind]

    @property
    def direction(self) -> str:
        return "down" if self.code & 0x80 else "up"

    @property
    def topic(self) -> str:
        return f"{self.root}/{TOPIC_VERSION}/{self.device_id}/{self.direction}/{self.kind}"

    def body(
        self,
        *,
        version: int = PROTOCOL_VERSION,
        flags: int | None = None,
        kind_code: int | None = None,
        device: bytes | None = None,
        id_len: int | None = None,
        payload_len: int | None = None,
    ) -> bytes:
        """Every byte before the tag."""
        code = self.code if kind_code is None else kind_code
        device = self.device_id.encode("ascii") if device is None else device
        head = HEADER.pack(
            version,
            (FLAG_DIRECTION if code & 0x80 else 0) if flags is None else flags,
            code,
            len(device) if id_len is None else id_len,
        )
        tail = TAIL.pack(
            self.timestamp_ms,
            self.nonce,
            self.seq,
            len(self.payload) if payload_len is None else payload_len,
        )
        return head + device + tail + self.payload

    def signed(self, key: bytes, topic: str | None = None, **layout: Any) -> bytes:
        """The frame signed over ``topic`` (by default its own)."""
        body = self.body(**layout)
        return body + tag_of(key, self.topic if topic is None else topic, body)


def keys() -> list[dict[str, Any]]:
    cases = [
        (FLEET_A, TOY_1),
        (FLEET_A, TOY_2),
        (FLEET_A, TOY_MIN),
        (FLEET_A, TOY_MAX),
        (FLEET_A, TOY_ESP),
        (FLEET_A, TOY_UNDERSCORE),
        (FLEET_B, TOY_1),
        (FLEET_B, TOY_2),
    ]
    return [
        {
            "fleet_secret": secret,
            "fleet_secret_hex": secret.encode("utf-8").hex(),
            "device_id": device,
            "device_key_hex": device_key(secret, device).hex(),
        }
        for secret, device in cases
    ]


def key_a(device_id: str) -> bytes:
    return device_key(FLEET_A, device_id)


# The ping every pong below answers, and the base of most invalid vectors.
PING = Msg("ping", TOY_1, NOW, nonce_for("ping"), 5)
TEXT_MSG = Msg("text", TOY_1, NOW, nonce_for("text"), 6, b"hello teddy")
PONG = Msg("pong", TOY_1, NOW + 250, nonce_for("pong"), 9, PING.nonce)


def valid_vector(
    name: str, description: str, msg: Msg, now_ms: int, fleet: str = FLEET_A
) -> dict[str, Any]:
    key = device_key(fleet, msg.device_id)
    frame = msg.signed(key)
    return {
        "name": name,
        "description": description,
        "topic": msg.topic,
        "direction": msg.direction,
        "device_key_hex": key.hex(),
        "fields": {
            "kind": msg.kind,
            "kind_code": msg.code,
            "device_id": msg.device_id,
            "timestamp_ms": msg.timestamp_ms,
            "nonce_hex": msg.nonce.hex(),
            "seq": msg.seq,
            "payload_hex": msg.payload.hex(),
        },
        "now_ms": now_ms,
        "frame_hex": frame.hex(),
        "tag_hex": frame[-TAG_SIZE:].hex(),
    }


def valid() -> list[dict[str, Any]]:
    ping = PING
    return [
        valid_vector("up_ping_empty_payload", "A ping; its payload may be empty.", ping, NOW),
        valid_vector(
            "down_pong_echoes_ping_nonce",
            "The pong answering up_ping_empty_payload: its payload is the ping's nonce.",
            PONG,
            NOW + 300,
        ),
        valid_vector(
            "up_ping_min_frame",
            f"The shortest frame: 3-character device id, empty payload, {MIN_FRAME_SIZE} bytes.",
            Msg("ping", TOY_MIN, NOW, nonce_for("min"), 0),
            NOW,
        ),
        valid_vector(
            "up_audio_max_frame",
            f"The longest frame: 32-character device id, {MAX_PAYLOAD}-byte payload, "
            f"{MAX_FRAME_SIZE} bytes; largest sequence number.",
            Msg("audio", TOY_MAX, NOW, nonce_for("max"), 0xFFFF_FFFF, pattern(MAX_PAYLOAD, "max")),
            NOW,
        ),
        valid_vector(
            "up_audio_binary_payload",
            "Raw binary payload with 0x00 and 0xff bytes, carried as is (no base64).",
            Msg("audio", TOY_1, NOW, nonce_for("audio"), 7, BINARY),
            NOW,
        ),
        valid_vector(
            "up_text_utf8_payload",
            "A UTF-8 payload (frame-layer example; the text kind's format is specified with "
            "its feature).",
            Msg("text", TOY_1, NOW, nonce_for("text-utf8"), 8, TEXT),
            NOW,
        ),
        valid_vector(
            "up_ping_oldest_in_window",
            "Timestamp exactly clock_window_ms behind the receiver's clock: accepted.",
            replace(ping, timestamp_ms=NOW - CLOCK_WINDOW_MS, nonce=nonce_for("oldest")),
            NOW,
        ),
        valid_vector(
            "up_ping_newest_in_window",
            "Timestamp exactly clock_window_ms ahead of the receiver's clock: accepted.",
            replace(ping, timestamp_ms=NOW + CLOCK_WINDOW_MS, nonce=nonce_for("newest")),
            NOW,
        ),
        valid_vector(
            "up_ping_near_epoch",
            "Timestamp 0 with the receiver at 1000 ms: now - window is negative; an unsigned "
            "implementation must not wrap.",
            Msg("ping", TOY_ESP, 0, nonce_for("epoch"), 1),
            1_000,
        ),
        valid_vector(
            "up_listen_start_other_root_other_fleet",
            "Topic root 'fleet-b' and a key from another fleet secret (non-ASCII UTF-8).",
            Msg("listen_start", TOY_1, NOW, nonce_for("fleet-b"), 2, root="fleet-b"),
            NOW,
            FLEET_B,
        ),
        valid_vector(
            "up_ping_underscore_device_id",
            "A device id using '_' and '-'.",
            Msg("ping", TOY_UNDERSCORE, NOW, nonce_for("underscore"), 3),
            NOW,
        ),
        valid_vector(
            "down_reply_audio_binary_payload",
            "A downlink with a raw binary payload.",
            Msg("reply_audio", TOY_1, NOW + 400, nonce_for("reply-audio"), 10, BINARY),
            NOW + 450,
        ),
        valid_vector(
            "down_reply_end_empty_payload",
            "A downlink with an empty payload.",
            Msg("reply_end", TOY_1, NOW + 500, nonce_for("reply-end"), 11),
            NOW + 500,
        ),
        valid_vector(
            "down_pong_oldest_in_window",
            "A downlink checked by the toy exactly clock_window_ms after its timestamp.",
            replace(PONG, nonce=nonce_for("pong-oldest")),
            PONG.timestamp_ms + CLOCK_WINDOW_MS,
        ),
    ]


@dataclass(frozen=True)
class Bad:
    """One invalid vector."""

    name: str
    reason: str
    description: str
    topic: str
    frame: bytes
    direction: str = "up"
    key: bytes = b""
    now_ms: int = NOW

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "description": self.description,
            "topic": self.topic,
            "direction": self.direction,
            "device_key_hex": (self.key or key_a(TOY_1)).hex(),
            "frame_hex": self.frame.hex(),
            "now_ms": self.now_ms,
        }


def flip(data: bytes, index: int, mask: int) -> bytes:
    """``data`` with the bits of ``mask`` flipped in byte ``index``."""
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def malformed_frames() -> list[Bad]:
    key = key_a(TOY_1)
    ping = PING.signed(key)
    text = TEXT_MSG
    topic = PING.topic
    smallest = Msg("ping", TOY_MIN, NOW, nonce_for("min"), 0)
    padded = replace(text, payload=bytes(16))
    id_offset = HEADER.size
    out = [
        Bad("empty_frame", "malformed", "Zero bytes.", topic, b""),
        Bad(
            "one_byte_below_minimum",
            "malformed",
            f"The shortest valid frame with its last byte cut: {MIN_FRAME_SIZE - 1} bytes.",
            smallest.topic,
            smallest.signed(key_a(TOY_MIN))[:-1],
            key=key_a(TOY_MIN),
        ),
        Bad(
            "tag_truncated_by_one_byte",
            "malformed",
            "Last byte missing: the payload length no longer lands on the tag.",
            topic,
            ping[:-1],
        ),
        Bad(
            "trailing_byte_after_tag",
            "malformed",
            "One extra byte after the tag.",
            topic,
            ping + b"\x00",
        ),
    ]
    out.extend(
        Bad(
            f"version_{version}",
            "malformed",
            f"Version byte {version} (only 1 is defined); otherwise correctly signed.",
            topic,
            PING.signed(key, version=version),
        )
        for version in (0, 2)
    )
    out.extend(
        Bad(
            f"reserved_flag_0x{flags:02x}",
            "malformed",
            f"Reserved flag bits 0x{flags:02x} set; otherwise correctly signed.",
            topic,
            PING.signed(key, flags=flags),
        )
        for flags in (0x02, 0x80)
    )
    out.extend(
        Bad(
            f"unknown_kind_0x{code:02x}",
            "malformed",
            f"Kind code 0x{code:02x} is not defined.",
            topic,
            PING.signed(key, kind_code=code, flags=1 if code & 0x80 else 0),
        )
        for code in (0x00, 0x04, 0x7F, 0x80, 0xFF)
    )
    out += [
        Bad(
            "direction_flag_set_on_uplink_kind",
            "malformed",
            "A ping (uplink kind) with the downlink direction bit.",
            topic,
            PING.signed(key, flags=1),
        ),
        Bad(
            "direction_flag_clear_on_downlink_kind",
            "malformed",
            "A pong (downlink kind) without the downlink direction bit.",
            PONG.topic,
            PONG.signed(key, flags=0),
            direction="down",
        ),
        Bad(
            "device_id_length_0",
            "malformed",
            "id_len 0, padded with payload so the frame is long enough.",
            text.topic,
            padded.signed(key, device=b""),
        ),
        Bad(
            "device_id_length_2",
            "malformed",
            "A 2-character device id (minimum 3), padded with payload.",
            text.topic,
            padded.signed(key, device=b"ab"),
        ),
        Bad(
            "device_id_length_33",
            "malformed",
            "A 33-character device id (maximum 32).",
            text.topic,
            text.signed(key, device=b"a" * 33),
        ),
        Bad(
            "device_id_length_past_end",
            "malformed",
            "id_len 32 in a frame too short to hold it and the rest of the header.",
            topic,
            PING.signed(key, id_len=32),
        ),
    ]
    forbidden = {
        "plus": b"toy+0001",
        "hash": b"toy#0001",
        "slash": b"toy/0001",
        "uppercase": b"Toy-0001",
        "leading_dash": b"-toy-001",
        "leading_underscore": b"_toy-001",
        "space": b"toy 0001",
        "nul": b"toy\x000001",
        "non_ascii": b"toy\xff0001",
    }
    for label, device in forbidden.items():
        out.append(
            Bad(
                f"device_id_{label}",
                "malformed",
                f"Device id {device!r} in the frame: outside [a-z0-9][a-z0-9_-]{{2,31}}.",
                topic,
                PING.signed(key, device=device),
            )
        )
    for label, length in (
        ("one_more", len(text.payload) + 1),
        ("one_less", len(text.payload) - 1),
        ("u32_max", 0xFFFF_FFFF),
    ):
        out.append(
            Bad(
                f"payload_length_{label}",
                "malformed",
                f"Payload length field {length} for an {len(text.payload)}-byte payload.",
                text.topic,
                text.signed(key, payload_len=length),
            )
        )
    # The header bytes around the id are checked before the id: corrupt those with a flip.
    out.append(
        Bad(
            "header_bit_flip_id_len",
            "malformed",
            "Lowest bit of id_len flipped: the id and every field after it shift.",
            topic,
            flip(ping, id_offset - 1, 0x01),
        )
    )
    return out


def malformed_topics() -> list[Bad]:
    key = key_a(TOY_1)

    def on(topic: str, msg: Msg = PING) -> bytes:
        # Signed over the very topic it arrives on, so only the topic's shape is wrong.
        return msg.signed(key, topic)

    shapes = {
        "topic_four_levels": "teddy/v1/toy-0001/up",
        "topic_six_levels": "teddy/v1/toy-0001/up/ping/extra",
        "topic_leading_slash": "/teddy/v1/toy-0001/up/ping",
        "topic_empty": "",
        "topic_wrong_version": "teddy/v2/toy-0001/up/ping",
        "topic_direction_not_up_or_down": "teddy/v1/toy-0001/sideways/ping",
        "topic_unknown_kind_name": "teddy/v1/toy-0001/up/bark",
        "topic_kind_name_uppercase": "teddy/v1/toy-0001/up/PING",
        "topic_device_id_uppercase": "teddy/v1/TOY-0001/up/ping",
        "topic_device_id_wildcard": "teddy/v1/+/up/ping",
        "topic_uplink_kind_on_down_segment": "teddy/v1/toy-0001/down/ping",
    }
    out = [
        Bad(
            name,
            "malformed",
            f"Topic {topic!r} does not have the protocol's shape.",
            topic,
            on(topic),
        )
        for name, topic in shapes.items()
    ]
    up_pong = "teddy/v1/toy-0001/up/pong"
    long_root = "r" * 250
    long_topic = f"{long_root}/v1/toy-0001/up/ping"
    out += [
        Bad(
            "topic_downlink_kind_on_up_segment",
            "malformed",
            "A pong signed over .../up/pong: the topic puts a downlink kind under 'up'.",
            up_pong,
            on(up_pong, PONG),
        ),
        Bad(
            "reflected_uplink_on_downlink_topic",
            "malformed",
            "The toy's own ping published back to it on .../down/ping and checked as a "
            "downlink: 'ping' never travels down.",
            "teddy/v1/toy-0001/down/ping",
            PING.signed(key),
            direction="down",
        ),
        Bad(
            "topic_longer_than_255_bytes",
            "malformed",
            f"A {len(long_topic)}-byte topic cannot be encoded in the MAC input.",
            long_topic,
            replace(PING, root=long_root).signed(key),
        ),
    ]
    return out


def topic_mismatches() -> list[Bad]:
    key = key_a(TOY_1)
    other = "teddy/v1/toy-0002/up/ping"
    other_kind = "teddy/v1/toy-0001/up/text"
    return [
        Bad(
            "topic_names_other_device",
            "topic_mismatch",
            "toy-0001's ping on toy-0002's topic, signed by toy-0001 over that topic.",
            other,
            PING.signed(key, other),
        ),
        Bad(
            "topic_names_other_device_signed_by_it",
            "topic_mismatch",
            "A ping claiming to be from toy-0001 on toy-0002's topic, signed by toy-0002: a toy "
            "cannot speak for another even on its own topic.",
            other,
            PING.signed(key_a(TOY_2), other),
        ),
        Bad(
            "topic_names_other_kind",
            "topic_mismatch",
            "A ping frame on the text topic, signed over that topic.",
            other_kind,
            PING.signed(key, other_kind),
        ),
        Bad(
            "uplink_frame_on_downlink_topic",
            "topic_mismatch",
            "A ping frame on .../down/pong, checked as a downlink.",
            PONG.topic,
            PING.signed(key, PONG.topic),
            direction="down",
        ),
        Bad(
            "uplink_checked_as_downlink",
            "topic_mismatch",
            "A genuine ping on its own topic, checked as a downlink (the toy's check).",
            PING.topic,
            PING.signed(key),
            direction="down",
        ),
        Bad(
            "downlink_checked_as_uplink",
            "topic_mismatch",
            "A genuine pong on its own topic, checked as an uplink (the hub's check).",
            PONG.topic,
            PONG.signed(key),
        ),
    ]


def oversized() -> list[Bad]:
    big = pattern(MAX_PAYLOAD + 1, "oversized")
    up = Msg("audio", TOY_MAX, NOW, nonce_for("oversized-up"), 12, big)
    down = Msg("reply_audio", TOY_1, NOW, nonce_for("oversized-down"), 13, big)
    stale_forged = replace(up, timestamp_ms=NOW - 10 * CLOCK_WINDOW_MS)
    return [
        Bad(
            "oversized_uplink_correctly_signed",
            "oversized",
            f"A {MAX_PAYLOAD + 1}-byte payload with a 32-character id "
            f"({MAX_FRAME_SIZE + 1}-byte frame), correctly signed.",
            up.topic,
            up.signed(key_a(TOY_MAX)),
            key=key_a(TOY_MAX),
        ),
        Bad(
            "oversized_downlink_correctly_signed",
            "oversized",
            f"A downlink with a {MAX_PAYLOAD + 1}-byte payload, correctly signed.",
            down.topic,
            down.signed(key_a(TOY_1)),
            direction="down",
        ),
        Bad(
            "oversized_forged_and_stale",
            "oversized",
            "Oversized, wrong tag and stale: size is checked before signature and clock.",
            stale_forged.topic,
            stale_forged.body() + bytes(TAG_SIZE),
            key=key_a(TOY_MAX),
        ),
    ]


def bad_signatures() -> list[Bad]:
    key = key_a(TOY_1)
    msg = TEXT_MSG
    good = msg.signed(key)
    topic = msg.topic
    id_end = HEADER.size + len(msg.device_id)
    payload_start = id_end + TAIL.size
    tag_start = len(good) - TAG_SIZE
    body = msg.body()
    encoded = topic.encode()

    def raw_mac(data: bytes, mac_key: bytes = key) -> bytes:
        return body + hmac.new(mac_key, data, hashlib.sha256).digest()

    good_tag = good[tag_start:]
    stale = replace(msg, timestamp_ms=NOW - 2 * CLOCK_WINDOW_MS)
    flips = [
        (
            "payload_bit_flip_first_byte",
            payload_start,
            0x01,
            "Lowest bit of the payload's first byte.",
        ),
        (
            "payload_bit_flip_last_byte",
            tag_start - 1,
            0x80,
            "Highest bit of the payload's last byte.",
        ),
        ("header_bit_flip_timestamp", id_end + 7, 0x01, "Lowest timestamp bit (still in window)."),
        (
            "header_bit_flip_timestamp_far_future",
            id_end,
            0x80,
            "Highest timestamp bit: far in the future, yet the signature fails first.",
        ),
        ("header_bit_flip_nonce", id_end + 8, 0x10, "One nonce bit."),
        ("header_bit_flip_seq", id_end + 8 + NONCE_SIZE + 3, 0x01, "Lowest sequence bit."),
        ("tag_bit_flip_first_byte", tag_start, 0x80, "Highest bit of the tag's first byte."),
        ("tag_bit_flip_last_byte", len(good) - 1, 0x01, "Lowest bit of the tag's last byte."),
    ]
    out = [
        Bad(name, "bad_signature", desc, topic, flip(good, index, mask))
        for name, index, mask, desc in flips
    ]
    out += [
        Bad("tag_all_zero", "bad_signature", "A tag of 32 zero bytes.", topic, body + bytes(32)),
        Bad(
            "tag_first_half_only",
            "bad_signature",
            "The first 16 tag bytes are right, the rest zero: the full 32 bytes are compared.",
            topic,
            body + good_tag[:16] + bytes(16),
        ),
        Bad(
            "signed_over_other_root",
            "bad_signature",
            "Signed over 'staging/v1/toy-0001/up/text', received on the 'teddy' root.",
            topic,
            msg.signed(key, "staging/v1/toy-0001/up/text"),
        ),
        Bad(
            "signed_without_topic",
            "bad_signature",
            "HMAC over the frame bytes alone.",
            topic,
            raw_mac(body),
        ),
        Bad(
            "signed_without_topic_length",
            "bad_signature",
            "HMAC over topic || frame bytes, without the u16 length.",
            topic,
            raw_mac(encoded + body),
        ),
        Bad(
            "signed_with_little_endian_topic_length",
            "bad_signature",
            "The topic length packed little-endian.",
            topic,
            raw_mac(struct.pack("<H", len(encoded)) + encoded + body),
        ),
        Bad(
            "signed_with_other_device_key",
            "bad_signature",
            "toy-0001's frame on its own topic, signed with toy-0002's key.",
            topic,
            msg.signed(key_a(TOY_2)),
        ),
        Bad(
            "signed_with_other_fleet_key",
            "bad_signature",
            "toy-0001's frame signed with toy-0001's key from fleet B.",
            topic,
            msg.signed(device_key(FLEET_B, TOY_1)),
        ),
        Bad(
            "signed_with_fleet_secret",
            "bad_signature",
            "HMAC keyed with the fleet secret itself instead of the derived device key.",
            topic,
            msg.signed(FLEET_A.encode()),
        ),
        Bad(
            "forged_and_stale",
            "bad_signature",
            "Wrong tag and a stale timestamp: the signature is checked before the clock.",
            topic,
            flip(stale.signed(key), -1, 0x01),
        ),
        Bad(
            "downlink_payload_bit_flip",
            "bad_signature",
            "One payload bit of a pong flipped, checked by the toy.",
            PONG.topic,
            flip(PONG.signed(key), -TAG_SIZE - 1, 0x01),
            direction="down",
        ),
        Bad(
            "downlink_signed_with_other_device_key",
            "bad_signature",
            "A pong for toy-0001 signed with toy-0002's key.",
            PONG.topic,
            PONG.signed(key_a(TOY_2)),
            direction="down",
        ),
    ]
    return out


def clock() -> list[Bad]:
    key = key_a(TOY_1)
    at = PONG.timestamp_ms

    def ping_at(timestamp_ms: int) -> bytes:
        return replace(PING, timestamp_ms=timestamp_ms).signed(key)

    def pong_at(timestamp_ms: int) -> bytes:
        return replace(PONG, timestamp_ms=timestamp_ms).signed(key)

    return [
        Bad(
            "stale_by_one_ms",
            "stale",
            "Timestamp clock_window_ms + 1 behind.",
            PING.topic,
            ping_at(NOW - CLOCK_WINDOW_MS - 1),
        ),
        Bad(
            "future_by_one_ms",
            "future",
            "Timestamp clock_window_ms + 1 ahead.",
            PING.topic,
            ping_at(NOW + CLOCK_WINDOW_MS + 1),
        ),
        Bad(
            "stale_epoch_zero",
            "stale",
            "Timestamp 0 (a toy that never set its clock).",
            PING.topic,
            ping_at(0),
        ),
        Bad(
            "future_far",
            "future",
            "Timestamp a year ahead.",
            PING.topic,
            ping_at(NOW + 365 * 86_400_000),
        ),
        Bad(
            "downlink_stale_by_one_ms",
            "stale",
            "A pong checked by the toy too late.",
            PONG.topic,
            pong_at(at),
            direction="down",
            now_ms=at + CLOCK_WINDOW_MS + 1,
        ),
        Bad(
            "downlink_future_by_one_ms",
            "future",
            "A pong stamped too far ahead of the toy.",
            PONG.topic,
            pong_at(at),
            direction="down",
            now_ms=at - CLOCK_WINDOW_MS - 1,
        ),
    ]


def invalid() -> list[dict[str, Any]]:
    groups: list[Callable[[], list[Bad]]] = [
        malformed_frames,
        malformed_topics,
        topic_mismatches,
        oversized,
        bad_signatures,
        clock,
    ]
    return [bad.as_json() for group in groups for bad in group()]


def step(
    msg: Msg, now_ms: int, expect: str, *, revoked: tuple[str, ...] = (), frame: bytes | None = None
) -> dict[str, Any]:
    return {
        "topic": msg.topic,
        "frame_hex": (msg.signed(key_a(msg.device_id)) if frame is None else frame).hex(),
        "now_ms": now_ms,
        "revoked": list(revoked),
        "expect": expect,
    }


def scenario(name: str, description: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": description, "fleet_secret": FLEET_A, "steps": steps}


def stateful() -> list[dict[str, Any]]:
    ping = replace(PING, nonce=nonce_for("stateful-replay"))
    forged_nonce = replace(PING, nonce=nonce_for("stateful-forged"))
    toy2 = Msg("ping", TOY_2, NOW, nonce_for("stateful-revoked"), 1)
    shared = replace(PING, nonce=nonce_for("stateful-shared"))
    forged = flip(forged_nonce.signed(key_a(TOY_1)), -1, 0x01)
    toy2_forged = flip(toy2.signed(key_a(TOY_2)), -1, 0x01)
    return [
        scenario(
            "replay",
            "The same frame twice: the second is a replay while its nonce is remembered; once "
            "outside the clock window it is stale (the clock is checked before the nonce).",
            [
                step(ping, NOW, "accepted"),
                step(ping, NOW + 1_000, "replay"),
                step(ping, NOW + CLOCK_WINDOW_MS, "replay"),
                step(ping, NOW + CLOCK_WINDOW_MS + 1, "stale"),
            ],
        ),
        scenario(
            "forged_frame_does_not_burn_nonce",
            "A forged frame is rejected before the nonce store, so the genuine frame with the "
            "same nonce is still accepted.",
            [
                step(forged_nonce, NOW, "bad_signature", frame=forged),
                step(forged_nonce, NOW, "accepted"),
            ],
        ),
        scenario(
            "nonce_is_scoped_to_device",
            "Two devices may use the same nonce: the store key is device id and nonce.",
            [
                step(shared, NOW, "accepted"),
                step(replace(shared, device_id=TOY_2), NOW, "accepted"),
                step(shared, NOW, "replay"),
            ],
        ),
        scenario(
            "revoked_device",
            "A revoked device's genuine frame is rejected as revoked without claiming its "
            "nonce; a forged one is rejected earlier, as bad_signature; other devices pass. "
            "Once the revocation is lifted the same frame is accepted.",
            [
                step(toy2, NOW, "bad_signature", revoked=(TOY_2,), frame=toy2_forged),
                step(toy2, NOW, "revoked", revoked=(TOY_2,)),
                step(
                    replace(ping, nonce=nonce_for("stateful-other")),
                    NOW,
                    "accepted",
                    revoked=(TOY_2,),
                ),
                step(toy2, NOW + 1_000, "accepted"),
            ],
        ),
    ]


class Rejected(Exception):
    """A reference-verifier rejection carrying its reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require(condition: bool, reason: str = "malformed") -> None:
    if not condition:
        raise Rejected(reason)


def reference_parse(data: bytes) -> tuple[str, str, int, int]:
    """Step 1: the frame's device id, kind, timestamp and payload length."""
    require(len(data) >= MIN_FRAME_SIZE)
    version, flags, code, id_len = HEADER.unpack_from(data)
    require(version == PROTOCOL_VERSION and not flags & ~FLAG_DIRECTION and code in KIND_NAMES)
    require((flags & FLAG_DIRECTION) == (code >> 7))
    require(ID_MIN <= id_len <= ID_MAX)
    require(len(data) >= HEADER.size + id_len + TAIL.size + TAG_SIZE)
    device = data[HEADER.size : HEADER.size + id_len].decode("latin-1")
    require(valid_id(device))
    timestamp, _, _, payload_len = TAIL.unpack_from(data, HEADER.size + id_len)
    require(HEADER.size + id_len + TAIL.size + payload_len == len(data) - TAG_SIZE)
    return device, KIND_NAMES[code], timestamp, payload_len


def reference_verify(topic: str, data: bytes, key: bytes, now_ms: int, direction: str) -> str:
    """The verification order of docs/protocol.md; returns a reject reason or "accepted"."""
    try:
        device, kind, timestamp, payload_len = reference_parse(data)
        levels = topic.split("/")
        require(len(levels) == 5 and levels[1] == TOPIC_VERSION and valid_id(levels[2]))
        require(levels[3] in ("up", "down") and levels[4] in KIND_CODES)
        require(("down" if KIND_CODES[levels[4]] & 0x80 else "up") == levels[3])
        require(levels[2:] == [device, direction, kind], "topic_mismatch")
        require(payload_len <= MAX_PAYLOAD, "oversized")
        require(len(topic.encode("utf-8")) <= MAX_TOPIC_SIZE)
        expected = tag_of(key, topic, data[:-TAG_SIZE])
        require(hmac.compare_digest(expected, data[-TAG_SIZE:]), "bad_signature")
        require(timestamp >= now_ms - CLOCK_WINDOW_MS, "stale")
        require(timestamp <= now_ms + CLOCK_WINDOW_MS, "future")
    except Rejected as rejected:
        return rejected.reason
    return "accepted"


def valid_id(device_id: str) -> bool:
    return (
        ID_MIN <= len(device_id) <= ID_MAX
        and device_id[0] in ID_FIRST
        and all(char in ID_REST for char in device_id)
    )


def self_check(document: dict[str, Any]) -> None:
    """Fail loudly if a vector does not behave as it says under the reference verifier."""
    names: set[str] = set()
    for vector in document["valid"] + document["invalid"]:
        if vector["name"] in names:
            raise AssertionError(f"duplicate vector name {vector['name']}")
        names.add(vector["name"])
        outcome = reference_verify(
            vector["topic"],
            bytes.fromhex(vector["frame_hex"]),
            bytes.fromhex(vector["device_key_hex"]),
            vector["now_ms"],
            vector["direction"],
        )
        if outcome != vector.get("reason", "accepted"):
            raise AssertionError(f"{vector['name']}: the reference verifier says {outcome}")
    sizes = {len(v["frame_hex"]) // 2 for v in document["valid"]}
    if min(sizes) != MIN_FRAME_SIZE or max(sizes) != MAX_FRAME_SIZE:
        raise AssertionError("the valid vectors must include the shortest and longest frame")


# --- Connect tokens (docs/protocol.md, "Connect tokens") -------------------------------------

CONNECT_ROOT_INFO = b"teddy/v1/connect-root"
CONNECT_KEY_INFO_PREFIX = b"teddy/v1/connect-key/"
TOKEN_DOMAIN = b"teddy/v1/connect\n"
SERVICE_DOMAIN = b"teddy/v1/service\n"
TOKEN_LIFETIME_S = 300
TOKEN_FUTURE_SKEW_S = 60
TOKEN_REPLAY_TTL_S = TOKEN_LIFETIME_S + TOKEN_FUTURE_SKEW_S
MAX_TOKEN_LENGTH = 128
NOW_S = NOW // 1000
HEX = frozenset("0123456789abcdef")


def connect_root(fleet_secret: str) -> bytes:
    """The broker's key (docs/protocol.md, "Key hierarchy")."""
    return hkdf_sha256(fleet_secret.encode("utf-8"), KEY_SALT, CONNECT_ROOT_INFO, KEY_SIZE)


def connect_key(root: bytes, device_id: str) -> bytes:
    """A device's connect-token key."""
    info = CONNECT_KEY_INFO_PREFIX + device_id.encode("ascii")
    return hkdf_sha256(root, KEY_SALT, info, KEY_SIZE)


def token_tag(key: bytes, device_id: str, timestamp_s: str, nonce_hex: str) -> str:
    message = b"\n".join((device_id.encode(), timestamp_s.encode(), nonce_hex.encode()))
    return hmac.new(key, TOKEN_DOMAIN + message, hashlib.sha256).hexdigest()


def make_token(key: bytes, device_id: str, timestamp_s: int, nonce: bytes) -> str:
    nonce_hex = nonce.hex()
    tag = token_tag(key, device_id, str(timestamp_s), nonce_hex)
    return f"v1.{timestamp_s}.{nonce_hex}.{tag}"


def service_password(root: bytes, name: str) -> str:
    return hmac.new(root, SERVICE_DOMAIN + name.encode(), hashlib.sha256).hexdigest()


def token_nonce(label: str) -> bytes:
    return hashlib.sha256(b"teddy-vectors/token-nonce/" + label.encode()).digest()[:8]


def reference_verify_token(
    key: bytes, username: str, client_id: str, password: str, now_s: int
) -> str:
    """The reason a device login fails, or 'accepted' (stateless checks, in order)."""
    try:
        require(client_id == username, "id_mismatch")
        require(valid_id(username))
        require(len(password) <= MAX_TOKEN_LENGTH)
        parts = password.split(".")
        require(len(parts) == 4 and parts[0] == "v1")
        _, stamp, nonce_hex, tag = parts
        require(stamp.isascii() and stamp.isdigit() and len(stamp) <= 11)
        require(stamp == "0" or not stamp.startswith("0"))
        require(len(nonce_hex) == 16 and set(nonce_hex) <= HEX)
        require(len(tag) == 64 and set(tag) <= HEX)
        expected = token_tag(key, username, stamp, nonce_hex)
        require(hmac.compare_digest(expected, tag), "bad_signature")
        require(int(stamp) >= now_s - TOKEN_LIFETIME_S, "expired")
        require(int(stamp) <= now_s + TOKEN_FUTURE_SKEW_S, "future")
    except Rejected as rejected:
        return rejected.reason
    return "accepted"


def connect_vectors() -> dict[str, Any]:
    """Keys, tokens that log in, tokens that must not, and service passwords."""
    root_a, root_b = connect_root(FLEET_A), connect_root(FLEET_B)
    ids = [TOY_1, TOY_2, TOY_MIN, TOY_MAX, TOY_ESP, TOY_UNDERSCORE]
    key_a = connect_key(root_a, TOY_1)
    good = make_token(key_a, TOY_1, NOW_S, token_nonce("good"))
    stamp_part, nonce_part, tag_part = good.split(".")[1:]
    flipped_tag = tag_part[:-1] + ("0" if tag_part[-1] != "0" else "1")

    def valid_token(name: str, device_id: str, timestamp_s: int, root: bytes = root_a) -> dict:
        key = connect_key(root, device_id)
        nonce = token_nonce(name)
        return {
            "name": name,
            "device_id": device_id,
            "client_id": device_id,
            "connect_key_hex": key.hex(),
            "timestamp_s": timestamp_s,
            "nonce_hex": nonce.hex(),
            "token": make_token(key, device_id, timestamp_s, nonce),
            "now_s": NOW_S,
        }

    def invalid_token(
        name: str,
        password: str,
        reason: str,
        *,
        username: str = TOY_1,
        client_id: str | None = None,
        key: bytes = key_a,
        now_s: int = NOW_S,
    ) -> dict:
        return {
            "name": name,
            "username": username,
            "client_id": username if client_id is None else client_id,
            "connect_key_hex": key.hex(),
            "password": password,
            "now_s": now_s,
            "reason": reason,
        }

    other_key = connect_key(root_a, TOY_2)
    invalid = [
        invalid_token("empty", "", "malformed"),
        invalid_token("wrong_version", "v2" + good[2:], "malformed"),
        invalid_token("missing_part", f"v1.{stamp_part}.{nonce_part}", "malformed"),
        invalid_token("extra_part", good + ".00", "malformed"),
        invalid_token("uppercase_hex", good.upper().replace("V1", "v1"), "malformed"),
        invalid_token(
            "leading_zero_time", f"v1.0{stamp_part}.{nonce_part}.{tag_part}", "malformed"
        ),
        invalid_token("time_not_decimal", f"v1.{stamp_part}x.{nonce_part}.{tag_part}", "malformed"),
        invalid_token("time_too_long", f"v1.{'9' * 12}.{nonce_part}.{tag_part}", "malformed"),
        invalid_token("short_nonce", f"v1.{stamp_part}.{nonce_part[:-1]}.{tag_part}", "malformed"),
        invalid_token("short_tag", f"v1.{stamp_part}.{nonce_part}.{tag_part[:-1]}", "malformed"),
        invalid_token("too_long", good + "0" * (MAX_TOKEN_LENGTH - len(good) + 1), "malformed"),
        invalid_token("client_id_differs", good, "id_mismatch", client_id="toy-0009"),
        invalid_token("username_with_slash", good, "malformed", username="toy/a"),
        invalid_token("username_with_plus", good, "malformed", username="toy+a"),
        invalid_token("username_hash", good, "malformed", username="#"),
        invalid_token("username_uppercase", good, "malformed", username="TOY-A"),
        invalid_token(
            "tag_bit_flip", f"v1.{stamp_part}.{nonce_part}.{flipped_tag}", "bad_signature"
        ),
        invalid_token("time_edited", f"v1.{NOW_S - 1}.{nonce_part}.{tag_part}", "bad_signature"),
        invalid_token(
            "other_devices_token",
            make_token(other_key, TOY_2, NOW_S, token_nonce("other")),
            "bad_signature",
        ),
        invalid_token(
            "other_fleet",
            make_token(connect_key(root_b, TOY_1), TOY_1, NOW_S, token_nonce("fleet")),
            "bad_signature",
        ),
        invalid_token(
            "frame_key_instead_of_connect_key",
            make_token(device_key(FLEET_A, TOY_1), TOY_1, NOW_S, token_nonce("frame")),
            "bad_signature",
        ),
        invalid_token(
            "expired_by_one_second",
            make_token(key_a, TOY_1, NOW_S - TOKEN_LIFETIME_S - 1, token_nonce("old")),
            "expired",
        ),
        invalid_token(
            "future_by_one_second",
            make_token(key_a, TOY_1, NOW_S + TOKEN_FUTURE_SKEW_S + 1, token_nonce("new")),
            "future",
        ),
    ]
    services = [
        {
            "fleet_secret": FLEET_A,
            "name": name,
            "username": f"svc:{name}",
            "password": service_password(root_a, name),
        }
        for name in ("hub", "api")
    ]
    invalid_services = [
        {
            "username": "svc:root",
            "password": service_password(root_a, "hub"),
            "reason": "unknown_service",
        },
        {
            "username": "svc:hub",
            "password": service_password(root_b, "hub"),
            "reason": "bad_signature",
        },
        {
            "username": "svc:api",
            "password": service_password(root_a, "hub"),
            "reason": "bad_signature",
        },
    ]
    return {
        "constants": {
            "connect_root_info": CONNECT_ROOT_INFO.decode(),
            "connect_key_info_prefix": CONNECT_KEY_INFO_PREFIX.decode(),
            "token_lifetime_s": TOKEN_LIFETIME_S,
            "token_future_skew_s": TOKEN_FUTURE_SKEW_S,
            "token_replay_ttl_s": TOKEN_REPLAY_TTL_S,
            "max_token_length": MAX_TOKEN_LENGTH,
        },
        "roots": [
            {"fleet_secret": fleet, "connect_root_hex": root.hex()}
            for fleet, root in ((FLEET_A, root_a), (FLEET_B, root_b))
        ],
        "keys": [
            {
                "fleet_secret": FLEET_A,
                "device_id": device_id,
                "connect_key_hex": connect_key(root_a, device_id).hex(),
            }
            for device_id in ids
        ],
        "valid_tokens": [
            valid_token("now", TOY_1, NOW_S),
            valid_token("oldest_accepted", TOY_2, NOW_S - TOKEN_LIFETIME_S),
            valid_token("newest_accepted", TOY_ESP, NOW_S + TOKEN_FUTURE_SKEW_S),
            valid_token("shortest_id", TOY_MIN, NOW_S),
            valid_token("longest_id", TOY_MAX, NOW_S),
            valid_token("other_fleet", TOY_UNDERSCORE, NOW_S, root_b),
        ],
        "invalid_tokens": invalid,
        "services": services,
        "invalid_services": invalid_services,
    }


def self_check_connect(section: dict[str, Any]) -> None:
    """Every token vector behaves as it says under the reference checks."""
    for vector in section["valid_tokens"]:
        outcome = reference_verify_token(
            bytes.fromhex(vector["connect_key_hex"]),
            vector["device_id"],
            vector["client_id"],
            vector["token"],
            vector["now_s"],
        )
        if outcome != "accepted":
            raise AssertionError(f"token {vector['name']}: the reference says {outcome}")
    for vector in section["invalid_tokens"]:
        outcome = reference_verify_token(
            bytes.fromhex(vector["connect_key_hex"]),
            vector["username"],
            vector["client_id"],
            vector["password"],
            vector["now_s"],
        )
        if outcome != vector["reason"]:
            raise AssertionError(f"token {vector['name']}: the reference says {outcome}")


def build() -> dict[str, Any]:
    check_hkdf()
    document = {
        "meta": {
            "version": VECTORS_VERSION,
            "spec": "docs/protocol.md",
            "generator": "scripts/generate_vectors.py",
            "notes": [
                "Bytes are lowercase hex. Strings are UTF-8.",
                "valid: encode the fields with device_key_hex over topic and compare with "
                "frame_hex; verify frame_hex as 'direction' at now_ms and compare the fields.",
                "invalid: verifying frame_hex received on topic, as 'direction', at now_ms, with "
                "device_key_hex as the key of every device id, fails for 'reason' under the "
                "order parse, topic, size, signature, clock.",
                "stateful: steps run in order through one hub gate (uplinks, fleet_secret, an "
                "empty nonce store); 'revoked' is the revocation list in force at the step.",
                "Payloads of kinds other than ping and pong exercise the frame layer only; "
                "their formats are specified with their features.",
            ],
            "constants": {
                "protocol_version": PROTOCOL_VERSION,
                "topic_version": TOPIC_VERSION,
                "clock_window_ms": CLOCK_WINDOW_MS,
                "nonce_ttl_ms": NONCE_TTL_MS,
                "max_payload": MAX_PAYLOAD,
                "min_frame_size": MIN_FRAME_SIZE,
                "max_frame_size": MAX_FRAME_SIZE,
                "max_topic_size": MAX_TOPIC_SIZE,
                "nonce_size": NONCE_SIZE,
                "tag_size": TAG_SIZE,
                "device_key_size": KEY_SIZE,
                "device_id_min_length": ID_MIN,
                "device_id_max_length": ID_MAX,
                "key_salt": KEY_SALT.decode(),
                "frame_key_info_prefix": FRAME_KEY_INFO_PREFIX.decode(),
            },
            "kinds": [
                {"name": name, "code": code, "direction": "down" if code & 0x80 else "up"}
                for name, code in KIND_CODES.items()
            ],
        },
        "keys": keys(),
        "valid": valid(),
        "invalid": invalid(),
        "stateful": stateful(),
        "connect": connect_vectors(),
    }
    self_check(document)
    self_check_connect(document["connect"])
    return document


def render() -> str:
    """The vector file's exact text."""
    return json.dumps(build(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file on disk is not up to date"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the file lives")
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is out of date; run scripts/generate_vectors.py", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
