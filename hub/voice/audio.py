"""Audio formats at the edges of a conversation turn: PCM16, Opus, WAV, resampling, levels.

Inside the hub, audio is always raw PCM16 little-endian mono (:mod:`hub.voice.providers`).
Toys send and receive Opus; WAV is what HTTP speech APIs and test fixtures speak. Everything
here is a pure function over bytes (or a small codec object holding libopus state) and works
in memory only: no audio is ever written to disk or logged.

Bad input (an odd number of bytes for PCM16, a rate Opus does not support, a corrupt packet
or file) raises :class:`ValueError`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import opuslib_next  # type: ignore[import-untyped]
import soundfile  # type: ignore[import-untyped]

SAMPLE_WIDTH: Final = 2  # PCM16
OPUS_SAMPLE_RATES: Final = frozenset({8_000, 12_000, 16_000, 24_000, 48_000})
OPUS_FRAME_MS: Final = frozenset({10, 20, 40, 60})
# The longest frame an Opus packet can carry (RFC 6716, section 3.2.5): the decoder's buffer.
_OPUS_MAX_PACKET_MS: Final = 120
_PCM16_SCALE: Final = 32768.0

# Resampling filter: a Kaiser-windowed sinc, 32 zero crossings each side, cut off a little
# below the lower Nyquist frequency so the transition band ends before aliasing starts.
_ZERO_CROSSINGS: Final = 32
_KAISER_BETA: Final = 8.6
_ROLLOFF: Final = 0.92
# Rational ratios with more phases than this (e.g. 44_101 Hz) use the nearest of this many.
_MAX_PHASES: Final = 1024
_BLOCK: Final = 8192  # output samples computed at once, bounding memory for long audio

Float32Array = npt.NDArray[np.float32]


def _check_pcm16(pcm16: bytes) -> None:
    if len(pcm16) % SAMPLE_WIDTH:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm16)}")


def _check_rate(rate: int) -> None:
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")


def sample_count(pcm16: bytes) -> int:
    """The number of samples in mono ``pcm16``."""
    _check_pcm16(pcm16)
    return len(pcm16) // SAMPLE_WIDTH


def duration_s(pcm16: bytes, rate: int) -> float:
    """How long mono ``pcm16`` at ``rate`` Hz plays, in seconds."""
    _check_rate(rate)
    return sample_count(pcm16) / rate


def pcm16_to_float(pcm16: bytes) -> Float32Array:
    """PCM16 as float32 samples in [-1, 1) (the form speech models take)."""
    _check_pcm16(pcm16)
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / np.float32(_PCM16_SCALE)


def float_to_pcm16(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    """Float samples in [-1, 1] as PCM16, rounded and clipped (never wrapped)."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * _PCM16_SCALE)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


@dataclass(frozen=True, slots=True)
class Level:
    """Peak and RMS of a signal as fractions of full scale (0 is silence, 1 full scale)."""

    peak: float
    rms: float

    @property
    def peak_dbfs(self) -> float:
        """The peak in dB relative to full scale (``-inf`` for digital silence)."""
        return _dbfs(self.peak)

    @property
    def rms_dbfs(self) -> float:
        """The RMS in dB relative to full scale (``-inf`` for digital silence)."""
        return _dbfs(self.rms)


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def level(pcm16: bytes) -> Level:
    """The peak and RMS level of ``pcm16`` (silence detection, tests)."""
    samples = pcm16_to_float(pcm16).astype(np.float64)
    if samples.size == 0:
        return Level(0.0, 0.0)
    return Level(float(np.max(np.abs(samples))), float(np.sqrt(np.mean(samples * samples))))


def is_silent(pcm16: bytes, threshold_dbfs: float = -50.0) -> bool:
    """True when the RMS level of ``pcm16`` is below ``threshold_dbfs``."""
    return level(pcm16).rms_dbfs < threshold_dbfs


