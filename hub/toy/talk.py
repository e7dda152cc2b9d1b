"""The simulated toy's side of a conversation: announce, speak (audio or typed), hear back.

It does what firmware does: ``hello`` with what it plays, ``listen_start``, the utterance as
``audio`` chunks (16 kHz PCM16, or Opus in 60 ms packets, several packets a chunk),
``listen_end`` with the chunk count, then collects ``reply_text``, ``reply_audio`` and
``reply_end`` for that utterance, all verified like every downlink.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Final

from hub.errors import ToyError
from hub.protocol.conversation import (
    UTTERANCE_ID_SIZE,
    AudioChunk,
    Codec,
    encode_audio,
    join_opus_packets,
    parse_audio,
    split_opus_packets,
    utterance_hex,
)
from hub.protocol.kinds import Kind
from hub.toy.simulator import SimulatedToy
from hub.voice.audio import OpusDecoder, OpusEncoder

UPLINK_RATE: Final = 16_000
PCM_CHUNK_BYTES: Final = 16_000  # half a second
OPUS_PACKETS_PER_CHUNK: Final = 5  # 300 ms


@dataclass
class Reply:
    """What the toy heard back for one utterance."""

    texts: list[str] = field(default_factory=list)
    pcm16: bytes = b""
    sample_rate: int = 16_000
    reason: str = ""
    errors: list[str] = field(default_factory=list)
    hub_timings_ms: dict[str, float] = field(default_factory=dict)
    first_audio_ms: float | None = None  # after listen_end was sent, on the toy's clock
    total_ms: float = 0.0
    chunks: int = 0

    @property
    def text(self) -> str:
        """The reply's sentences joined."""
        return " ".join(self.texts)


def audio_chunks(utterance: bytes, pcm16: bytes, codec: Codec) -> list[bytes]:
    """The ``audio`` payloads of ``pcm16`` (16 kHz) in ``codec``."""
    if codec is Codec.PCM16:
        parts = [pcm16[i : i + PCM_CHUNK_BYTES] for i in range(0, len(pcm16), PCM_CHUNK_BYTES)]
    else:
        packets = OpusEncoder(UPLINK_RATE, 60).encode(pcm16)
        parts = [
            join_opus_packets(packets[i : i + OPUS_PACKETS_PER_CHUNK])
            for i in range(0, len(packets), OPUS_PACKETS_PER_CHUNK)
        ]
    return [encode_audio(AudioChunk(utterance, seq, codec, data)) for seq, data in enumerate(parts)]


class Talker:
    """Conversation on a connected :class:`SimulatedToy`."""

    def __init__(self, toy: SimulatedToy) -> None:
        self._toy = toy
        self.playback: dict[str, Any] = {"codec": "pcm16", "sample_rate": 16_000}

    @property
    def toy(self) -> SimulatedToy:
        """The toy this talker speaks through."""
        return self._toy

    async def hello(
        self,
        codecs: tuple[str, ...] = ("pcm16",),
        sample_rates: tuple[int, ...] = (16_000,),
        timeout_s: float = 5.0,
    ) -> dict[str, Any]:
        """Announce what the toy plays; the hub's ``config``."""
        body = {"firmware": "sim-1", "codecs": list(codecs), "sample_rates": list(sample_rates)}
        await self._toy.send(Kind.HELLO, json.dumps(body).encode())
        frame = await self._toy.receive(Kind.CONFIG, timeout_s)
        config: dict[str, Any] = json.loads(frame.payload)
        self.playback = config["audio_out"]
        return config

    async def say_audio(
        self, pcm16: bytes, codec: Codec = Codec.PCM16, timeout_s: float = 60.0
    ) -> Reply:
        """Speak ``pcm16`` (16 kHz mono) and wait for the whole reply."""
        utterance = os.urandom(UTTERANCE_ID_SIZE)
        start = {"utterance": utterance_hex(utterance), "codec": codec.wire_name}
        await self._toy.send(Kind.LISTEN_START, json.dumps(start).encode())
        payloads = audio_chunks(utterance, pcm16, codec)
        for payload in payloads:
            await self._toy.send(Kind.AUDIO, payload)
        end = {"utterance": utterance_hex(utterance), "chunks": len(payloads)}
        await self._toy.send(Kind.LISTEN_END, json.dumps(end).encode())
        return await self.hear(utterance, timeout_s)

    async def say_text(self, text: str, timeout_s: float = 60.0) -> Reply:
        """Type ``text`` and wait for the whole reply."""
        utterance = os.urandom(UTTERANCE_ID_SIZE)
        body = {"utterance": utterance_hex(utterance), "text": text}
        await self._toy.send(Kind.TEXT, json.dumps(body).encode())
        return await self.hear(utterance, timeout_s)

    async def abort(self, utterance: bytes | None = None) -> None:
        """Interrupt the toy's reply."""
        body = b"" if utterance is None else json.dumps({"utterance": utterance.hex()}).encode()
        await self._toy.send(Kind.ABORT, body)

    async def hear(self, utterance: bytes, timeout_s: float) -> Reply:
        """Collect the reply to ``utterance`` until its ``reply_end``.

        Raises:
            ToyError: when no ``reply_end`` arrives in time.
        """
        reply = Reply(sample_rate=int(self.playback["sample_rate"]))
        sent_at = time.perf_counter()
        opus = self.playback["codec"] == "opus"
        decoder = OpusDecoder(reply.sample_rate) if opus else None
        audio: dict[int, bytes] = {}
        wanted = {Kind.REPLY_TEXT, Kind.REPLY_AUDIO, Kind.REPLY_END, Kind.ERROR}
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToyError(f"no reply_end within {timeout_s:g} s")
            frame = await self._toy.receive_any(wanted, remaining)
            if frame.kind is Kind.REPLY_AUDIO:
                chunk = parse_audio(frame.payload)
                if chunk.utterance != utterance:
                    continue
                if reply.first_audio_ms is None:
                    reply.first_audio_ms = (time.perf_counter() - sent_at) * 1000
                audio[chunk.seq] = chunk.data
                continue
            body = json.loads(frame.payload)
            if body.get("utterance") != utterance.hex():
                continue
            if frame.kind is Kind.REPLY_TEXT:
                reply.texts.append(str(body["text"]))
            elif frame.kind is Kind.ERROR:
                reply.errors.append(str(body["code"]))
            else:
                reply.reason = str(body["reason"])
                reply.chunks = int(body["chunks"])
                reply.hub_timings_ms = dict(body.get("timings_ms", {}))
                break
        reply.total_ms = (time.perf_counter() - sent_at) * 1000
        ordered = [audio[seq] for seq in sorted(audio)]
        if decoder is not None:
            reply.pcm16 = b"".join(decoder.decode_all(split_opus_packets(c)) for c in ordered)
        else:
            reply.pcm16 = b"".join(ordered)
        return reply
