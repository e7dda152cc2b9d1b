"""Building the voices once, on first use: loading models is slow and a hub that never hears
a child (a test, a ping-only fleet) should not pay for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry

from hub.conversation.turn import Voice
from hub.settings import Settings
from hub.voice.offline import offline_voice
from hub.voice.offline_chat import OfflineChat
from hub.voice.workers import VoiceQueueMetrics, VoiceWorkers

if TYPE_CHECKING:
    from hub.voice.openai_providers import OpenAIVoice

log = structlog.get_logger("hub.conversation")


class LazyVoices:
    """The offline voice (Whisper, the offline chat engine, Piper or espeak-ng) and, when
    ``settings.uses_openai()``, the OpenAI-compatible one; each built at most once. The
    offline voice computes on its own workers, whose queue counts in ``registry``."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self._settings = settings
        self.workers = VoiceWorkers(settings.offline_voice_workers, VoiceQueueMetrics(registry))
        self._lock = asyncio.Lock()
        self._offline: Voice | None = None
        self._cloud: Voice | None = None
        self._cloud_built = False
        self._openai: OpenAIVoice | None = None
        self._wrapper: Callable[[Voice], Voice] = lambda voice: voice

    def wrap_offline(self, wrapper: Callable[[Voice], Voice]) -> None:
        """Pass the offline voice through ``wrapper`` when it is built: how a test or a
        benchmark gates or slows the real models of a hub that ``Hub.build`` wired.

        Raises:
            RuntimeError: when the voice was already built.
        """
        if self._offline is not None:
            raise RuntimeError("the offline voice is already built")
        self._wrapper = wrapper

    async def offline(self) -> Voice:
        """The local voice; loading Piper runs in a worker thread."""
        if self._offline is None:
            async with self._lock:
                if self._offline is None:
                    stt, tts = await asyncio.to_thread(offline_voice, self._settings, self.workers)
                    voice = Voice("offline", stt, OfflineChat(), tts, None, cloud=False)
                    self._offline = self._wrapper(voice)
        return self._offline

    async def cloud(self) -> Voice | None:
        """The OpenAI-compatible voice, or None when none is configured."""
        if not self._cloud_built:
            async with self._lock:
                if not self._cloud_built:
                    self._cloud = self._build_cloud()
                    self._cloud_built = True
        return self._cloud

    def _build_cloud(self) -> Voice | None:
        if not self._settings.uses_openai():
            return None
        from hub.voice.openai_providers import openai_voice  # noqa: PLC0415 - optional path

        built = openai_voice(self._settings)
        log.info("cloud_voice_configured", base_url=self._settings.openai_base_url or "openai")
        self._openai = built
        return Voice("openai", built.stt, built.chat, built.tts, built.moderation, cloud=True)

    async def close(self) -> None:
        """Drop queued offline jobs and close the cloud client, if one was made."""
        self.workers.close()
        if self._openai is not None:
            await self._openai.aclose()
