"""The four provider interfaces a conversation turn is built from.

Every provider is small and swappable: the offline stack (the embedded default, computed on
this machine) and the OpenAI-compatible one implement the same protocols, and the pipeline
picks per child: a child whose parent has not agreed to cloud processing is served by the
offline providers whatever the operator configured.

Audio crossing these interfaces is always raw PCM16 little-endian mono: 16 kHz into
speech-to-text, the provider's own :attr:`TextToSpeech.sample_rate` out of text-to-speech.
Codecs (Opus) and resampling are :mod:`hub.voice.audio`'s job, at the edges.

Failures are :class:`ProviderError` with a :class:`ProviderFailure` kind, so the pipeline can
retry what is worth retrying (timeouts, 429, 5xx) within its deadline and then apologise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from hub.errors import TeddyError

STT_SAMPLE_RATE = 16_000

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the chat context."""

    role: Role
    content: str


class ProviderFailure(StrEnum):
    """Why a provider call failed; the first three are retried within the turn's deadline."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # 5xx, connection refused or reset
    REJECTED = "rejected"  # 4xx other than 429: retrying cannot help
    INVALID = "invalid"  # an answer that is not what the interface promises

    @property
    def retryable(self) -> bool:
        """True for failures another attempt may not meet."""
        return self in (
            ProviderFailure.TIMEOUT,
            ProviderFailure.RATE_LIMITED,
            ProviderFailure.UNAVAILABLE,
        )


class ProviderError(TeddyError):
    """A provider call failed; ``failure`` says how, ``provider`` which one."""

    def __init__(self, provider: str, failure: ProviderFailure, detail: str = "") -> None:
        self.provider = provider
        self.failure = failure
        super().__init__(f"{provider}: {failure.value}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """A moderation verdict: ``flagged`` and the categories that made it so."""

    flagged: bool
    categories: frozenset[str] = field(default_factory=frozenset)


class SpeechToText(Protocol):
    """Turns one utterance into text."""

    name: str

    async def transcribe(self, pcm16: bytes, language: str) -> str:
        """The words in ``pcm16`` (16 kHz mono PCM16), in ``language`` (BCP 47, e.g. "en").

        Raises:
            ProviderError: when the provider fails.
        """
        ...


class ChatModel(Protocol):
    """Writes the toy's reply, streamed as it is written."""

    name: str

    def reply(self, messages: list[ChatMessage], max_chars: int) -> AsyncIterator[str]:
        """Text deltas of the reply to ``messages`` (the last one is the child's), together
        at most ``max_chars`` characters.

        Raises:
            ProviderError: when the provider fails (before or while streaming).
        """
        ...


class TextToSpeech(Protocol):
    """Speaks text, streamed as it is synthesised."""

    name: str
    sample_rate: int

    def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        """PCM16 mono chunks at :attr:`sample_rate` speaking ``text``.

        Raises:
            ProviderError: when the provider fails.
        """
        ...


class Moderation(Protocol):
    """A provider's content moderation (the local safety layer is separate and always on)."""

    name: str

    async def check(self, text: str) -> ModerationResult:
        """The verdict on ``text``.

        Raises:
            ProviderError: when the provider fails; the caller fails closed.
        """
        ...