def chunk(data: bytes, max_size: int, *, align: int = 1) -> list[bytes]:
    """``data`` cut into pieces of at most ``max_size`` bytes, in order.

    Every piece but the last is ``max_size`` rounded down to a multiple of ``align`` (pass
    ``align=2`` for PCM16 so no sample is split across payloads). No data gives no pieces.

    Raises:
        ValueError: when ``align`` is not positive or ``max_size`` is smaller than it.
    """
    if align < 1:
        raise ValueError(f"align must be positive, got {align}")
    size = max_size - max_size % align
    if size < 1:
        raise ValueError(f"max_size must be at least {align}, got {max_size}")
    return [data[start : start + size] for start in range(0, len(data), size)]


# --- resampling ---------------------------------------------------------------------------


def _kaiser(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The Kaiser window evaluated at ``x`` in [-1, 1] (zero outside)."""
    inside = np.clip(1.0 - x * x, 0.0, None)
    window = np.i0(_KAISER_BETA * np.sqrt(inside)) / np.i0(_KAISER_BETA)
    return cast(npt.NDArray[np.float64], np.where(np.abs(x) <= 1.0, window, 0.0))


def _filter_bank(phases: int, cutoff: float, half: int) -> npt.NDArray[np.float64]:
    """One windowed-sinc filter per fractional phase, each normalised to unity DC gain.

    Row ``p`` holds the weights of input samples ``i - half + 1 .. i + half`` for an output
    sample at input position ``i + p / phases``.
    """
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)
    distance = (np.arange(phases, dtype=np.float64) / phases)[:, None] - offsets[None, :]
    bank = cutoff * np.sinc(cutoff * distance) * _kaiser(distance / half)
    return cast(npt.NDArray[np.float64], bank / bank.sum(axis=1, keepdims=True))


def resample(pcm16: bytes, from_rate: int, to_rate: int) -> bytes:
    """Mono ``pcm16`` at ``from_rate`` Hz converted to ``to_rate`` Hz.

    A band-limited (windowed-sinc, polyphase) resampler: content above the lower of the two
    Nyquist frequencies is filtered out rather than aliased, and the level is kept. The output
    has ``floor(n * to_rate / from_rate)`` samples.

    Raises:
        ValueError: for an odd number of bytes or a rate that is not positive.
    """
    _check_rate(from_rate)
    _check_rate(to_rate)
    _check_pcm16(pcm16)
    if from_rate == to_rate or not pcm16:
        return pcm16
    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    cutoff = _ROLLOFF * min(1.0, up / down)  # relative to the input Nyquist frequency
    half = math.ceil(_ZERO_CROSSINGS / cutoff)
    phases = min(up, _MAX_PHASES)
    bank = _filter_bank(phases, cutoff, half)

    source = pcm16_to_float(pcm16).astype(np.float64)
    padded = np.concatenate([np.zeros(half), source, np.zeros(half + 1)])
    total = len(source) * up // down
    taps = np.arange(-half + 1, half + 1)
    out = np.empty(total, dtype=np.float64)
    for start in range(0, total, _BLOCK):
        n = np.arange(start, min(start + _BLOCK, total), dtype=np.int64)
        position = n * down
        whole, remainder = position // up, position % up
        phase = remainder if phases == up else (remainder * phases) // up
        window = padded[(whole + half)[:, None] + taps[None, :]]
        out[start : start + len(n)] = np.einsum("ij,ij->i", window, bank[phase])
    return float_to_pcm16(out)


# --- Opus ---------------------------------------------------------------------------------


def _check_opus_rate(sample_rate: int) -> None:
    if sample_rate not in OPUS_SAMPLE_RATES:
        rates = ", ".join(str(rate) for rate in sorted(OPUS_SAMPLE_RATES))
        raise ValueError(f"Opus supports {rates} Hz, not {sample_rate}")


class OpusEncoder:
    """Mono PCM16 to Opus packets of ``frame_ms`` each (application VOIP: speech).

    :meth:`feed` keeps a partial frame for the next call, so a stream of TTS chunks becomes
    one continuous stream of packets; :meth:`flush` pads the last frame with silence.
    """

    def __init__(self, sample_rate: int, frame_ms: int = 60, *, bitrate: int | None = None) -> None:
        """Raises:
        ValueError: for a rate Opus does not support or a frame length it cannot code.
        """
        _check_opus_rate(sample_rate)
        if frame_ms not in OPUS_FRAME_MS:
            lengths = ", ".join(str(ms) for ms in sorted(OPUS_FRAME_MS))
            raise ValueError(f"Opus frames are {lengths} ms, not {frame_ms}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self._frame_bytes = self.frame_samples * SAMPLE_WIDTH
        self._encoder = opuslib_next.Encoder(sample_rate, 1, opuslib_next.APPLICATION_VOIP)
        if bitrate is not None:
            self._encoder.bitrate = bitrate
        self._pending = b""

    def feed(self, pcm16: bytes) -> list[bytes]:
        """The packets of every whole frame buffered so far; the remainder waits.

        Raises:
            ValueError: for an odd number of bytes.
        """
        _check_pcm16(pcm16)
        buffered = self._pending + pcm16
        whole = len(buffered) - len(buffered) % self._frame_bytes
        self._pending = buffered[whole:]
        return [
            self._encode_frame(buffered[start : start + self._frame_bytes])
            for start in range(0, whole, self._frame_bytes)
        ]

    def flush(self) -> list[bytes]:
        """The last partial frame, padded with silence, as a packet (none when empty)."""
        if not self._pending:
            return []
        frame = self._pending.ljust(self._frame_bytes, b"\x00")
        self._pending = b""
        return [self._encode_frame(frame)]

    def encode(self, pcm16: bytes) -> list[bytes]:
        """``pcm16`` (after anything fed before) as packets, the last padded with silence."""
        return self.feed(pcm16) + self.flush()

    def _encode_frame(self, frame: bytes) -> bytes:
        try:
            return cast(bytes, self._encoder.encode(frame, self.frame_samples))
        except opuslib_next.OpusError as error:
            raise ValueError(f"Opus could not encode a frame: {error}") from error


class OpusDecoder:
    """Opus packets back to mono PCM16 at ``sample_rate`` (whatever rate they were coded at)."""

    def __init__(self, sample_rate: int) -> None:
        """Raises:
        ValueError: for a rate Opus does not support.
        """
        _check_opus_rate(sample_rate)
        self.sample_rate = sample_rate
        self._max_samples = sample_rate * _OPUS_MAX_PACKET_MS // 1000
        self._decoder = opuslib_next.Decoder(sample_rate, 1)

    def decode(self, packet: bytes) -> bytes:
        """The PCM16 of one packet.

        Raises:
            ValueError: for an empty or corrupt packet.
        """
        if not packet:
            raise ValueError("an empty Opus packet")
        try:
            return cast(bytes, self._decoder.decode(packet, self._max_samples))
        except opuslib_next.OpusError as error:
            raise ValueError(f"not a valid Opus packet: {error}") from error

    def decode_all(self, packets: list[bytes]) -> bytes:
        """The PCM16 of ``packets``, in order."""
        return b"".join(self.decode(packet) for packet in packets)


# --- WAV ----------------------------------------------------------------------------------


def pcm_to_wav(pcm16: bytes, rate: int) -> bytes:
    """Mono ``pcm16`` at ``rate`` Hz as a 16-bit WAV file, built in memory.

    Raises:
        ValueError: for an odd number of bytes or a rate that is not positive.
    """
    _check_rate(rate)
    _check_pcm16(pcm16)
    samples = np.frombuffer(pcm16, dtype="<i2")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    """The mono PCM16 and rate of a sound file (WAV, or any format libsndfile reads).

    Several channels are averaged into one; float, 8-, 24- and 32-bit samples become PCM16.

    Raises:
        ValueError: when ``data`` is not a sound file libsndfile can read.
    """
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise ValueError(f"not a readable sound file: {error}") from error
    mono = cast(npt.NDArray[np.float64], samples).mean(axis=1)
    return float_to_pcm16(mono), int(rate)
