"""The real offline voice, held or slowed by the test, so the order of events in a turn is the
test's choice and not the machine's speed.

Installed with :meth:`hub.conversation.voices.LazyVoices.wrap_offline` before a hub's first
turn; the models underneath are the real Whisper and Piper.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hub.conversation.turn import Voice
from hub.service import Hub
from hub.voice.providers import SpeechToText, TextToSpeech


@dataclass
class _WrappedSpeech:
    """A text-to-speech that is ``inner`` under its own name and rate."""

    inner: TextToSpeech

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate


@dataclass
class HeldSpeech(_WrappedSpeech):
    """Speaks the first ``open_sentences`` sentences, then holds every later one until
    ``gate`` is set: a reply that can only end by being stopped."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    open_sentences: int = 1
    spoken: int = 0

    async def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        self.spoken += 1
        if self.spoken > self.open_sentences:
            await self.gate.wait()
        async for pcm in self.inner.synthesize(text, language):
            yield pcm


@dataclass
class SlowedSpeechToText:
    """The real speech-to-text, answering ``extra_s`` later, as a slower machine would."""

    inner: SpeechToText
    extra_s: float

    @property
    def name(self) -> str:
        return self.inner.name

    async def transcribe(self, pcm16: bytes, language: str) -> str:
        heard = await self.inner.transcribe(pcm16, language)
        await asyncio.sleep(self.extra_s)
        return heard


@dataclass
class SlowedSpeech(_WrappedSpeech):
    """The real text-to-speech, each sentence ``extra_s`` later, as a slower machine would."""

    extra_s: float = 0.0

    async def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.extra_s)
        async for pcm in self.inner.synthesize(text, language):
            yield pcm


def hold_speech(hub: Hub, gate: asyncio.Event, open_sentences: int = 1) -> None:
    """Make ``hub``'s offline voice hold sentences past the first ``open_sentences``."""
    hub.talk.voices.wrap_offline(
        lambda voice: dataclasses.replace(voice, tts=HeldSpeech(voice.tts, gate, open_sentences))
    )


def slow_voice(hub: Hub, stt_extra_s: float, tts_extra_s: float) -> None:
    """Make ``hub``'s offline voice as slow as a much slower machine's."""

    def slowed(voice: Voice) -> Voice:
        return dataclasses.replace(
            voice,
            stt=SlowedSpeechToText(voice.stt, stt_extra_s),
            tts=SlowedSpeech(voice.tts, tts_extra_s),
        )

    hub.talk.voices.wrap_offline(slowed)


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU until the block ends: a busy machine."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
