"""The four providers on any OpenAI-compatible server (OpenAI itself, Ollama, vLLM, ...).

One :class:`openai.AsyncOpenAI` client serves all four. The SDK retries 408/409/429/5xx,
connection errors and timeouts itself (``provider_retries`` times, exponential backoff from
0.5 s, honouring ``Retry-After``/``retry-after-ms``), each attempt bounded by
``provider_timeout_s`` (a streamed reply: to its first token and between tokens; a
transcription: plus ``stt_timeout_per_audio_s`` per second of audio). The turn has only a cap
that a stuck turn reaches, so a long reply never fails for its length.
Whatever still fails is raised as :class:`ProviderError` with a :class:`ProviderFailure` kind.

Nothing here logs what a child said or hears: only the provider, the failure kind, the HTTP
status and the latency.
"""

from __future__ import annotations

import importlib
import io
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import openai
import pydantic
import structlog
from openai import AsyncOpenAI, omit
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

from hub.errors import ConfigError
from hub.settings import Settings
from hub.voice.providers import (
    STT_SAMPLE_RATE,
    ChatMessage,
    Moderation,
    ModerationResult,
    ProviderError,
    ProviderFailure,
)

log = structlog.get_logger("hub.voice.openai")

OPENAI_PCM_SAMPLE_RATE = 24_000  # response_format="pcm": 24 kHz, 16-bit, mono, little-endian
PLACEHOLDER_API_KEY = "unused"  # local servers (Ollama, vLLM) accept any key
_CHARS_PER_TOKEN = 3  # English runs near 4; sizing for 3 lets max_chars, not tokens, end a reply
_MIN_TOKENS = 16
_HTTP_SERVER_ERROR = 500


def _http_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The timeout and transport errors of the HTTP clients the SDK may stream bodies with
    (``httpx2`` for openai 3.x, ``httpx`` before): streamed bodies raise them unwrapped."""
    timeouts: list[type[BaseException]] = [TimeoutError]
    transports: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transports.append(module.HTTPError)
    return tuple(timeouts), tuple(transports)


_TIMEOUT_ERRORS, _TRANSPORT_ERRORS = _http_errors()


def failure_of(error: BaseException) -> ProviderFailure:
    """The failure kind of an exception the SDK (or its HTTP client) raised."""
    if isinstance(error, openai.APIStatusError) and not isinstance(error, openai.RateLimitError):
        if error.status_code >= _HTTP_SERVER_ERROR:
            return ProviderFailure.UNAVAILABLE
        return ProviderFailure.REJECTED
    for kinds, failure in _FAILURES:
        if isinstance(error, kinds):
            return failure
    return ProviderFailure.INVALID  # undecodable JSON, missing fields, odd audio


# Checked in order: a timeout is also a connection error, and a stream's error event an APIError.
_FAILURES: tuple[tuple[tuple[type[BaseException], ...], ProviderFailure], ...] = (
    ((openai.APITimeoutError, *_TIMEOUT_ERRORS), ProviderFailure.TIMEOUT),
    ((openai.RateLimitError,), ProviderFailure.RATE_LIMITED),
    ((openai.APIResponseValidationError,), ProviderFailure.INVALID),
    (
        (openai.APIConnectionError, *_TRANSPORT_ERRORS, openai.APIError),
        ProviderFailure.UNAVAILABLE,
    ),
)


def _status_of(error: BaseException) -> int | None:
    return error.status_code if isinstance(error, openai.APIStatusError) else None


# What a failed call may raise; anything else is a bug and propagates as it is.
_CALL_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    *_TIMEOUT_ERRORS,
    *_TRANSPORT_ERRORS,
    ValueError,  # json.JSONDecodeError, pydantic.ValidationError
    pydantic.ValidationError,
    AttributeError,  # a lenient SDK model missing a field the answer should have had
    KeyError,
    TypeError,
)


class _Call:
    """Times one provider call and turns its failure into a logged :class:`ProviderError`."""

    def __init__(self, provider: str, operation: str) -> None:
        self.provider = provider
        self.operation = operation
        self.started = time.monotonic()

    def _latency_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def done(self, **fields: Any) -> None:
        log.debug(
            "provider call done",
            provider=self.provider,
            operation=self.operation,
            latency_ms=self._latency_ms(),
            **fields,
        )

    def fail(self, error: BaseException) -> NoReturn:
        failure = failure_of(error)
        status = _status_of(error)
        log.warning(
            "provider call failed",
            provider=self.provider,
            operation=self.operation,
            failure=failure.value,
            status=status,
            error_type=type(error).__name__,
            latency_ms=self._latency_ms(),
        )
        detail = type(error).__name__ + (f" {status}" if status is not None else "")
        raise ProviderError(self.provider, failure, detail) from error

    def invalid(self, detail: str) -> NoReturn:
        log.warning(
            "provider call failed",
            provider=self.provider,
            operation=self.operation,
            failure=ProviderFailure.INVALID.value,
            detail=detail,
            latency_ms=self._latency_ms(),
        )
        raise ProviderError(self.provider, ProviderFailure.INVALID, detail)


def pcm16_to_wav(pcm16: bytes, sample_rate: int = STT_SAMPLE_RATE) -> bytes:
    """``pcm16`` (mono, little-endian) as a WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm16)
    return buffer.getvalue()


