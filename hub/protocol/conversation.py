"""Payloads of the conversation kinds (docs/protocol.md, "Conversation"), sans-IO.

Control messages are small UTF-8 JSON objects; audio travels as binary so that a 60 ms Opus
packet costs a few bytes of framing, not base64. Every audio payload names its utterance and
its sequence number, because with several hub replicas on a shared subscription the chunks of
one utterance arrive at different replicas and out of order.

Audio payload (``audio`` up, ``reply_audio`` down)::

    offset size field
    0      8    utterance id (8 random bytes, chosen by the toy; the hub echoes it)
    8      4    seq, u32 big-endian, 0, 1, 2, ... within the utterance
    12     1    codec: 0 = PCM16 LE mono, 1 = Opus
    13     ...  data: PCM16 samples, or Opus packets each prefixed by a u16 BE length

Parsing raises :class:`MessageError` with a reason; the handlers answer it with an ``error``
downlink and count it, and nothing else happens.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from hub.errors import TeddyError

UTTERANCE_ID_SIZE: Final = 8
AUDIO_HEADER = struct.Struct(">8sIB")
OPUS_LENGTH = struct.Struct(">H")
MAX_JSON_PAYLOAD: Final = 4096
MAX_TEXT_CHARS: Final = 500
# Far more chunks than the longest utterance needs (60 s in 60 ms packets, one a chunk).
MAX_CHUNKS: Final = 1024
UPLINK_SAMPLE_RATE: Final = 16_000
OPUS_FRAME_MS: Final = 60
PLAYBACK_RATES: Final = (8_000, 12_000, 16_000, 22_050, 24_000, 44_100, 48_000)
OPUS_RATES: Final = (8_000, 12_000, 16_000, 24_000, 48_000)


class MessageError(TeddyError):
    """A conversation payload that does not follow docs/protocol.md; ``reason`` says how."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


class Codec(IntEnum):
    """Audio codecs on the wire."""

    PCM16 = 0
    OPUS = 1

    @property
    def wire_name(self) -> str:
        """The name in JSON messages."""
        return "pcm16" if self is Codec.PCM16 else "opus"


CODEC_BY_NAME: Final = {codec.wire_name: codec for codec in Codec}


def utterance_hex(utterance: bytes) -> str:
    """The utterance id as JSON messages carry it."""
    return utterance.hex()


def parse_utterance_hex(value: object) -> bytes:
    """An utterance id from JSON (16 lowercase hex characters).

    Raises:
        MessageError: otherwise.
    """
    if not isinstance(value, str) or len(value) != 2 * UTTERANCE_ID_SIZE:
        raise MessageError("malformed", "utterance must be 16 hex characters")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MessageError("malformed", "utterance must be 16 hex characters") from None
    if raw.hex() != value:
        raise MessageError("malformed", "utterance must be lowercase hex")
    return raw


