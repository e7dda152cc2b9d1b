"""Audio formats at the edges: resampling, Opus, WAV, chunking and levels."""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from hub.voice.audio import (
    OpusDecoder,
    OpusEncoder,
    chunk,
    duration_s,
    float_to_pcm16,
    is_silent,
    level,
    pcm16_to_float,
    pcm_to_wav,
    resample,
    wav_to_pcm,
)


def tone(frequency: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(rate * seconds)) / rate
    return float_to_pcm16(amplitude * np.sin(2 * np.pi * frequency * t))


def harmonics(rate: int, seconds: float = 1.0) -> bytes:
    """A voiced-speech-like signal: a 150 Hz fundamental with decaying harmonics, vibrato."""
    t = np.arange(round(rate * seconds)) / rate
    phase = 2 * np.pi * (150 * t + 3 * np.sin(2 * np.pi * 5 * t))
    signal = sum(np.sin(k * phase) / k for k in range(1, 20))
    return float_to_pcm16(0.3 * signal / np.max(np.abs(signal)))


def dominant_frequency(pcm16: bytes, rate: int) -> float:
    samples = pcm16_to_float(pcm16)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


def spectral_similarity(reference: bytes, decoded: bytes, rate: int = 16_000) -> float:
    """Correlation of the average power spectra below 7 kHz (a lossy speech codec keeps the
    spectrum, not the waveform: Opus may move the phase of harmonics)."""

    def spectrum(pcm16: bytes, size: int = 512) -> npt.NDArray[np.float64]:
        samples = pcm16_to_float(pcm16).astype(np.float64)
        frames = samples[: len(samples) // size * size].reshape(-1, size) * np.hanning(size)
        return np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)

    band = slice(1, 7_000 * 512 // rate)
    decoded = decoded[: len(reference)]
    return float(np.corrcoef(spectrum(reference)[band], spectrum(decoded)[band])[0, 1])


# --- PCM helpers ----------------------------------------------------------------------------


def test_duration_and_conversions() -> None:
    pcm = tone(440, 16_000, seconds=0.5)
    assert duration_s(pcm, 16_000) == pytest.approx(0.5)
    assert float_to_pcm16(pcm16_to_float(pcm)) == pcm
    with pytest.raises(ValueError, match="even"):
        duration_s(b"\x00", 16_000)
    with pytest.raises(ValueError, match="positive"):
        duration_s(b"", 0)


def test_float_to_pcm16_clips_rather_than_wraps() -> None:
    clipped = np.frombuffer(float_to_pcm16(np.array([1.5, -1.5, 0.0])), dtype="<i2")
    assert clipped.tolist() == [32767, -32768, 0]


def test_levels() -> None:
    pcm = tone(1000, 16_000, amplitude=0.5)
    measured = level(pcm)
    assert measured.peak == pytest.approx(0.5, abs=1e-3)
    assert measured.rms == pytest.approx(0.5 / math.sqrt(2), abs=1e-3)
    assert measured.rms_dbfs == pytest.approx(-9.03, abs=0.05)
    assert level(b"").rms_dbfs == -math.inf
    assert level(bytes(3200)).peak_dbfs == -math.inf
    assert is_silent(bytes(3200))
    assert not is_silent(pcm)


# --- resampling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_rate", "to_rate"),
    [(22_050, 16_000), (16_000, 22_050), (48_000, 16_000), (16_000, 48_000), (44_100, 16_000)],
)
def test_resample_keeps_frequency_and_level(from_rate: int, to_rate: int) -> None:
    source = tone(440, from_rate)
    converted = resample(source, from_rate, to_rate)
    assert len(converted) // 2 == from_rate * to_rate // from_rate  # one second either way
    assert dominant_frequency(converted, to_rate) == pytest.approx(440, abs=2)
    settled = converted[400:-400]  # the filter's edges see the silence around the signal
    assert level(settled).rms_dbfs == pytest.approx(level(source).rms_dbfs, abs=0.1)


def test_resample_keeps_the_speech_band_and_filters_what_would_alias() -> None:
    # 7 kHz is inside the 16 kHz output band; 10 kHz is not and would fold to 6 kHz.
    kept = resample(tone(7_000, 22_050), 22_050, 16_000)
    assert level(kept[800:-800]).rms_dbfs == pytest.approx(-9.03, abs=1.0)
    folded = resample(tone(10_000, 22_050), 22_050, 16_000)
    assert level(folded[800:-800]).rms_dbfs < -9.03 - 50


def test_resample_same_rate_empty_and_bad_input() -> None:
    pcm = tone(440, 16_000, seconds=0.1)
    assert resample(pcm, 16_000, 16_000) == pcm
    assert resample(b"", 22_050, 16_000) == b""
    with pytest.raises(ValueError, match="even"):
        resample(b"\x00\x00\x00", 22_050, 16_000)
    with pytest.raises(ValueError, match="positive"):
        resample(pcm, 0, 16_000)


def test_resample_odd_ratio_uses_the_nearest_phase() -> None:
    converted = resample(tone(440, 44_101), 44_101, 16_000)
    assert dominant_frequency(converted, 16_000) == pytest.approx(440, abs=2)


# --- Opus -----------------------------------------------------------------------------------


