"""One conversation turn: the child's words in, a safe spoken reply out.

The order is the children-first rules of docs/protocol.md ("Conversation"), in code:

1. **Who is this?** The toy's child, from the database. A toy that is not paired, or whose
   child has no recorded consent, gets the spoken "ask a grown-up to set me up" from the
   offline voice, and nothing reaches any provider.
2. **Limits.** A conversation past ``TEDDY_SESSION_MAX_TURNS`` or a child past their daily
   limit gets a gentle spoken line.
3. **Which voice?** The cloud providers only when they are configured *and* the parent
   agreed to cloud processing for this child; otherwise the offline ones.
4. **Words.** Speech to text; the audio is dropped right after (never stored, never logged).
5. **Input safety.** The local safety layer over the recent conversation and the new words,
   then the provider's moderation when the cloud voice is used. Unsafe: a gentle redirect and
   an alert for the parent. Moderation that errors or times out: a safe canned line (fail
   closed).
6. **Reply.** The chat model streams; each finished sentence passes the same two checks before
   it is spoken, so no unchecked text is ever spoken, and the first sentence is on its way to
   the toy while the rest is still being written.
7. **Record.** The turn with per-stage timings and safety flags, texts redacted and encrypted.

Every wait has its own bound, set by what it waits for: speech to text by the length of the
audio, the chat model to its first token and between tokens, each sentence's speech on its
own (``hub.voice``'s providers enforce them). A long question or a long story therefore never
fails for its length, and a busy hub queues offline work instead of failing turns. The turn as
a whole has only a cap (``TEDDY_TURN_DEADLINE_S``) that a stuck turn reaches, logged as
``turn_deadline_reached``. Provider failures (after the SDK's retries) end in a spoken
apology; nothing escapes to the dispatcher.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import structlog

from hub.conversation.devices import DeviceStates
from hub.conversation.lines import line
from hub.conversation.prompt import system_prompt
from hub.conversation.speaker import Aborted, Speaker
from hub.conversation.store import ChildContext, ConversationStore, InputMode
from hub.downlink import BrokerUnavailable, DownlinkPublisher
from hub.metrics import HubMetrics
from hub.protocol.conversation import (
    Codec,
    error_message,
    reply_end_message,
    split_opus_packets,
)
from hub.protocol.kinds import Kind
from hub.safety.local import SafetyLayer, SafetyVerdict, from_provider_categories
from hub.safety.redact import redact
from hub.voice.audio import OpusDecoder
from hub.voice.providers import (
    STT_SAMPLE_RATE,
    ChatMessage,
    ChatModel,
    Moderation,
    ProviderError,
    SpeechToText,
    TextToSpeech,
)

log = structlog.get_logger("hub.conversation")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?…])\s+")
EXCERPT_CHARS: Final = 300


@dataclass(frozen=True)
class Voice:
    """One set of providers; ``cloud`` when any of them leaves this machine."""

    name: str
    stt: SpeechToText
    chat: ChatModel
    tts: TextToSpeech
    moderation: Moderation | None
    cloud: bool


@dataclass(frozen=True)
class Utterance:
    """What the child said: reassembled audio (``chunks`` of ``codec``) or typed text."""

    utterance: bytes
    codec: Codec | None = None
    chunks: list[bytes] = field(default_factory=list, repr=False)
    text: str | None = field(default=None, repr=False)

    @property
    def mode(self) -> InputMode:
        """``voice`` or ``text``."""
        return "text" if self.text is not None else "voice"


def decode_utterance(codec: Codec, chunks: list[bytes]) -> bytes:
    """The utterance as 16 kHz PCM16.

    Raises:
        ValueError: for audio that does not decode.
    """
    if codec is Codec.PCM16:
        return b"".join(chunks)
    decoder = OpusDecoder(STT_SAMPLE_RATE)
    return b"".join(decoder.decode_all(split_opus_packets(chunk)) for chunk in chunks)


@dataclass
class _Turn:
    """One running turn's state, handed between its stages."""

    device_id: str
    utterance: Utterance
    speaker: Speaker
    outcome: TurnOutcome
    ended_at: float
    child: ChildContext
    conversation_id: uuid.UUID
    voice: Voice
    duration_ms: int = 0

    def mark(self, stage: str) -> None:
        """Record when ``stage`` finished, in ms after the end of speech."""
        self.outcome.timings_ms[stage] = (time.perf_counter() - self.ended_at) * 1000


