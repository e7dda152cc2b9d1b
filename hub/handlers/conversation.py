"""The conversation kinds: ``hello``, ``listen_start``, ``audio``, ``listen_end``, ``text``,
``abort`` (docs/protocol.md, "Conversation").

Handlers return at once: reassembly is one store call, and a complete utterance starts a turn
in the background (:class:`hub.conversation.turn.Conversations`), so an ``abort`` is handled
while the reply is still being spoken. A payload that breaks the rules gets an ``error``
downlink with its reason, one log line and a count; nothing else happens.

Each replica watches the utterances it has seen for the timeout; whichever replica claims an
unfinished utterance first speaks the one "I only heard a little bit" line. A replica follows
at most ``TEDDY_MAX_OPEN_UTTERANCES_PER_DEVICE`` unfinished utterances of one toy and
``TEDDY_MAX_OPEN_UTTERANCES`` in all: a chunk or ``listen_start`` of one more is refused
(``too_many_utterances``: an ``error``, a count, one log line, and the toy is told once at a
time), and nothing of it is stored. A typed ``text`` is claimed in the shared store before its
turn starts, so one resent or redelivered to any replica is answered once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, cast

import structlog

from hub.conversation.devices import DeviceStates
from hub.conversation.turn import Conversations, Utterance
from hub.conversation.utterances import Outcome, Progress, UtteranceStore
from hub.dispatch import Dispatcher, Inbound
from hub.downlink import DownlinkPublisher
from hub.metrics import HubMetrics
from hub.protocol.conversation import (
    OPUS_FRAME_MS,
    AudioChunk,
    Codec,
    MessageError,
    choose_playback,
    config_message,
    error_message,
    parse_abort,
    parse_audio,
    parse_hello,
    parse_listen_end,
    parse_listen_start,
    parse_text,
    split_opus_packets,
)
from hub.protocol.kinds import Kind
from hub.settings import Settings

log = structlog.get_logger("hub.conversation")
_Handler = Callable[[Inbound], Awaitable[None]]
PCM_BYTES_PER_MS: Final = 32  # 16 kHz PCM16


def audio_duration_ms(chunk: AudioChunk) -> int:
    """How much speech a chunk carries (what the length cap counts)."""
    if chunk.codec is Codec.PCM16:
        return len(chunk.data) // PCM_BYTES_PER_MS
    return len(split_opus_packets(chunk.data)) * OPUS_FRAME_MS


class ConversationHandlers:
    """Registers one handler per conversation kind."""

    def __init__(
        self,
        *,
        settings: Settings,
        downlinks: DownlinkPublisher,
        utterances: UtteranceStore,
        states: DeviceStates,
        conversations: Conversations,
        metrics: HubMetrics,
    ) -> None:
        self._settings = settings
        self._downlinks = downlinks
        self._utterances = utterances
        self._states = states
        self._conversations = conversations
        self._metrics = metrics
        self._max_ms = int(settings.max_utterance_s * 1000)
        self._timeout_s = settings.utterance_timeout_s
        self._ttl_ms = int((settings.max_utterance_s + settings.utterance_timeout_s) * 1000) + 5000
        self._watched: dict[tuple[str, bytes], asyncio.Task[None]] = {}
        self._open_per_device: dict[str, int] = {}
        self._telling: set[str] = set()  # toys being told about a refused utterance now
        self._lines: set[asyncio.Task[None]] = set()  # canned lines being spoken

    def register(self, dispatcher: Dispatcher) -> None:
        """Take every conversation kind."""
        dispatcher.register(Kind.HELLO, self._guard(self.hello))
        dispatcher.register(Kind.LISTEN_START, self._guard(self.listen_start))
        dispatcher.register(Kind.AUDIO, self._guard(self.audio))
        dispatcher.register(Kind.LISTEN_END, self._guard(self.listen_end))
        dispatcher.register(Kind.TEXT, self._guard(self.text))
        dispatcher.register(Kind.ABORT, self._guard(self.abort))

    def _guard(self, handler: _Handler) -> _Handler:
        async def guarded(inbound: Inbound) -> None:
            try:
                await handler(inbound)
            except MessageError as error:
                self._metrics.conversation_rejections.labels(reason=error.reason).inc()
                log.info(
                    "conversation_message_refused",
                    device_id=inbound.device_id,
                    kind=inbound.frame.kind.topic_name,
                    reason=error.reason,
                )
                await self._downlinks.send(
                    inbound.device_id, Kind.ERROR, error_message(None, error.reason, str(error))
                )

        return guarded

    async def hello(self, inbound: Inbound) -> None:
        """Remember the toy's playback format and answer ``config``."""
        hello = parse_hello(inbound.frame.payload)
        playback = choose_playback(hello)
        await self._states.set_playback(inbound.device_id, playback)
        await self._downlinks.send(
            inbound.device_id,
            Kind.CONFIG,
            config_message(
                playback,
                max_utterance_s=self._settings.max_utterance_s,
                session=inbound.frame.nonce.hex(),
            ),
        )

    async def listen_start(self, inbound: Inbound) -> None:
        """The child pressed the button: whatever the toy was saying stops (barge-in)."""
        start = parse_listen_start(inbound.frame.payload)
        await self._conversations.abort(inbound.device_id, None, keep=start.utterance)
        self._reserve(inbound.device_id, start.utterance)

    async def audio(self, inbound: Inbound) -> None:
        """One chunk into the shared record; the chunk that completes it starts the turn."""
        chunk = parse_audio(inbound.frame.payload)
        if not self._reserve(inbound.device_id, chunk.utterance):
            return
        progress = await self._utterances.add_chunk(
            inbound.device_id,
            chunk,
            audio_duration_ms(chunk),
            max_ms=self._max_ms,
            ttl_ms=self._ttl_ms,
        )
        self._progress(inbound.device_id, chunk.utterance, progress)

    async def listen_end(self, inbound: Inbound) -> None:
        """The child let go: the utterance completes when every chunk is in."""
        end = parse_listen_end(inbound.frame.payload)
        if end.chunks == 0:  # a tap on the button: nothing was said
            self._unwatch(inbound.device_id, end.utterance)
            if await self._utterances.expire(inbound.device_id, end.utterance):
                self._say_later(inbound.device_id, end.utterance, "apology", reason="not_heard")
            return
        if not self._reserve(inbound.device_id, end.utterance):
            return
        progress = await self._utterances.finish(
            inbound.device_id, end.utterance, end.chunks, ttl_ms=self._ttl_ms
        )
        self._progress(inbound.device_id, end.utterance, progress)

    async def text(self, inbound: Inbound) -> None:
        """Typed input: a turn without speech to text."""
        typed = parse_text(inbound.frame.payload)
        if not await self._utterances.claim(inbound.device_id, typed.utterance):
            log.info("text_already_answered", device_id=inbound.device_id)
            return
        self._conversations.start(
            inbound.device_id, Utterance(typed.utterance, text=typed.text), time.perf_counter()
        )

    async def abort(self, inbound: Inbound) -> None:
        """Stop the toy's reply and its provider calls at once."""
        request = parse_abort(inbound.frame.payload)
        await self._conversations.abort(inbound.device_id, request.utterance)

    def _progress(self, device_id: str, utterance: bytes, progress: Progress) -> None:
        """Act on a write: the reserved watcher stays only while the utterance is pending."""
        if progress.outcome is not Outcome.PENDING:
            self._unwatch(device_id, utterance)
        if progress.outcome is Outcome.COMPLETE:
            self._conversations.start(
                device_id,
                Utterance(utterance, codec=progress.codec, chunks=progress.chunks),
                time.perf_counter(),
            )
        elif progress.outcome is Outcome.TOO_LONG:
            self._metrics.conversation_rejections.labels(reason="too_long").inc()
            self._say_later(device_id, utterance, "too_long")

    def _reserve(self, device_id: str, utterance: bytes) -> bool:
        """Follow this utterance (its place is taken before any await, so concurrent
        handlers cannot overshoot the caps); False when there is no room: the refusal is
        counted, and logged and told to the toy once at a time."""
        if (device_id, utterance) in self._watched:
            return True
        open_here = self._open_per_device.get(device_id, 0)
        if (
            open_here < self._settings.max_open_utterances_per_device
            and len(self._watched) < self._settings.max_open_utterances
        ):
            self._watch(device_id, utterance)
            return True
        self._metrics.conversation_rejections.labels(reason="too_many_utterances").inc()
        if device_id not in self._telling:  # a flood costs one log line and one spoken line
            self._telling.add(device_id)
            log.warning(
                "utterance_refused",
                device_id=device_id,
                reason="too_many_utterances",
                open_for_device=open_here,
                open_in_all=len(self._watched),
            )
            told = self._say_later(device_id, utterance, "too_many_utterances")
            told.add_done_callback(lambda _: self._telling.discard(device_id))
        return False

    def _say_later(
        self, device_id: str, utterance: bytes, name: str, *, reason: str | None = None
    ) -> asyncio.Task[None]:
        """Speak a canned line in the background: a handler never waits for the voice (a
        busy hub queues speech), and its toy's other messages are handled meanwhile."""
        task = asyncio.create_task(self._say(device_id, utterance, name, reason=reason))
        self._lines.add(task)
        task.add_done_callback(self._lines.discard)
        return task

    def _watch(self, device_id: str, utterance: bytes) -> None:
        key = (device_id, utterance)
        if key not in self._watched:
            task = asyncio.create_task(self._expire_when_idle(device_id, utterance))
            self._watched[key] = task
            self._open_per_device[device_id] = self._open_per_device.get(device_id, 0) + 1
            self._metrics.open_utterances.set(len(self._watched))
            task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: tuple[str, bytes], task: asyncio.Task[None]) -> None:
        """Give up the place of ``key``'s watcher ``task`` (not of a newer watcher)."""
        if self._watched.get(key) is not task:
            return
        del self._watched[key]
        self._metrics.open_utterances.set(len(self._watched))
        device_id = key[0]
        left = self._open_per_device.get(device_id, 1) - 1
        if left > 0:
            self._open_per_device[device_id] = left
        else:
            self._open_per_device.pop(device_id, None)

    def _unwatch(self, device_id: str, utterance: bytes) -> None:
        key = (device_id, utterance)
        task = self._watched.get(key)
        if task is not None:
            self._forget(key, task)
            task.cancel()

    async def _expire_when_idle(self, device_id: str, utterance: bytes) -> None:
        """Wait until nothing arrived for the timeout, then claim and answer it (once)."""
        wait_s = self._timeout_s
        while True:
            await asyncio.sleep(wait_s)
            idle = await self._utterances.idle_ms(device_id, utterance)
            if idle is None:
                if not await self._utterances.expire(device_id, utterance):
                    return  # completed, capped or expired elsewhere
                break  # started, then nothing at all arrived
            if idle >= self._timeout_s * 1000:
                if not await self._utterances.expire(device_id, utterance):
                    return
                break
            wait_s = self._timeout_s - idle / 1000
        self._metrics.conversation_rejections.labels(reason="utterance_timeout").inc()
        log.info("utterance_timed_out", device_id=device_id)
        # The utterance is over: its place is free while the line waits for the voice.
        current = asyncio.current_task()
        if current is not None:
            self._forget((device_id, utterance), cast("asyncio.Task[None]", current))
        await self._say(device_id, utterance, "utterance_timeout")

    async def _say(
        self, device_id: str, utterance: bytes, name: str, *, reason: str | None = None
    ) -> None:
        """A canned line for an utterance that never became a turn."""
        await self._conversations.say_line(device_id, utterance, name, reason=reason)

    async def close(self) -> None:
        """Stop watching utterances."""
        tasks = [*self._watched.values(), *self._lines]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
