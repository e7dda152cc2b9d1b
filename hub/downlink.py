"""Signed frames from the hub to one toy (docs/protocol.md, "Downlinks").

Downlinks are signed with the toy's own key and carry the downlink direction bit, so only the
hub (or the fleet secret's holder) can make a toy speak, and a toy's own uplink reflected back
at it fails verification.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import aiomqtt

from hub.errors import TeddyError
from hub.metrics import HubMetrics
from hub.protocol.frames import NONCE_SIZE, encode_frame
from hub.protocol.keys import DeviceKeyring
from hub.protocol.kinds import Direction, Kind
from hub.protocol.topics import downlink_topic

_SEQ_MODULUS = 1 << 32


class BrokerUnavailable(TeddyError):
    """The hub is not connected to the broker, so a downlink cannot be sent now."""


def sign_downlink(
    key: bytes,
    topic_root: str,
    device_id: str,
    kind: Kind,
    payload: bytes,
    *,
    timestamp_ms: int,
    seq: int = 0,
) -> tuple[str, bytes]:
    """The topic and signed frame of one downlink (a fresh random nonce each call).

    Raises:
        ValueError: for a kind that travels up.
    """
    if kind.direction is not Direction.DOWN:
        raise ValueError(f"{kind.topic_name} is not a downlink kind")
    topic = downlink_topic(topic_root, device_id, kind)
    frame = encode_frame(
        key=key,
        topic=topic,
        kind=kind,
        device_id=device_id,
        timestamp_ms=timestamp_ms,
        nonce=os.urandom(NONCE_SIZE),
        seq=seq,
        payload=payload,
    )
    return topic, frame


class DownlinkPublisher:
    """Signs and publishes downlinks on the hub's current broker connection."""

    def __init__(
        self,
        keyring: DeviceKeyring,
        topic_root: str,
        metrics: HubMetrics,
        clock_ms: Callable[[], int],
    ) -> None:
        self._keyring = keyring
        self._root = topic_root
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._client: aiomqtt.Client | None = None
        self._seq: dict[str, int] = {}

    def attach(self, client: aiomqtt.Client | None) -> None:
        """Use ``client`` for publishing (``None`` while disconnected)."""
        self._client = client

    def sign(self, device_id: str, kind: Kind, payload: bytes) -> tuple[str, bytes]:
        """The topic and signed frame of one downlink."""
        seq = self._seq.get(device_id, 0)
        topic, frame = sign_downlink(
            self._keyring.key_for(device_id),
            self._root,
            device_id,
            kind,
            payload,
            timestamp_ms=self._clock_ms(),
            seq=seq,
        )
        self._seq[device_id] = (seq + 1) % _SEQ_MODULUS
        return topic, frame

    async def send(self, device_id: str, kind: Kind, payload: bytes = b"") -> None:
        """Sign and publish one downlink at QoS 1.

        Raises:
            BrokerUnavailable: while the hub has no broker connection.
        """
        client = self._client
        if client is None:
            raise BrokerUnavailable("not connected to the broker")
        topic, frame = self.sign(device_id, kind, payload)
        try:
            await client.publish(topic, frame, qos=1)
        except aiomqtt.MqttError as error:
            raise BrokerUnavailable(f"publish failed: {error}") from error
        self._metrics.downlinks[kind].inc()