def _iso_639_1(language: str) -> str:
    """ "en-US" -> "en": the transcription API takes ISO 639-1 codes."""
    return language.split("-", 1)[0].split("_", 1)[0].lower()


def cut_reply(emitted: int, text: str, max_chars: int) -> str:
    """The part of ``text`` (following ``emitted`` characters already sent) that fits.

    The cut falls at the last word boundary before ``max_chars`` when one exists in ``text``,
    otherwise exactly at ``max_chars``; trailing whitespace is dropped.
    """
    room = max_chars - emitted
    if room <= 0:
        return ""
    if len(text) <= room:
        return text
    if text[room].isspace():
        return text[:room].rstrip()
    head = text[:room]
    boundary = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    if boundary >= 0:
        return head[:boundary].rstrip()
    if emitted > 0:
        return ""  # the word began in an earlier delta: stop where that one ended
    return head


class OpenAISpeechToText:
    """Speech-to-text through ``POST /audio/transcriptions``.

    Each attempt may take ``timeout_s`` plus ``timeout_per_audio_s`` for every second of
    audio: a long question takes longer to upload and transcribe, and must not fail for it.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        name: str = "openai-stt",
        *,
        timeout_s: float = 10.0,
        timeout_per_audio_s: float = 2.0,
    ) -> None:
        self.name = name
        self._client = client
        self._model = model
        self._timeout_s = timeout_s
        self._timeout_per_audio_s = timeout_per_audio_s

    async def transcribe(self, pcm16: bytes, language: str) -> str:
        """The words in ``pcm16`` (16 kHz mono PCM16)."""
        call = _Call(self.name, "transcribe")
        wav = pcm16_to_wav(pcm16)
        audio_s = len(pcm16) / (2 * STT_SAMPLE_RATE)
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model,
                file=("utterance.wav", wav, "audio/wav"),
                language=_iso_639_1(language),
                timeout=self._timeout_s + self._timeout_per_audio_s * audio_s,
            )
            text = result.text
        except _CALL_ERRORS as error:
            call.fail(error)
        if not isinstance(text, str):
            call.invalid("transcription without text")
        call.done(audio_bytes=len(pcm16), chars=len(text))
        return text.strip()


def _message_param(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=message.content)
    if message.role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
    return ChatCompletionUserMessageParam(role="user", content=message.content)


class OpenAIChatModel:
    """The reply through ``POST /chat/completions``, streamed."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        legacy_max_tokens: bool = False,
        name: str = "openai-chat",
    ) -> None:
        self.name = name
        self._client = client
        self._model = model
        self._legacy_max_tokens = legacy_max_tokens

    async def reply(self, messages: list[ChatMessage], max_chars: int) -> AsyncIterator[str]:
        """Text deltas of the reply, together at most ``max_chars`` characters."""
        call = _Call(self.name, "reply")
        emitted = 0
        tokens = max(_MIN_TOKENS, max_chars // _CHARS_PER_TOKEN + 8)
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=[_message_param(message) for message in messages],
                stream=True,
                max_tokens=tokens if self._legacy_max_tokens else omit,
                max_completion_tokens=omit if self._legacy_max_tokens else tokens,
            )
        except _CALL_ERRORS as error:
            call.fail(error)
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue  # e.g. a usage-only chunk
                delta = chunk.choices[0].delta.content
                if not delta:
                    continue
                if emitted + len(delta) > max_chars:
                    last = cut_reply(emitted, delta, max_chars)
                    if last:
                        emitted += len(last)
                        yield last
                    call.done(chars=emitted, truncated=True)
                    return
                emitted += len(delta)
                yield delta
        except _CALL_ERRORS as error:
            call.fail(error)
        finally:
            await stream.close()
        call.done(chars=emitted, truncated=False)


