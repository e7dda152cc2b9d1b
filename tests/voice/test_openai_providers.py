"""The OpenAI-compatible providers, through the real SDK, against the fake server over HTTP.

Nothing is patched: the SDK sends real requests to :mod:`tests.fakes.openai_server` on a free
port of the test's loop, so its retries, timeouts and streaming are what is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from hub.errors import ConfigError
from hub.settings import Settings
from hub.voice.openai_providers import (
    OpenAIVoice,
    cut_reply,
    openai_voice,
)
from hub.voice.providers import STT_SAMPLE_RATE, ChatMessage, ProviderError, ProviderFailure
from tests.fakes.fixtures import fake_openai
from tests.fakes.openai_server import HANG, Failure, FakeOpenAIServer
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

__all__ = ["fake_openai"]  # the fixture, used by name

STORY = "Once upon a time a little bear found a shiny red balloon and floated over the hills."
QUICK_RETRY = 0.01  # Retry-After the fake sends, so retried tests do not wait the SDK's backoff


@contextlib.asynccontextmanager
async def voice_for(
    fake: FakeOpenAIServer, settings: Settings, **overrides: Any
) -> AsyncIterator[OpenAIVoice]:
    voice = openai_voice(fake.settings_for(settings, **overrides))
    try:
        yield voice
    finally:
        await voice.aclose()


def tone(seconds: float, rate: int = STT_SAMPLE_RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()


async def test_transcription_sends_a_16khz_wav_and_returns_the_text(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.transcript = lambda wav: f"heard {len(wav)} bytes"
    pcm = tone(0.5)
    async with voice_for(fake_openai, settings) as voice:
        text = await voice.stt.transcribe(pcm, "en-US")

    (record,) = fake_openai.received("transcriptions")
    wav = record.body["file"]
    assert text == f"heard {len(wav)} bytes"
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getframerate() == STT_SAMPLE_RATE
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        assert reader.readframes(reader.getnframes()) == pcm
    assert record.body["file_content_type"] == "audio/wav"
    assert record.body["language"] == "en"
    assert record.body["model"] == settings.openai_stt_model


async def test_chat_streams_deltas_in_order_before_the_reply_is_complete(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.reply = STORY
    # The last word is held back until the first has arrived here: a client that waited for
    # the whole answer would never get it (and the test would time out), on any machine.
    held = fake_openai.config.hold_last_chunk = asyncio.Event()
    messages = [
        ChatMessage("system", "You are a friendly teddy bear."),
        ChatMessage("user", "Tell me a story."),
    ]
    deltas: list[str] = []
    async with voice_for(fake_openai, settings) as voice, asyncio.timeout(EVENT_TIMEOUT_S):
        async for delta in voice.chat.reply(messages, max_chars=400):
            deltas.append(delta)
            held.set()

    (record,) = fake_openai.received("chat")
    assert "".join(deltas) == STORY
    assert len(deltas) == len(STORY.split(" "))
    assert record.body["messages"] == [
        {"role": "system", "content": "You are a friendly teddy bear."},
        {"role": "user", "content": "Tell me a story."},
    ]
    assert record.body["stream"] is True
    assert record.body["model"] == settings.openai_chat_model
    # A compatible server (OPENAI_BASE_URL set) is sent max_tokens, sized from max_chars.
    assert 400 // 4 <= record.body["max_tokens"] <= 400
    assert "max_completion_tokens" not in record.body


async def test_chat_stops_at_max_chars_on_a_word_boundary(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.reply = STORY
    fake_openai.config.reply_words_per_chunk = 3
    async with voice_for(fake_openai, settings) as voice:
        reply = "".join([d async for d in voice.chat.reply([ChatMessage("user", "hi")], 40)])

    assert len(reply) <= 40
    assert STORY.startswith(reply)
    assert STORY[len(reply.rstrip())] == " "
    assert len(reply) > 30  # cut at the last boundary, not far before it


@pytest.mark.parametrize(
    ("emitted", "text", "max_chars", "expected"),
    [
        (0, "hello world", 20, "hello world"),
        (0, "hello world", 5, "hello"),
        (0, "hello world", 8, "hello"),
        (0, "helloworld", 5, "hello"),  # one long word: cut inside it
        (6, "wonderful", 10, ""),  # a word begun in this delta that does not fit
        (6, "big bear", 10, "big"),
        (10, "more", 10, ""),
    ],
)
def test_cut_reply(emitted: int, text: str, max_chars: int, expected: str) -> None:
    assert cut_reply(emitted, text, max_chars) == expected


async def test_speech_streams_real_24khz_audio_in_chunks(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.speech_chunks = 4
    # The last chunk is held back until audio has arrived here (see the chat test above).
    held = fake_openai.config.hold_last_chunk = asyncio.Event()
    chunks: list[bytes] = []
    async with voice_for(fake_openai, settings) as voice, asyncio.timeout(EVENT_TIMEOUT_S):
        assert voice.tts.sample_rate == 24_000
        async for chunk in voice.tts.synthesize("Hello there, little bear!", "en"):
            chunks.append(chunk)
            held.set()

    (record,) = fake_openai.received("speech")
    assert record.body["response_format"] == "pcm"
    assert record.body["voice"] == settings.openai_tts_voice
    assert record.body["input"] == "Hello there, little bear!"
    assert len(chunks) >= 2
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    samples = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert 0.5 < samples.size / 24_000 < 5  # about a second and a half of speech
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300  # not silence


async def test_moderation_flags_configured_words(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    async with voice_for(fake_openai, settings) as voice:
        assert voice.moderation is not None
        flagged = await voice.moderation.check("Where can I find a weapon?")
        clean = await voice.moderation.check("Where can I find a teddy?")

    assert flagged.flagged
    assert flagged.categories == frozenset({"violence"})
    assert not clean.flagged
    assert clean.categories == frozenset()
    assert [r.body["model"] for r in fake_openai.received("moderations")] == [
        settings.openai_moderation_model
    ] * 2


async def test_no_moderation_provider_without_a_moderation_model(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    async with voice_for(fake_openai, settings, openai_moderation_model=None) as voice:
        assert voice.moderation is None
    assert fake_openai.received() == []


async def test_rate_limit_is_retried_and_then_succeeds(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.reply = "Hi there!"
    fake_openai.config.fail("chat", Failure(429, retry_after_s=QUICK_RETRY))
    async with voice_for(fake_openai, settings, provider_retries=2) as voice:
        reply = "".join([d async for d in voice.chat.reply([ChatMessage("user", "hi")], 100)])

    assert reply == "Hi there!"
    assert [r.status for r in fake_openai.received("chat")] == [429, 200]


async def test_server_errors_exhaust_the_retries(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.fail("transcriptions", *[Failure(500, QUICK_RETRY)] * 3)
    async with voice_for(fake_openai, settings, provider_retries=2) as voice:
        with pytest.raises(ProviderError) as caught:
            await voice.stt.transcribe(tone(0.1), "en")

    assert caught.value.failure is ProviderFailure.UNAVAILABLE
    assert caught.value.failure.retryable
    assert [r.status for r in fake_openai.received("transcriptions")] == [500, 500, 500]


async def test_a_hanging_server_times_out_after_every_attempt(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.fail("chat", HANG, HANG)
    timeout, retries = 0.3, 1
    started = time.monotonic()
    async with voice_for(
        fake_openai, settings, provider_timeout_s=timeout, provider_retries=retries
    ) as voice:
        with pytest.raises(ProviderError) as caught:
            async for _ in voice.chat.reply([ChatMessage("user", "hi")], 100):
                pass
    elapsed = time.monotonic() - started

    assert caught.value.failure is ProviderFailure.TIMEOUT
    assert len(fake_openai.received("chat")) == retries + 1
    # Every attempt waited its own timeout, not the default one (10 s, the upper bound here,
    # which a slow machine does not approach: the waits are timers, not computing).
    assert timeout * (retries + 1) <= elapsed < Settings.model_fields["provider_timeout_s"].default


async def test_moderation_has_its_own_short_timeout(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.fail("moderations", HANG)
    started = time.monotonic()
    async with voice_for(
        fake_openai, settings, provider_timeout_s=60, provider_retries=0, moderation_timeout_s=0.2
    ) as voice:
        assert voice.moderation is not None
        with pytest.raises(ProviderError) as caught:
            await voice.moderation.check("hello")

    assert caught.value.failure is ProviderFailure.TIMEOUT
    # Its own 0.2 s, not the provider's 60 s (half of which no machine needs for 0.2 s).
    assert 0.2 <= time.monotonic() - started < 30


async def test_a_bad_request_is_rejected_without_retry(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.fail("speech", 400)
    async with voice_for(fake_openai, settings, provider_retries=2) as voice:
        with pytest.raises(ProviderError) as caught:
            async for _ in voice.tts.synthesize("Hello", "en"):
                pass

    assert caught.value.failure is ProviderFailure.REJECTED
    assert not caught.value.failure.retryable
    assert len(fake_openai.received("speech")) == 1


async def test_a_refused_connection_is_unavailable(settings: Settings) -> None:
    voice = openai_voice(
        settings.model_copy(
            update={
                "openai_base_url": f"http://127.0.0.1:{free_port()}/v1",
                "provider_retries": 0,
            }
        )
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await voice.stt.transcribe(tone(0.1), "en")
    finally:
        await voice.aclose()
    assert caught.value.failure is ProviderFailure.UNAVAILABLE


def test_an_api_key_or_a_base_url_is_required(settings: Settings) -> None:
    with pytest.raises(ConfigError):
        openai_voice(settings.model_copy(update={"openai_api_key": None, "openai_base_url": None}))


async def test_an_api_key_alone_targets_openai(settings: Settings) -> None:
    voice = openai_voice(settings.model_copy(update={"openai_api_key": SecretStr("sk-test")}))
    try:
        assert str(voice.client.base_url).startswith("https://api.openai.com/")
    finally:
        await voice.aclose()


async def test_a_listener_that_stops_early_closes_the_streams(
    fake_openai: FakeOpenAIServer, settings: Settings
) -> None:
    fake_openai.config.reply = STORY
    fake_openai.config.chat_chunk_delay_s = 0.02
    fake_openai.config.speech_chunk_delay_s = 0.02
    async with voice_for(fake_openai, settings) as voice:
        reply = voice.chat.reply([ChatMessage("user", "hi")], 400)
        assert await anext(reply) == "Once "
        await reply.aclose()  # type: ignore[attr-defined]
        speech = voice.tts.synthesize("Hello there, little bear!", "en")
        assert len(await anext(speech)) > 0
        await speech.aclose()  # type: ignore[attr-defined]
        # The client is still usable after the abandoned streams.
        assert voice.moderation is not None
        assert not (await voice.moderation.check("hello")).flagged

    chat, speech_record = fake_openai.received("chat")[0], fake_openai.received("speech")[0]
    assert len(chat.sent_at) < len(STORY.split(" "))
    assert len(speech_record.sent_at) < fake_openai.config.speech_chunks