def _json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_JSON_PAYLOAD:
        raise MessageError("malformed", f"JSON payload over {MAX_JSON_PAYLOAD} bytes")
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MessageError("malformed", "payload is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise MessageError("malformed", "payload is not a JSON object")
    return value


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Hello:
    """What a toy plays (``hello``): the hub answers ``config`` and replies in that format."""

    firmware: str
    codecs: tuple[Codec, ...]
    sample_rates: tuple[int, ...]


def parse_hello(payload: bytes) -> Hello:
    """Raises MessageError for anything but a well-formed ``hello``."""
    body = _json_object(payload)
    firmware = body.get("firmware", "")
    codecs = body.get("codecs")
    rates = body.get("sample_rates")
    if not isinstance(firmware, str) or len(firmware) > 32:
        raise MessageError("malformed", "firmware must be a string of at most 32 characters")
    if not isinstance(codecs, list) or not codecs or len(codecs) > 4:
        raise MessageError("malformed", "codecs must be a non-empty list")
    if not isinstance(rates, list) or not rates or len(rates) > 8:
        raise MessageError("malformed", "sample_rates must be a non-empty list")
    parsed_codecs = []
    for name in codecs:
        codec = CODEC_BY_NAME.get(name) if isinstance(name, str) else None
        if codec is None:
            raise MessageError("unsupported", f"unknown codec {name!r}")
        parsed_codecs.append(codec)
    if not all(isinstance(rate, int) and rate in PLAYBACK_RATES for rate in rates):
        raise MessageError("unsupported", f"sample rates must be among {PLAYBACK_RATES}")
    return Hello(firmware, tuple(parsed_codecs), tuple(rates))


@dataclass(frozen=True, slots=True)
class Playback:
    """The format the hub sends a toy's replies in."""

    codec: Codec = Codec.PCM16
    sample_rate: int = 16_000

    def to_json(self) -> dict[str, Any]:
        """As the ``config`` message carries it."""
        return {"codec": self.codec.wire_name, "sample_rate": self.sample_rate}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Playback:
        """From :meth:`to_json`'s output (stored state)."""
        return cls(CODEC_BY_NAME[str(value["codec"])], int(value["sample_rate"]))


def choose_playback(hello: Hello) -> Playback:
    """Opus when the toy plays it (the highest Opus rate up to 24 kHz it offers), else PCM16
    at 16 kHz if offered, else at its lowest rate: the least bandwidth that still sounds
    like speech.

    Raises:
        MessageError: when nothing the toy offers can be sent.
    """
    if Codec.OPUS in hello.codecs:
        opus_rates = sorted(rate for rate in hello.sample_rates if rate in OPUS_RATES)
        speech_rates = [rate for rate in opus_rates if rate <= 24_000]
        if speech_rates:
            return Playback(Codec.OPUS, speech_rates[-1])
        if opus_rates:
            return Playback(Codec.OPUS, opus_rates[0])
    if Codec.PCM16 not in hello.codecs:
        raise MessageError("unsupported", "no playable codec at a supported rate")
    rate = 16_000 if 16_000 in hello.sample_rates else min(hello.sample_rates)
    return Playback(Codec.PCM16, rate)


@dataclass(frozen=True, slots=True)
class ListenStart:
    """The child pressed the button (``listen_start``)."""

    utterance: bytes
    codec: Codec


@dataclass(frozen=True, slots=True)
class ListenEnd:
    """The child let go (``listen_end``): ``chunks`` audio payloads were sent, seq 0..chunks-1."""

    utterance: bytes
    chunks: int


@dataclass(frozen=True, slots=True)
class TextInput:
    """Typed input (``text``), handled as if it had been said."""

    utterance: bytes
    text: str


@dataclass(frozen=True, slots=True)
class Abort:
    """The child interrupts (``abort``); ``utterance`` None means whatever is playing."""

    utterance: bytes | None


def _codec_field(body: dict[str, Any]) -> Codec:
    codec = CODEC_BY_NAME.get(body.get("codec", "")) if isinstance(body.get("codec"), str) else None
    if codec is None:
        raise MessageError("unsupported", "codec must be 'pcm16' or 'opus'")
    if body.get("sample_rate", UPLINK_SAMPLE_RATE) != UPLINK_SAMPLE_RATE:
        raise MessageError("unsupported", f"uplink audio is {UPLINK_SAMPLE_RATE} Hz")
    return codec


def parse_listen_start(payload: bytes) -> ListenStart:
    """Raises MessageError for anything but a well-formed ``listen_start``."""
    body = _json_object(payload)
    return ListenStart(parse_utterance_hex(body.get("utterance")), _codec_field(body))


def parse_listen_end(payload: bytes) -> ListenEnd:
    """Raises MessageError for anything but a well-formed ``listen_end``."""
    body = _json_object(payload)
    chunks = body.get("chunks")
    if not isinstance(chunks, int) or isinstance(chunks, bool) or not 0 <= chunks <= MAX_CHUNKS:
        raise MessageError("malformed", f"chunks must be an integer from 0 to {MAX_CHUNKS}")
    return ListenEnd(parse_utterance_hex(body.get("utterance")), chunks)


def parse_text(payload: bytes) -> TextInput:
    """Raises MessageError for anything but a well-formed ``text``."""
    body = _json_object(payload)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MessageError("malformed", "text must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise MessageError("too_long", f"text over {MAX_TEXT_CHARS} characters")
    return TextInput(parse_utterance_hex(body.get("utterance")), text.strip())


def parse_abort(payload: bytes) -> Abort:
    """An empty payload aborts whatever plays; else ``{"utterance": ...}``."""
    if not payload:
        return Abort(None)
    body = _json_object(payload)
    value = body.get("utterance")
    return Abort(None if value is None else parse_utterance_hex(value))


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One ``audio`` (or ``reply_audio``) payload."""

    utterance: bytes
    seq: int
    codec: Codec
    data: bytes = field(repr=False)


def encode_audio(chunk: AudioChunk) -> bytes:
    """The payload of one audio chunk."""
    return AUDIO_HEADER.pack(chunk.utterance, chunk.seq, chunk.codec) + chunk.data


def parse_audio(payload: bytes) -> AudioChunk:
    """Raises MessageError for a payload shorter than its header or with an unknown codec."""
    if len(payload) < AUDIO_HEADER.size:
        raise MessageError("malformed", "audio payload shorter than its header")
    utterance, seq, codec_value = AUDIO_HEADER.unpack_from(payload)
    if seq >= MAX_CHUNKS:
        raise MessageError("malformed", f"seq must be below {MAX_CHUNKS}")
    try:
        codec = Codec(codec_value)
    except ValueError:
        raise MessageError("unsupported", f"unknown codec {codec_value}") from None
    data = payload[AUDIO_HEADER.size :]
    if codec is Codec.PCM16 and len(data) % 2:
        raise MessageError("malformed", "PCM16 data has an odd length")
    if codec is Codec.OPUS:
        split_opus_packets(data)  # validates the framing
    return AudioChunk(utterance, seq, codec, data)


def join_opus_packets(packets: list[bytes]) -> bytes:
    """Opus packets, each prefixed with its u16 length."""
    return b"".join(OPUS_LENGTH.pack(len(packet)) + packet for packet in packets)


def split_opus_packets(data: bytes) -> list[bytes]:
    """The packets of :func:`join_opus_packets`.

    Raises:
        MessageError: for a length running past the data or an empty packet.
    """
    packets = []
    offset = 0
    while offset < len(data):
        if offset + OPUS_LENGTH.size > len(data):
            raise MessageError("malformed", "truncated Opus packet length")
        (length,) = OPUS_LENGTH.unpack_from(data, offset)
        offset += OPUS_LENGTH.size
        if length == 0 or offset + length > len(data):
            raise MessageError("malformed", "Opus packet length out of range")
        packets.append(data[offset : offset + length])
        offset += length
    return packets


def config_message(playback: Playback, *, max_utterance_s: float, session: str) -> bytes:
    """The ``config`` downlink answering ``hello``."""
    return _json(
        {
            "session": session,
            "audio_in": {
                "codecs": [codec.wire_name for codec in Codec],
                "sample_rate": UPLINK_SAMPLE_RATE,
                "opus_frame_ms": OPUS_FRAME_MS,
            },
            "audio_out": playback.to_json(),
            "max_utterance_s": max_utterance_s,
        }
    )


def reply_text_message(utterance: bytes, seq: int, text: str) -> bytes:
    """A ``reply_text``: the next sentence the toy is about to speak."""
    return _json({"utterance": utterance_hex(utterance), "seq": seq, "text": text})


def reply_end_message(
    utterance: bytes, *, chunks: int, reason: str, timings_ms: dict[str, float] | None = None
) -> bytes:
    """A ``reply_end``: ``chunks`` ``reply_audio`` payloads were sent; why the reply ended."""
    body: dict[str, Any] = {
        "utterance": utterance_hex(utterance),
        "chunks": chunks,
        "reason": reason,
    }
    if timings_ms:
        body["timings_ms"] = {name: round(value, 1) for name, value in timings_ms.items()}
    return _json(body)


def error_message(utterance: bytes | None, code: str, message: str) -> bytes:
    """An ``error``: ``code`` is stable, ``message`` is for logs on the toy."""
    return _json(
        {
            "utterance": None if utterance is None else utterance_hex(utterance),
            "code": code,
            "message": message,
        }
    )
