"""The benchmark's fleet: a fixed secret, many device ids, frames signed as toys sign them.

Many devices, not one: the dispatcher bounds each device's backlog, so a single busy toy would
measure its drop policy instead of the hub's throughput. Keys are derived from a fixed secret
exactly as the hub derives them, so the hub under test verifies every frame for real.
"""

from __future__ import annotations

import os
import struct
import time

from hub.protocol.frames import NONCE_SIZE, encode_frame
from hub.protocol.keys import derive_device_key
from hub.protocol.kinds import Kind
from hub.protocol.topics import uplink_topic

# Not a secret: the benchmark's own fleet, never deployed anywhere.
BENCH_FLEET_SECRET = b"teddy-hub-benchmark-fleet-secret-v1"
BENCH_KIND = Kind.PING
SEND_STAMP = struct.Struct(">Q")


def device_ids(count: int) -> list[str]:
    """``count`` distinct, valid device ids."""
    return [f"bench-{index:05d}" for index in range(count)]


def wall_clock_ms() -> int:
    """Unix time in ms, the clock the hub checks frames against (±30 s)."""
    return time.time_ns() // 1_000_000


class BenchFleet:
    """Signs uplinks for a fleet of devices, round-robin, each with a fresh nonce."""

    def __init__(self, topic_root: str, devices: int, kind: Kind = BENCH_KIND) -> None:
        ids = device_ids(devices)
        self._kind = kind
        self._devices = [
            (
                device_id,
                derive_device_key(BENCH_FLEET_SECRET, device_id),
                uplink_topic(topic_root, device_id, kind),
            )
            for device_id in ids
        ]
        self._next = 0
        self._seq = 0

    def sign(self, payload: bytes = b"") -> tuple[str, bytes]:
        """The topic and bytes of the next device's next frame, stamped now."""
        device_id, key, topic = self._devices[self._next]
        self._next = (self._next + 1) % len(self._devices)
        data = encode_frame(
            key=key,
            topic=topic,
            kind=self._kind,
            device_id=device_id,
            timestamp_ms=wall_clock_ms(),
            nonce=os.urandom(NONCE_SIZE),
            seq=self._seq,
            payload=payload,
        )
        self._seq = (self._seq + 1) & 0xFFFF_FFFF
        return topic, data

    def sign_batch(self, count: int) -> list[tuple[str, bytes]]:
        """``count`` frames signed now, to be published back to back."""
        return [self.sign() for _ in range(count)]

    def sign_stamped(self) -> tuple[str, bytes]:
        """A frame whose payload is ``time.monotonic_ns()`` now, for publish-to-handler latency.

        CLOCK_MONOTONIC is system-wide on Linux, so the hub process can subtract it from its own.
        """
        return self.sign(SEND_STAMP.pack(time.monotonic_ns()))
