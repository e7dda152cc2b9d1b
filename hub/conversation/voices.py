"""Building the voices once, on first use: loading models is slow and a hub that never hears
a child (a test, a ping-only fleet) should not pay for it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from hub.conversation.turn import Voice
from hub.settings import Settings
from hub.voice.offline import offline_voice
from hub.voice.offline_chat import OfflineChat

if TYPE_CHECKING:
    from hub.voice.openai_providers import OpenAIVoice

log = structlog.get_logger("hub.conversation")


class LazyVoices:
    """The offline voice (Whisper, the offline chat engine, Piper or espeak-ng) and, when
    ``settings.uses_openai()``, the OpenAI-compatible one; each built at most once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self._offline: Voice | None = None
        self._cloud: Voice | None = None
        self._cloud_built = False
        self._openai: OpenAIVoice | None = None

    async def offline(self) -> Voice:
        """The local voice; loading Piper runs in a worker thread."""
        if self._offline is None:
            async with self._lock:
                if self._offline is None:
                    stt, tts = await asyncio.to_thread(offline_voice, self._settings)
                    self._offline = Voice("offline", stt, OfflineChat(), tts, None, cloud=False)
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
        """Close the cloud client, if one was made."""
        if self._openai is not None:
            await self._openai.aclose()