class OpenAITextToSpeech:
    """Speech through ``POST /audio/speech`` as raw 24 kHz PCM16, streamed as it arrives."""

    sample_rate = OPENAI_PCM_SAMPLE_RATE

    def __init__(
        self, client: AsyncOpenAI, model: str, voice: str, name: str = "openai-tts"
    ) -> None:
        self.name = name
        self._client = client
        self._model = model
        self._voice = voice

    async def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        """PCM16 mono chunks at 24 kHz, each an even number of bytes.

        ``language`` is not sent: the speech endpoint speaks the language of the text.
        """
        del language
        call = _Call(self.name, "synthesize")
        total = 0
        carry = b""
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self._model, voice=self._voice, input=text, response_format="pcm"
            ) as response:
                async for received in response.iter_bytes():
                    data = carry + received
                    cut = len(data) - len(data) % 2
                    carry = data[cut:]
                    if cut:
                        total += cut
                        yield data[:cut]
        except _CALL_ERRORS as error:
            call.fail(error)
        if total == 0:
            call.invalid("no audio")
        call.done(chars=len(text), audio_bytes=total, odd_byte_dropped=bool(carry))


class OpenAIModeration:
    """Moderation through ``POST /moderations`` with its own (short) timeout."""

    def __init__(self, client: AsyncOpenAI, model: str, name: str = "openai-moderation") -> None:
        self.name = name
        self._client = client
        self._model = model

    async def check(self, text: str) -> ModerationResult:
        """The verdict on ``text``; failures raise, and the caller fails closed."""
        call = _Call(self.name, "check")
        try:
            response = await self._client.moderations.create(model=self._model, input=text)
            result = response.results[0]
            flagged = result.flagged
            raw = result.categories.model_dump(by_alias=True)
        except _CALL_ERRORS as error:
            call.fail(error)
        except IndexError:
            call.invalid("no moderation result")
        if not isinstance(flagged, bool):
            call.invalid("moderation without a verdict")
        categories = frozenset(name for name, value in raw.items() if value is True)
        call.done(flagged=flagged, categories=sorted(categories))
        return ModerationResult(flagged=flagged, categories=categories)


@dataclass(frozen=True, slots=True)
class OpenAIVoice:
    """The four OpenAI-compatible providers sharing one client; ``aclose`` releases it."""

    client: AsyncOpenAI
    stt: OpenAISpeechToText
    chat: OpenAIChatModel
    tts: OpenAITextToSpeech
    moderation: Moderation | None

    async def aclose(self) -> None:
        """Close the HTTP connections of the shared client."""
        await self.client.close()


def openai_client(settings: Settings) -> AsyncOpenAI:
    """The SDK client for ``settings``: its key (or a placeholder for a keyless local server),
    base URL, per-attempt timeout and retries.

    Raises:
        ConfigError: when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is set.
    """
    if settings.openai_api_key is not None:
        api_key = settings.openai_api_key.get_secret_value()
    elif settings.openai_base_url is not None:
        api_key = PLACEHOLDER_API_KEY
    else:
        raise ConfigError("OPENAI_API_KEY or OPENAI_BASE_URL must be set for the openai voice")
    return AsyncOpenAI(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout=settings.provider_timeout_s,
        max_retries=settings.provider_retries,
    )


def openai_voice(settings: Settings) -> OpenAIVoice:
    """The OpenAI-compatible providers configured by ``settings``.

    OpenAI itself takes ``max_completion_tokens`` (its newer models refuse ``max_tokens``);
    other compatible servers (``OPENAI_BASE_URL`` set) are sent the widely supported
    ``max_tokens``.

    Raises:
        ConfigError: when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is set.
    """
    client = openai_client(settings)
    moderation: Moderation | None = None
    if settings.openai_moderation_model is not None:
        moderation_client = client.with_options(
            timeout=settings.moderation_timeout_s, max_retries=settings.provider_retries
        )
        moderation = OpenAIModeration(moderation_client, settings.openai_moderation_model)
    return OpenAIVoice(
        client=client,
        stt=OpenAISpeechToText(
            client,
            settings.openai_stt_model,
            timeout_s=settings.provider_timeout_s,
            timeout_per_audio_s=settings.stt_timeout_per_audio_s,
        ),
        chat=OpenAIChatModel(
            client,
            settings.openai_chat_model,
            legacy_max_tokens=settings.openai_base_url is not None,
        ),
        tts=OpenAITextToSpeech(client, settings.openai_tts_model, settings.openai_tts_voice),
        moderation=moderation,
    )


__all__ = [
    "OPENAI_PCM_SAMPLE_RATE",
    "OpenAIChatModel",
    "OpenAIModeration",
    "OpenAISpeechToText",
    "OpenAITextToSpeech",
    "OpenAIVoice",
    "cut_reply",
    "failure_of",
    "openai_client",
    "openai_voice",
    "pcm16_to_wav",
]
