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
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from hub.service import Hub
from hub.voice.providers import TextToSpeech
from hub.voice.workers import Stage

T = TypeVar("T")


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


def hold_speech(hub: Hub, gate: asyncio.Event, open_sentences: int = 1) -> None:
    """Make ``hub``'s offline voice hold sentences past the first ``open_sentences``."""
    hub.talk.voices.wrap_offline(
        lambda voice: dataclasses.replace(voice, tts=HeldSpeech(voice.tts, gate, open_sentences))
    )


def slow_computing(hub: Hub, stt_extra_s: float, tts_extra_s: float) -> None:
    """Make every job of ``hub``'s offline voice compute longer, inside its worker and so
    inside its bound, as on a much slower machine: speech to text ``stt_extra_s`` more, each
    speech job (three a sentence) ``tts_extra_s`` more."""
    workers = hub.talk.voices.workers
    run = workers.run

    async def slowed(stage: Stage, work: Callable[[], T], *, limit_s: float) -> T:
        extra_s = stt_extra_s if stage is Stage.STT else tts_extra_s

        def slower() -> T:
            time.sleep(extra_s)  # this worker is busy, as with a slower CPU
            return work()

        return await run(stage, slower, limit_s=limit_s)

    workers.run = slowed  # type: ignore[method-assign]


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