class VoiceSource(Protocol):
    """The offline voice and, when configured, the cloud one; built on first use."""

    async def offline(self) -> Voice:
        """The local voice (also every canned line's)."""
        ...

    async def cloud(self) -> Voice | None:
        """The cloud voice, or None when no provider is configured."""
        ...


class ModerationFailed(Exception):
    """The provider's moderation errored or timed out: the turn fails closed."""


@dataclass
class TurnOutcome:
    """What a turn did, for the record and the tests."""

    child_text: str = field(default="", repr=False)
    reply_text: str = field(default="", repr=False)
    flags: set[str] = field(default_factory=set)
    flagged: bool = False
    reason: str = "done"
    voice: str = "offline"
    language: str = "en"  # the child's, once known: every canned line is spoken in it
    spoken: list[str] = field(default_factory=list, repr=False)
    turn: _Turn | None = field(default=None, repr=False)
    recorded: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)


class Conversations:
    """Runs turns, one at a time per toy; a new utterance or an ``abort`` stops the old one."""

    def __init__(
        self,
        *,
        downlinks: DownlinkPublisher,
        store: ConversationStore,
        states: DeviceStates,
        voices: VoiceSource,
        metrics: HubMetrics,
        reply_max_chars: int,
        context_turns: int,
        session_max_turns: int,
        turn_deadline_s: float,
        moderation_timeout_s: float,
    ) -> None:
        self._downlinks = downlinks
        self._store = store
        self._states = states
        self._voices = voices
        self._metrics = metrics
        self._reply_max_chars = reply_max_chars
        self._context_turns = context_turns
        self._session_max_turns = session_max_turns
        self._deadline_s = turn_deadline_s
        self._moderation_timeout_s = moderation_timeout_s
        self._running: dict[str, tuple[bytes, asyncio.Task[TurnOutcome]]] = {}
        self._safety: dict[str, SafetyLayer] = {}

    def start(
        self, device_id: str, utterance: Utterance, ended_at: float
    ) -> asyncio.Task[TurnOutcome]:
        """Run a turn for ``utterance`` in the background; a turn of this toy still running
        is cancelled first (the child spoke again)."""
        previous = self._running.pop(device_id, None)
        if previous is not None:
            previous[1].cancel()
        task = asyncio.create_task(self._run(device_id, utterance, ended_at))
        self._running[device_id] = (utterance.utterance, task)
        task.add_done_callback(lambda done: self._forget(device_id, done))
        return task

    def _forget(self, device_id: str, task: asyncio.Task[TurnOutcome]) -> None:
        current = self._running.get(device_id)
        if current is not None and current[1] is task:
            del self._running[device_id]

    async def abort(
        self, device_id: str, utterance: bytes | None, *, keep: bytes | None = None
    ) -> bool:
        """Stop the toy's turn at once: here first, then on every replica through the shared
        mark. ``utterance`` None stops whatever plays except ``keep`` (the utterance the toy
        is starting, whose turn may already run when its ``listen_start`` comes late). True
        when a turn of this replica was cancelled."""
        current = self._running.get(device_id)
        cancelled = False
        if (
            current is not None
            and (utterance is None or current[0] == utterance)
            and current[0] != keep
        ):
            current[1].cancel()
            cancelled = True
        await self._states.mark_aborted(device_id, utterance, keep)
        return cancelled

    async def say_line(
        self, device_id: str, utterance: bytes, name: str, *, reason: str | None = None
    ) -> None:
        """Answer an utterance that never became a turn (``too_long``, ``utterance_timeout``,
        ``not_heard``): an ``error``, the canned line ``name`` in the child's language, and a
        ``reply_end`` with ``reason`` (``name`` by default)."""
        reason = reason or name
        child = await self._store.child_for_device(device_id)
        language = child.language if child is not None else "en"
        since = await self._states.now()
        speaker = Speaker(
            self._downlinks,
            device_id,
            utterance,
            await self._states.playback(device_id),
            lambda: self._states.is_aborted(device_id, utterance, since),
        )
        try:
            await self._downlinks.send(
                device_id, Kind.ERROR, error_message(utterance, reason, line(name, language))
            )
            # Speech waits its turn on a busy hub; only a stuck voice reaches the cap.
            async with asyncio.timeout(self._deadline_s):
                await self._canned(speaker, name, language)
        except Aborted:
            reason = "aborted"  # the child pressed the button again
        except (BrokerUnavailable, ProviderError, TimeoutError) as error:
            log.warning("canned_line_lost", device_id=device_id, error=type(error).__name__)
        try:
            await self._downlinks.send(
                device_id,
                Kind.REPLY_END,
                reply_end_message(utterance, chunks=speaker.chunks_sent, reason=reason),
            )
        except BrokerUnavailable:
            log.warning("reply_end_lost", device_id=device_id)

    async def close(self) -> None:
        """Cancel every running turn."""
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _safety_for(self, language: str) -> SafetyLayer:
        layer = self._safety.get(language)
        if layer is None:
            layer = self._safety[language] = SafetyLayer(language=language)
        return layer

    async def _run(self, device_id: str, utterance: Utterance, ended_at: float) -> TurnOutcome:
        started = await self._states.now()  # the clock abort marks are stamped with
        playback = await self._states.playback(device_id)
        speaker = Speaker(
            self._downlinks,
            device_id,
            utterance.utterance,
            playback,
            lambda: self._states.is_aborted(device_id, utterance.utterance, started),
        )
        outcome = TurnOutcome()
        cap = asyncio.timeout(self._deadline_s)
        try:
            async with cap:
                await self._turn(device_id, utterance, speaker, outcome, ended_at)
        except Aborted:
            outcome.reason = "aborted"
            await self._record_interrupted(outcome)
        except asyncio.CancelledError:
            outcome.reason = "aborted"
            await self._record_interrupted(outcome)
            await self._end(speaker, outcome, ended_at)
            raise
        except BrokerUnavailable:
            outcome.reason = "error"
            log.warning("turn_lost_broker", device_id=device_id)
            await self._record_interrupted(outcome)
            return outcome
        except Exception as error:  # noqa: BLE001 - the toy hears an apology whatever failed
            outcome.reason = "error"
            outcome.flags.add("provider_error" if _is_provider(error) else "failure")
            if cap.expired():
                log.error(  # noqa: TRY400 - the cap is the news, not its traceback
                    "turn_deadline_reached", device_id=device_id, cap_s=self._deadline_s
                )
            else:  # the failure's kind only: provider messages may quote what was said
                log.warning("turn_failed", device_id=device_id, error=type(error).__name__)
            await self._record_interrupted(outcome)
            await self._say_safely(speaker, "apology", outcome.language)
        await self._end(speaker, outcome, ended_at)
        return outcome

    async def _record_interrupted(self, outcome: TurnOutcome) -> None:
        """Keep a turn that ended early in the history (and in the limits and the safety
        layer's view of the conversation), with what the toy had said by then."""
        turn = outcome.turn
        if turn is None or outcome.recorded or not outcome.child_text:
            return
        outcome.reply_text = outcome.reply_text or " ".join(outcome.spoken)
        try:
            await self._record(turn)
        except Exception as error:  # noqa: BLE001 - a lost record must not lose the reply_end
            log.warning("turn_not_recorded", device_id=turn.device_id, error=type(error).__name__)

    async def _end(self, speaker: Speaker, outcome: TurnOutcome, ended_at: float) -> None:
        outcome.timings_ms["total"] = (time.perf_counter() - ended_at) * 1000
        try:
            await self._downlinks.send(
                speaker.device_id,
                Kind.REPLY_END,
                reply_end_message(
                    speaker.utterance,
                    chunks=speaker.chunks_sent,
                    reason=outcome.reason,
                    timings_ms=outcome.timings_ms,
                ),
            )
        except BrokerUnavailable:
            log.warning("reply_end_lost", device_id=speaker.device_id)
        self._metrics.turns.labels(outcome=outcome.reason, voice=outcome.voice).inc()

    async def _canned(self, speaker: Speaker, name: str, language: str) -> None:
        """Speak the canned line ``name`` in the offline voice."""
        tts = (await self._voices.offline()).tts
        await speaker.say(line(name, language), tts, language)

    async def _say_safely(self, speaker: Speaker, name: str, language: str) -> None:
        """A canned line in the offline voice, within the cap; a failure here is logged,
        never raised (the ``reply_end`` follows whatever happens)."""
        try:
            async with asyncio.timeout(self._deadline_s):
                await self._canned(speaker, name, language)
        except (ProviderError, BrokerUnavailable, ValueError, TimeoutError, Aborted) as error:
            log.warning("canned_line_failed", line=name, error=type(error).__name__)

    async def _turn(
        self,
        device_id: str,
        utterance: Utterance,
        speaker: Speaker,
        outcome: TurnOutcome,
        ended_at: float,
    ) -> None:
        child = await self._store.child_for_device(device_id)
        if child is None:
            outcome.reason = "setup_needed"
            await self._canned(speaker, "setup_needed", "en")
            return
        outcome.language = child.language
        conversation_id = await self._store.open_conversation(child.child_id, device_id)
        limit = await self._limit_reached(child, conversation_id)
        if limit is not None:
            outcome.reason = limit
            await self._canned(speaker, limit, child.language)
            return
        offline = await self._voices.offline()
        cloud = await self._voices.cloud() if child.cloud_ai_consent else None
        voice = cloud or offline
        outcome.voice = voice.name
        turn = _Turn(
            device_id, utterance, speaker, outcome, ended_at, child, conversation_id, voice
        )
        outcome.turn = turn
        heard = await self._hear(turn)
        if not heard.strip():
            outcome.reason = "not_heard"
            await self._canned(speaker, "apology", child.language)
            return
        history = await self._store.recent_messages(child.child_id, self._context_turns)
        safety = self._safety_for(child.language)
        try:
            verdict = await self._check(voice, safety.check_input(history, heard), heard, safety)
        except ModerationFailed:
            await self._fail_closed(turn)
            await self._record(turn)
            return
        turn.mark("input_checked")
        if not verdict.safe:
            await self._redirect(turn, verdict, heard)
            return
        await self._reply(turn, history, heard, safety)

    async def _hear(self, turn: _Turn) -> str:
        """The child's words: typed, or transcribed (the audio is dropped right after)."""
        utterance = turn.utterance
        if utterance.text is not None:
            heard = utterance.text
        else:
            assert utterance.codec is not None  # noqa: S101 - voice utterances carry a codec
            pcm = decode_utterance(utterance.codec, utterance.chunks)
            turn.duration_ms = len(pcm) * 1000 // (2 * STT_SAMPLE_RATE)
            heard = await turn.voice.stt.transcribe(pcm, turn.child.language)
            del pcm  # the child's voice is not kept past transcription
            turn.mark("stt")
        turn.outcome.child_text = heard
        return heard

    async def _reply(
        self, turn: _Turn, history: list[ChatMessage], heard: str, safety: SafetyLayer
    ) -> None:
        """Stream the reply, checking and speaking it sentence by sentence."""
        language = turn.child.language
        messages = [
            ChatMessage("system", system_prompt(turn.child.first_name, turn.child.age, language)),
            *history,
            ChatMessage("user", heard),
        ]
        context = [*history, ChatMessage("user", heard)]
        spoken = turn.outcome.spoken
        # Closed on every way out, so a stopped reply also stops the provider's stream.
        replies = turn.voice.chat.reply(messages, self._reply_max_chars)
        async with aclosing(_sentences(replies)) as sentences:
            async for sentence in sentences:
                if "chat_first_sentence" not in turn.outcome.timings_ms:
                    turn.mark("chat_first_sentence")
                so_far = " ".join([*spoken, sentence])
                try:
                    checked = await self._check(
                        turn.voice, safety.check_output(context, so_far), sentence, safety
                    )
                except ModerationFailed:
                    await self._fail_closed(turn)
                    break
                if not checked.safe:
                    turn.outcome.flags.add("unsafe_reply")
                    await self._redirect(turn, checked, so_far)
                    return
                await turn.speaker.say(sentence, turn.voice.tts, language)
                spoken.append(sentence)
                first_audio = turn.speaker.first_audio_at
                if "first_audio" not in turn.outcome.timings_ms and first_audio is not None:
                    turn.outcome.timings_ms["first_audio"] = (first_audio - turn.ended_at) * 1000
        if turn.outcome.reason == "done":
            turn.outcome.reply_text = " ".join(spoken)
        await self._record(turn)

    async def _fail_closed(self, turn: _Turn) -> None:
        """Moderation did not answer: a safe canned line, nothing unchecked."""
        turn.outcome.flags.add("moderation_unavailable")
        turn.outcome.reason = "moderation_unavailable"
        language = turn.child.language
        text = line("moderation_unavailable", language)
        turn.outcome.reply_text = " ".join([*turn.outcome.spoken, text])
        await turn.speaker.say(text, (await self._voices.offline()).tts, language)

    async def _limit_reached(self, child: ChildContext, conversation_id: uuid.UUID) -> str | None:
        if await self._store.turns_in_conversation(conversation_id) >= self._session_max_turns:
            return "session_limit"
        if child.daily_limit_minutes is not None:
            spoken_s = await self._store.speech_seconds_today(child.child_id, datetime.now(UTC))
            if spoken_s >= child.daily_limit_minutes * 60:
                return "daily_limit"
        return None

    async def _check(
        self, voice: Voice, local: SafetyVerdict, text: str, safety: SafetyLayer
    ) -> SafetyVerdict:
        """The local verdict, joined by the provider's moderation where the voice has one.

        Raises:
            ModerationFailed: when moderation errors or does not answer in time.
        """
        if not local.safe or voice.moderation is None:
            return local
        try:
            async with asyncio.timeout(self._moderation_timeout_s):
                result = await voice.moderation.check(text)
        except (ProviderError, TimeoutError) as error:
            self._metrics.moderation_failures.inc()
            log.warning("moderation_failed", error=type(error).__name__)
            raise ModerationFailed from error
        if result.flagged:
            self._metrics.provider_flags.inc()
            return safety.verdict_for(from_provider_categories(result.categories))
        return local

    async def _redirect(self, turn: _Turn, verdict: SafetyVerdict, unsafe_text: str) -> None:
        """Record the turn and the parent's alert, then speak the redirect: a barge-in during
        the redirect must not lose either."""
        outcome = turn.outcome
        outcome.flagged = True
        outcome.reason = "redirected"
        outcome.flags.update(str(category) for category in verdict.categories)
        language = turn.child.language
        redirect = verdict.redirect or line("redirect_dangerous_objects_and_acts", language)
        outcome.reply_text = " ".join([*outcome.spoken, redirect])
        turn_id = await asyncio.shield(self._record(turn))
        await asyncio.shield(self._alert(turn, turn_id, verdict, unsafe_text))
        await turn.speaker.say(redirect, (await self._voices.offline()).tts, language)

    async def _record(self, turn: _Turn) -> uuid.UUID:
        outcome = turn.outcome
        outcome.recorded = True
        child_text, child_kinds = redact(outcome.child_text)
        reply_text, reply_kinds = redact(outcome.reply_text)
        return await self._store.record_turn(
            child_id=turn.child.child_id,
            conversation_id=turn.conversation_id,
            device_id=turn.device_id,
            child_text=child_text,
            reply_text=reply_text,
            input_mode=turn.utterance.mode,
            provider=outcome.voice,
            timings=outcome.timings_ms,
            safety_flags=sorted(outcome.flags),
            redactions=sorted(child_kinds | reply_kinds),
            duration_ms=turn.duration_ms,
            flagged=outcome.flagged,
        )

    async def _alert(
        self, turn: _Turn, turn_id: uuid.UUID, verdict: SafetyVerdict, text: str
    ) -> None:
        excerpt, _ = redact(text[:EXCERPT_CHARS])
        categories = sorted(str(category) for category in verdict.categories)
        await self._store.raise_alert(turn.child.child_id, turn_id, categories, excerpt)
        self._metrics.alerts.inc()


def _is_provider(error: BaseException) -> bool:
    return isinstance(error, ProviderError | TimeoutError)


async def _sentences(deltas: AsyncIterator[str]) -> AsyncGenerator[str]:
    """Whole sentences out of streamed text deltas, the rest at the end; closing this closes
    the provider's stream too."""
    buffered = ""
    try:
        async for delta in deltas:
            buffered += delta
            parts = _SENTENCE_END.split(buffered)
            for sentence in parts[:-1]:
                if sentence.strip():
                    yield sentence.strip()
            buffered = parts[-1]
        if buffered.strip():
            yield buffered.strip()
    finally:
        close = getattr(deltas, "aclose", None)
        if close is not None:
            await close()