def test_opus_packets_are_60_ms_and_the_last_is_padded() -> None:
    encoder = OpusEncoder(16_000)
    packets = encoder.encode(tone(440, 16_000, seconds=1.0))
    assert len(packets) == math.ceil(1000 / 60)  # 16 full frames and one padded
    decoder = OpusDecoder(16_000)
    assert [len(decoder.decode(packet)) // 2 for packet in packets] == [960] * len(packets)
    assert all(len(packet) < 400 for packet in packets)  # compressed, not raw (1,920 bytes)


@pytest.mark.parametrize("rate", [8_000, 12_000, 16_000, 24_000, 48_000])
def test_opus_round_trip_keeps_a_tone(rate: int) -> None:
    source = tone(440, rate)
    decoded = OpusDecoder(rate).decode_all(OpusEncoder(rate).encode(source))
    assert dominant_frequency(decoded[: len(source)], rate) == pytest.approx(440, abs=2)
    assert level(decoded).rms_dbfs == pytest.approx(level(source).rms_dbfs, abs=1.0)


def test_opus_round_trip_keeps_a_voice_like_signal() -> None:
    source = harmonics(16_000)
    decoded = OpusDecoder(16_000).decode_all(OpusEncoder(16_000).encode(source))
    assert spectral_similarity(source, decoded) > 0.95


def test_opus_feed_streams_across_chunks() -> None:
    source = harmonics(16_000, seconds=0.5)
    streamed = OpusEncoder(16_000)
    packets: list[bytes] = []
    for piece in chunk(source, 1_234, align=2):
        packets += streamed.feed(piece)
    packets += streamed.flush()
    assert streamed.flush() == []
    assert len(packets) == len(OpusEncoder(16_000).encode(source))
    decoded = OpusDecoder(16_000).decode_all(packets)
    assert spectral_similarity(source, decoded) > 0.95


@pytest.mark.parametrize("rate", [11_025, 22_050, 44_100, 0])
def test_opus_refuses_other_rates(rate: int) -> None:
    with pytest.raises(ValueError, match="Opus supports"):
        OpusEncoder(rate)
    with pytest.raises(ValueError, match="Opus supports"):
        OpusDecoder(rate)


def test_opus_refuses_bad_frames_and_packets() -> None:
    with pytest.raises(ValueError, match="frames"):
        OpusEncoder(16_000, frame_ms=30)
    with pytest.raises(ValueError, match="even"):
        OpusEncoder(16_000).feed(b"\x00")
    decoder = OpusDecoder(16_000)
    with pytest.raises(ValueError, match="empty"):
        decoder.decode(b"")
    with pytest.raises(ValueError, match="Opus packet"):
        decoder.decode(b"\xff\xff\xff")


# --- WAV ------------------------------------------------------------------------------------


def test_wav_round_trip() -> None:
    pcm = harmonics(16_000, seconds=0.3)
    wav = pcm_to_wav(pcm, 16_000)
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    assert wav_to_pcm(wav) == (pcm, 16_000)
    assert wav_to_pcm(pcm_to_wav(b"", 8_000)) == (b"", 8_000)


def write(samples: npt.NDArray[np.float64], rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24", "PCM_32", "PCM_U8"])
def test_wav_to_pcm_converts_sample_formats(subtype: str) -> None:
    expected = harmonics(22_050, seconds=0.2)
    samples = pcm16_to_float(expected).astype(np.float64)
    pcm, rate = wav_to_pcm(write(samples, 22_050, subtype))
    assert rate == 22_050
    assert len(pcm) == len(expected)
    tolerance = 1 / 128 if subtype == "PCM_U8" else 1 / 32768
    difference = pcm16_to_float(pcm) - pcm16_to_float(expected)
    assert float(np.max(np.abs(difference))) <= tolerance


def test_wav_to_pcm_downmixes_stereo() -> None:
    left = pcm16_to_float(tone(440, 16_000, amplitude=0.4)).astype(np.float64)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    pcm, rate = wav_to_pcm(write(stereo, 16_000, "PCM_16"))
    assert rate == 16_000
    assert level(pcm).peak == pytest.approx(0.2, abs=1e-3)
    assert dominant_frequency(pcm, 16_000) == pytest.approx(440, abs=2)


def test_wav_to_pcm_refuses_what_is_not_sound() -> None:
    with pytest.raises(ValueError, match="sound file"):
        wav_to_pcm(b"not a wav file at all")
    with pytest.raises(ValueError, match="sound file"):
        wav_to_pcm(b"")
    with pytest.raises(ValueError, match="even"):
        pcm_to_wav(b"\x00", 16_000)


# --- chunking -------------------------------------------------------------------------------


def test_chunk() -> None:
    data = bytes(range(10))
    assert chunk(data, 4) == [data[0:4], data[4:8], data[8:10]]
    assert chunk(data, 10) == [data]
    assert chunk(data, 100) == [data]
    assert chunk(b"", 4) == []
    assert b"".join(chunk(data, 3)) == data


def test_chunk_aligns_to_samples() -> None:
    pieces = chunk(bytes(11), 5, align=2)
    assert [len(piece) for piece in pieces] == [4, 4, 3]
    with pytest.raises(ValueError, match="max_size"):
        chunk(b"abc", 0)
    with pytest.raises(ValueError, match="max_size"):
        chunk(b"abc", 1, align=2)
    with pytest.raises(ValueError, match="align"):
        chunk(b"abc", 4, align=0)
