"""The offline voice with its real models: Piper speaks, Whisper listens, no network, no mocks.

Timings are printed (run with ``-s`` to see them): Piper's real-time factor and Whisper's
latency for about three seconds of speech on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hub.settings import Settings
from hub.voice.audio import OpusDecoder, OpusEncoder, duration_s, level, resample
from hub.voice.offline import (
    EspeakTextToSpeech,
    PiperTextToSpeech,
    WhisperSpeechToText,
    offline_voice,
    split_sentences,
)
from hub.voice.providers import STT_SAMPLE_RATE, ProviderError, ProviderFailure
from tests.voice.wer import normalise, word_error_rate

GREETING = "Hello, I am your teddy bear. Do you want to hear a story?"
STORY = (
    "Once upon a time, there was a little fox. "
    "One morning she found a shiny red ball under the big old tree in the forest. "
    "She rolled it all the way home, and they played together until the stars came out."
)


@pytest.fixture(scope="module")
def stt() -> WhisperSpeechToText:
    """One Whisper for the module; it loads on the first utterance."""
    return WhisperSpeechToText()


@pytest.fixture(scope="module")
def piper() -> PiperTextToSpeech:
    return PiperTextToSpeech()


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [piece async for piece in chunks]


async def speak(tts: PiperTextToSpeech | EspeakTextToSpeech, text: str) -> bytes:
    """``text`` spoken by ``tts``, at the speech-to-text rate."""
    pcm16 = b"".join(await collect(tts.synthesize(text, "en")))
    return resample(pcm16, tts.sample_rate, STT_SAMPLE_RATE)


def test_wer_helper() -> None:
    assert normalise("Hello, I'm your Teddy Bear!") == ["hello", "i", "am", "your", "teddy", "bear"]
    assert word_error_rate(GREETING, GREETING.upper()) == 0.0
    assert word_error_rate("a b c d", "a x c") == pytest.approx(0.5)
    assert word_error_rate("", "") == 0.0


def test_split_sentences() -> None:
    assert split_sentences(STORY) == [
        "Once upon a time, there was a little fox.",
        "One morning she found a shiny red ball under the big old tree in the forest.",
        "She rolled it all the way home, and they played together until the stars came out.",
    ]
    assert split_sentences("  ") == []
    assert split_sentences("No end") == ["No end"]


async def test_piper_speaks_and_whisper_hears_it(
    piper: PiperTextToSpeech, stt: WhisperSpeechToText
) -> None:
    assert piper.sample_rate == 22_050
    started = time.perf_counter()
    spoken = b"".join(await collect(piper.synthesize(GREETING, "en")))
    synthesis_s = time.perf_counter() - started
    audio_s = duration_s(spoken, piper.sample_rate)
    assert 2.0 < audio_s < 6.0
    assert level(spoken).peak_dbfs > -3.0  # full, but with headroom: not clipped to 0 dBFS
    assert level(spoken).peak <= 0.91

    heard_pcm = resample(spoken, piper.sample_rate, STT_SAMPLE_RATE)
    started = time.perf_counter()
    await stt.warm_up()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    heard = await stt.transcribe(heard_pcm, "en")
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    assert await stt.transcribe(heard_pcm, "en") == heard
    latency_s = time.perf_counter() - started

    wer = word_error_rate(GREETING, heard)
    print(
        f"\npiper: {audio_s:.2f} s of speech in {synthesis_s:.3f} s "
        f"(real-time factor {synthesis_s / audio_s:.3f})"
        f"\nwhisper tiny.en int8: load {load_s:.2f} s; {audio_s:.2f} s of speech in "
        f"{first_s:.3f} s (first), {latency_s:.3f} s (warm); heard {heard!r}, WER {wer:.0%}"
    )
    assert wer <= 0.2, heard


@contextlib.contextmanager
def recording_calls(owner: object, method: str) -> Iterator[list[str]]:
    """Record the thread of every call of ``owner.method`` (a model's heavy call)."""
    threads: list[str] = []
    original = getattr(owner, method)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    setattr(owner, method, recorded)
    try:
        yield threads
    finally:
        delattr(owner, method)  # the class's own method again


async def test_piper_streams_sentence_by_sentence(piper: PiperTextToSpeech) -> None:
    started = time.perf_counter()
    arrivals: list[float] = []
    made_at_arrival: list[int] = []
    with recording_calls(piper._voice, "phoneme_ids_to_audio") as made:
        async for piece in piper.synthesize(STORY, "en"):
            assert piece
            arrivals.append(time.perf_counter() - started)
            made_at_arrival.append(len(made))
    total_s = arrivals[-1]
    print(f"\npiper, three sentences: first audio after {arrivals[0]:.3f} s of {total_s:.3f} s")
    assert len(arrivals) == 3
    # Each sentence's audio is out when only that sentence has been made: unstreamed, all
    # three would have been made before the first arrived.
    assert made_at_arrival == [1, 2, 3]


async def test_synthesis_and_transcription_leave_the_event_loop_free(
    piper: PiperTextToSpeech, stt: WhisperSpeechToText
) -> None:
    utterance = await speak(piper, STORY)  # resampled outside the measured window
    longest_gap = 0.0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal longest_gap
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            longest_gap = max(longest_gap, now - last)
            last = now

    await stt.warm_up()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = time.perf_counter()
    with (
        recording_calls(piper._voice, "phonemize") as phonemised,
        recording_calls(piper._voice, "phoneme_ids_to_audio") as spoken,
        recording_calls(stt._loaded_model(), "transcribe") as transcribed,
    ):
        await collect(piper.synthesize(STORY, "en"))
        await stt.transcribe(utterance, "en")
    busy_s = time.perf_counter() - started
    stop.set()
    await ticker
    print(f"\nevent loop: longest gap {longest_gap:.3f} s in {busy_s:.2f} s of model work")
    # Every heavy call (phonemes, three sentences, the transcription) ran on the voice's
    # worker threads, none on the event loop's: the loop stays free for other toys however
    # slow the machine makes the models.
    computed_on = [*phonemised, *spoken, *transcribed]
    assert (len(phonemised), len(spoken), len(transcribed)) == (1, 3, 1)
    assert all(name.startswith("offline-voice") for name in computed_on), computed_on
    assert threading.current_thread().name not in computed_on


def test_piper_never_logs_what_it_says(piper: PiperTextToSpeech) -> None:
    assert logging.getLogger("piper.voice").getEffectiveLevel() >= logging.INFO


async def test_piper_ignores_phoneme_markup_and_empty_text(piper: PiperTextToSpeech) -> None:
    assert await collect(piper.synthesize("  ", "en")) == []
    pieces = await collect(piper.synthesize("Hello [[ h ə l oʊ ]] friend.", "en"))
    assert pieces
    assert all(len(piece) % 2 == 0 for piece in pieces)


async def test_espeak_fallback_is_understood(stt: WhisperSpeechToText) -> None:
    espeak = EspeakTextToSpeech()
    assert espeak.available()
    assert espeak.sample_rate == 22_050
    started = time.perf_counter()
    pieces = await collect(espeak.synthesize(GREETING, "en"))
    synthesis_s = time.perf_counter() - started
    assert len(pieces) == 2  # one per sentence
    spoken = resample(b"".join(pieces), espeak.sample_rate, STT_SAMPLE_RATE)
    heard = await stt.transcribe(spoken, "en")
    wer = word_error_rate(GREETING, heard)
    audio_s = duration_s(spoken, STT_SAMPLE_RATE)
    print(f"\nespeak-ng: {audio_s:.2f} s in {synthesis_s:.3f} s; heard {heard!r}, WER {wer:.0%}")
    assert wer <= 0.35, heard


async def test_espeak_speaks_a_language_it_lacks_in_english() -> None:
    pieces = await collect(EspeakTextToSpeech().synthesize("Hello.", "zz-ZZ"))
    assert pieces
    assert level(pieces[0]).peak > 0.1


async def test_espeak_missing_binary_is_unavailable() -> None:
    missing = EspeakTextToSpeech("espeak-ng-that-is-not-installed")
    assert not missing.available("espeak-ng-that-is-not-installed")
    with pytest.raises(ProviderError) as caught:
        await collect(missing.synthesize("Hello.", "en"))
    assert caught.value.failure is ProviderFailure.UNAVAILABLE


async def test_speech_through_opus_at_16_khz_is_still_understood(
    piper: PiperTextToSpeech, stt: WhisperSpeechToText
) -> None:
    spoken = await speak(piper, GREETING)
    packets = OpusEncoder(STT_SAMPLE_RATE).encode(spoken)
    received = OpusDecoder(STT_SAMPLE_RATE).decode_all(packets)
    kilobits = sum(len(packet) for packet in packets) * 8 / 1000
    seconds = duration_s(received, STT_SAMPLE_RATE)
    heard = await stt.transcribe(received, "en")
    wer = word_error_rate(GREETING, heard)
    print(f"\nopus 16 kHz: {kilobits / seconds:.1f} kbit/s; heard {heard!r}, WER {wer:.0%}")
    assert wer <= 0.2, heard


async def test_whisper_hears_nothing_in_silence(stt: WhisperSpeechToText) -> None:
    assert await stt.transcribe(b"", "en") == ""
    assert await stt.transcribe(bytes(2 * STT_SAMPLE_RATE * 2), "en") == ""


async def test_whisper_transcribes_other_languages_as_english(
    piper: PiperTextToSpeech, stt: WhisperSpeechToText
) -> None:
    heard = await stt.transcribe(await speak(piper, GREETING), "fr-FR")
    assert word_error_rate(GREETING, heard) <= 0.2, heard


async def test_whisper_rejects_what_it_cannot_take(stt: WhisperSpeechToText) -> None:
    with pytest.raises(ProviderError) as caught:
        await stt.transcribe(b"\x00\x00\x00", "en")
    assert caught.value.failure is ProviderFailure.REJECTED
    too_long = bytes(int(16 * STT_SAMPLE_RATE) * 2)
    with pytest.raises(ProviderError) as caught:
        await stt.transcribe(too_long, "en")
    assert caught.value.failure is ProviderFailure.REJECTED


async def test_a_missing_whisper_model_is_unavailable(tmp_path: Path) -> None:
    missing = WhisperSpeechToText(str(tmp_path / "no-model"))
    with pytest.raises(ProviderError) as caught:
        await missing.transcribe(bytes(3200), "en")
    assert caught.value.failure is ProviderFailure.UNAVAILABLE


def voice_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        esp32_shared_secret=SecretStr("s" * 40),
        jwt_secret_key=SecretStr("j" * 40),
        **overrides,  # type: ignore[arg-type]
    )


def test_offline_voice_prefers_piper(tmp_path: Path) -> None:
    stt, tts = offline_voice(voice_settings(tmp_path))
    assert isinstance(stt, WhisperSpeechToText)
    assert isinstance(tts, PiperTextToSpeech)
    assert tts.sample_rate == 22_050


def test_offline_voice_falls_back_to_espeak(tmp_path: Path) -> None:
    settings = voice_settings(tmp_path, offline_tts_voice=tmp_path / "missing.onnx")
    _, tts = offline_voice(settings)
    assert isinstance(tts, EspeakTextToSpeech)
    assert tts.sample_rate == 22_050
