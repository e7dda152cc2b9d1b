"""Speaking to a toy: text to its speech, in the format the toy announced, as signed chunks.

Each reply sentence goes out as a ``reply_text`` and then ``reply_audio`` chunks as soon as
text-to-speech yields audio: resampled to the toy's rate, Opus-coded when it plays Opus, and
cut to fit the frame limit. Nothing waits for a whole reply. Before every chunk the speaker
asks whether the toy aborted this utterance (possibly through another replica), so a
barge-in stops the stream at the next chunk at the latest.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from hub.downlink import DownlinkPublisher
from hub.protocol.conversation import (
    AUDIO_HEADER,
    AudioChunk,
    Codec,
    Playback,
    encode_audio,
    join_opus_packets,
    reply_text_message,
)
from hub.protocol.frames import MAX_PAYLOAD_SIZE
from hub.protocol.kinds import Kind
from hub.voice.audio import OpusEncoder, chunk, resample
from hub.voice.providers import TextToSpeech

# Room for the audio header; PCM stays sample-aligned.
MAX_AUDIO_DATA: Final = MAX_PAYLOAD_SIZE - AUDIO_HEADER.size
# PCM chunks are sent when this much is buffered (about 0.25 s at 16 kHz), or at the end.
PCM_FLUSH_BYTES: Final = 8_000
# Opus packets are grouped until this many are buffered (0.24 s), or at the end.
OPUS_FLUSH_PACKETS: Final = 4


class Aborted(Exception):
    """The toy aborted the utterance this speaker serves."""


@dataclass
class Speaker:
    """The downlink side of one turn: counts what it sent and when the first audio left."""

    downlinks: DownlinkPublisher
    device_id: str
    utterance: bytes
    playback: Playback
    aborted: Callable[[], Awaitable[bool]]
    chunks_sent: int = 0
    sentences_sent: int = 0
    first_audio_at: float | None = None
    spoken: list[str] = field(default_factory=list)
    _opus: OpusEncoder | None = None

    def __post_init__(self) -> None:
        if self.playback.codec is Codec.OPUS:
            self._opus = OpusEncoder(self.playback.sample_rate, 60)

    async def say(self, text: str, tts: TextToSpeech, language: str) -> None:
        """Speak one sentence (or a short canned line) with ``tts``.

        Raises:
            Aborted: when the toy aborted; nothing more is sent.
            ProviderError: when text-to-speech fails.
            BrokerUnavailable: when the hub lost the broker.
        """
        await self._check()
        await self.downlinks.send(
            self.device_id,
            Kind.REPLY_TEXT,
            reply_text_message(self.utterance, self.sentences_sent, text),
        )
        self.sentences_sent += 1
        self.spoken.append(text)
        buffered = b""
        packets: list[bytes] = []
        async for pcm in tts.synthesize(text, language):
            converted = resample(pcm, tts.sample_rate, self.playback.sample_rate)
            if self._opus is not None:
                packets += self._opus.feed(converted)
                if len(packets) >= OPUS_FLUSH_PACKETS:
                    await self._send_opus(packets)
                    packets = []
            else:
                buffered += converted
                if len(buffered) >= PCM_FLUSH_BYTES:
                    await self._send_pcm(buffered)
                    buffered = b""
        if self._opus is not None:
            packets += self._opus.flush()
            if packets:
                await self._send_opus(packets)
        elif buffered:
            await self._send_pcm(buffered)

    async def _check(self) -> None:
        if await self.aborted():
            raise Aborted

    async def _send_pcm(self, pcm: bytes) -> None:
        for part in chunk(pcm, MAX_AUDIO_DATA, align=2):
            await self._send(Codec.PCM16, part)

    async def _send_opus(self, packets: list[bytes]) -> None:
        group: list[bytes] = []
        size = 0
        for packet in packets:
            framed = 2 + len(packet)
            if group and size + framed > MAX_AUDIO_DATA:
                await self._send(Codec.OPUS, join_opus_packets(group))
                group, size = [], 0
            group.append(packet)
            size += framed
        if group:
            await self._send(Codec.OPUS, join_opus_packets(group))

    async def _send(self, codec: Codec, data: bytes) -> None:
        await self._check()
        payload = encode_audio(AudioChunk(self.utterance, self.chunks_sent, codec, data))
        await self.downlinks.send(self.device_id, Kind.REPLY_AUDIO, payload)
        self.chunks_sent += 1
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
