"""A toy in software: derives its key, signs uplinks, verifies every downlink.

It follows docs/protocol.md exactly as firmware must: uplinks carry a fresh random nonce and the
next sequence number; a downlink is accepted only if it parses, matches its topic, carries the
downlink direction bit, verifies under the toy's key, is inside the clock window and its nonce
was not seen before. Anything else is dropped with its reason, like the hub does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType

import aiomqtt
import structlog

from hub.errors import ProtocolError, ToyError
from hub.gate import wall_clock_ms
from hub.mqtt import BrokerAddress, open_client
from hub.protocol.frames import NONCE_SIZE, Frame, encode_frame
from hub.protocol.kinds import Direction, Kind
from hub.protocol.tokens import TOKEN_NONCE_SIZE, make_connect_token
from hub.protocol.topics import downlink_filter, uplink_topic
from hub.protocol.verify import verify_frame

log = structlog.get_logger("hub.toy")
DEFAULT_DEVICE_ID = "toy-0001"
_SEEN_NONCES = 1024


@dataclass(frozen=True)
class PairCode:
    """A pairing code as the toy speaks it."""

    code: str
    expires_in_s: int

    @property
    def spoken(self) -> str:
        """The digits in two groups of three, the way the toy reads them out."""
        return f"{self.code[:3]} {self.code[3:]}"


class SimulatedToy:
    """One toy's MQTT session; use as ``async with SimulatedToy(...) as toy``."""

    def __init__(
        self,
        device_id: str,
        device_key: bytes,
        broker: BrokerAddress,
        topic_root: str = "teddy",
        *,
        connect_key: bytes | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.device_id = device_id
        self._key = device_key
        self._connect_key = connect_key
        self._broker = broker
        self._root = topic_root
        self._clock_ms = clock_ms
        self._seq = 0
        self._seen: deque[bytes] = deque(maxlen=_SEEN_NONCES)
        self._client: aiomqtt.Client | None = None
        self.rejected: list[str] = []

    async def __aenter__(self) -> SimulatedToy:
        broker = self._broker
        if self._connect_key is not None:
            # A fresh token for every connection (docs/protocol.md, "Connect tokens").
            token = make_connect_token(
                self._connect_key,
                self.device_id,
                self._clock_ms() // 1000,
                os.urandom(TOKEN_NONCE_SIZE),
            )
            broker = broker.with_login(self.device_id, token)
        client = open_client(broker, identifier=self.device_id, clean_session=True)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as error:
            raise ToyError(
                f"cannot connect to the broker at {self._broker.host}:{self._broker.port}: {error}"
            ) from error
        self._client = client
        await client.subscribe(downlink_filter(self._root, self.device_id), qos=1)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, traceback)

    def frame(
        self,
        kind: Kind,
        payload: bytes = b"",
        *,
        nonce: bytes | None = None,
        timestamp_ms: int | None = None,
    ) -> tuple[str, bytes]:
        """The topic and signed bytes of one uplink (tests use this to build bad ones)."""
        topic = uplink_topic(self._root, self.device_id, kind)
        data = encode_frame(
            key=self._key,
            topic=topic,
            kind=kind,
            device_id=self.device_id,
            timestamp_ms=self._clock_ms() if timestamp_ms is None else timestamp_ms,
            nonce=nonce if nonce is not None else os.urandom(NONCE_SIZE),
            seq=self._seq,
            payload=payload,
        )
        self._seq = (self._seq + 1) & 0xFFFF_FFFF
        return topic, data

    async def publish_raw(self, topic: str, data: bytes, qos: int = 1) -> None:
        """Publish bytes as they are (valid or not)."""
        await self._require_client().publish(topic, data, qos=qos)

    async def send(self, kind: Kind, payload: bytes = b"") -> bytes:
        """Sign and publish one uplink; return its nonce."""
        nonce = os.urandom(NONCE_SIZE)
        topic, data = self.frame(kind, payload, nonce=nonce)
        await self.publish_raw(topic, data)
        return nonce

    async def receive(
        self, kind: Kind, timeout_s: float, match: Callable[[Frame], bool] = lambda _: True
    ) -> Frame:
        """The next verified downlink of ``kind`` for which ``match`` holds.

        Raises:
            ToyError: when none arrives within ``timeout_s``.
        """
        client = self._require_client()
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    frame = self._verify(message)
                    if frame is not None and frame.kind is kind and match(frame):
                        return frame
        except TimeoutError:
            pass
        reasons = f" (dropped: {', '.join(self.rejected)})" if self.rejected else ""
        raise ToyError(f"no verified {kind.topic_name} within {timeout_s:g} s{reasons}")

    async def receive_any(self, kinds: set[Kind], timeout_s: float) -> Frame:
        """The next verified downlink of any of ``kinds``.

        Raises:
            ToyError: when none arrives within ``timeout_s``.
        """
        client = self._require_client()
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    frame = self._verify(message)
                    if frame is not None and frame.kind in kinds:
                        return frame
        except TimeoutError:
            pass
        names = ", ".join(sorted(kind.topic_name for kind in kinds))
        raise ToyError(f"no verified {names} within {timeout_s:g} s")

    async def ping(self, timeout_s: float = 5.0) -> float:
        """Send a ping and wait for its verified pong; return the round trip in ms."""
        started = time.perf_counter()
        nonce = await self.send(Kind.PING)
        await self.receive(Kind.PONG, timeout_s, match=lambda frame: frame.payload == nonce)
        return (time.perf_counter() - started) * 1000

    async def listen(self, seconds: float) -> AsyncIterator[Frame]:
        """Every verified downlink that arrives within ``seconds`` (the rest are dropped with
        their reason in ``rejected``)."""
        client = self._require_client()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for message in client.messages:
                    frame = self._verify(message)
                    if frame is not None:
                        yield frame

    async def request_pair_code(self, timeout_s: float = 5.0) -> PairCode:
        """Ask the hub for a pairing code and return the verified answer.

        Raises:
            ToyError: when no code arrives in time or its payload is not a pairing code.
        """
        await self.send(Kind.PAIR_REQUEST)
        frame = await self.receive(Kind.PAIR_CODE, timeout_s)
        try:
            body = json.loads(frame.payload)
            return PairCode(str(body["code"]), int(body["expires_in_s"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ToyError(f"the pair_code payload is not a pairing code: {error}") from error

    def _verify(self, message: aiomqtt.Message) -> Frame | None:
        try:
            frame = verify_frame(
                message.topic.value,
                message.payload,
                self._key_for,
                self._clock_ms(),
                direction=Direction.DOWN,
            )
        except ProtocolError as error:
            self.rejected.append(error.reason.value)
            log.warning("downlink_rejected", device_id=self.device_id, reason=error.reason.value)
            return None
        if frame.nonce in self._seen:
            self.rejected.append("replay")
            log.warning("downlink_rejected", device_id=self.device_id, reason="replay")
            return None
        self._seen.append(frame.nonce)
        return frame

    def _key_for(self, device_id: str) -> bytes:
        # verify_frame has already matched the topic's id to the frame's; a frame for another
        # device id simply fails the tag under this toy's key.
        return self._key

    def _require_client(self) -> aiomqtt.Client:
        if self._client is None:
            raise ToyError("the toy is not connected")
        return self._client
