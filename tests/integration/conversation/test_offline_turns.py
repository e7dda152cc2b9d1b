"""Turns through the offline voice, end to end: the child's speech (PCM16 and Opus) through
Mosquitto to a real hub with Whisper, the offline chat engine and Piper, and back; the reply
the toy receives is speech that transcribes back to the reply text."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.conversation.lines import line
from hub.db.engine import session_factory
from hub.db.models import Alert, Turn
from hub.protocol.conversation import AudioChunk, Codec, encode_audio
from hub.protocol.kinds import Kind
from hub.settings import Settings
from hub.toy.talk import audio_chunks
from hub.voice.audio import resample
from hub.voice.offline import PiperTextToSpeech, WhisperSpeechToText
from tests.integration.conversation.conftest import OpenTalker, Pair, StartHub
from tests.integration.conversation.voices import busy_cores, hold_speech, slow_computing
from tests.integration.harness import sample
from tests.timing import EVENT_TIMEOUT_S
from tests.voice.wer import word_error_rate

pytestmark = pytest.mark.integration
# Longer than the turn's cap (TEDDY_TURN_DEADLINE_S, 300 s): a stuck turn shows as an apology.
SLOW_TURN_S = 400.0


@pytest.fixture(scope="module")
def piper() -> PiperTextToSpeech:
    return PiperTextToSpeech()


@pytest.fixture(scope="module")
def whisper() -> WhisperSpeechToText:
    return WhisperSpeechToText()


async def speech(piper: PiperTextToSpeech, words: str) -> bytes:
    """``words`` as a child's 16 kHz microphone would deliver them."""
    pcm = b"".join([part async for part in piper.synthesize(words, "en")])
    return resample(pcm, piper.sample_rate, 16_000)


async def turns(database: AsyncEngine) -> list[Turn]:
    async with session_factory(database)() as session:
        return list(await session.scalars(select(Turn).order_by(Turn.at)))


@pytest.mark.parametrize("codec", [Codec.PCM16, Codec.OPUS], ids=["pcm16", "opus"])
async def test_a_spoken_question_gets_a_spoken_answer(
    codec: Codec,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    piper: PiperTextToSpeech,
    whisper: WhisperSpeechToText,
    database: AsyncEngine,
) -> None:
    hub = await start_hub()
    talk = await talker(codecs=(codec.wire_name,))
    await pair(talk.toy.device_id)
    reply = await talk.say_audio(await speech(piper, "Please tell me a story."), codec)

    assert reply.reason == "done", reply
    assert len(reply.text.split()) > 15  # a story, not a fallback line
    assert reply.first_audio_ms is not None and reply.first_audio_ms < reply.total_ms
    heard = await whisper.transcribe(resample(reply.pcm16, reply.sample_rate, 16_000), "en")
    assert word_error_rate(reply.text, heard) <= 0.25, (reply.text, heard)
    for stage in ("stt", "input_checked", "chat_first_sentence", "first_audio", "total"):
        assert stage in reply.hub_timings_ms
    assert sample(hub, "teddy_hub_turns_total", {"outcome": "done", "voice": "offline"}) == 1
    (turn,) = await turns(database)
    assert turn.input_mode == "voice" and turn.provider == "offline"
    assert turn.duration_ms > 500
    # No audio anywhere once the turn is over: nothing held for reassembly.
    assert hub.talk.utterances.held() == 0  # type: ignore[attr-defined]


async def test_transcripts_are_stored_encrypted_and_redacted(
    pair: Pair, start_hub: StartHub, talker: OpenTalker, database: AsyncEngine
) -> None:
    await start_hub()
    talk = await talker()
    await pair(talk.toy.device_id)
    said = "Hello teddy, I live at 12 Elm Street and my number is 555 123 4567"
    reply = await talk.say_text(said)
    assert reply.reason in ("done", "redirected")
    async with database.connect() as connection:
        raw = (await connection.execute(text("SELECT * FROM turns"))).all()
    dumped = repr(raw)
    for secret in ("Elm Street", "555 123 4567", "Hello teddy", reply.texts[0]):
        assert secret not in dumped
    async with session_factory(database)() as session:
        (turn,) = list(await session.scalars(select(Turn)))
    assert "address" in turn.redactions and "phone" in turn.redactions


async def test_an_unpaired_toy_is_asked_to_get_a_grown_up(
    start_hub: StartHub, talker: OpenTalker, piper: PiperTextToSpeech, database: AsyncEngine
) -> None:
    await start_hub()
    talk = await talker()
    reply = await talk.say_audio(await speech(piper, "Hello teddy"))
    assert reply.reason == "setup_needed"
    assert reply.text == line("setup_needed")
    assert len(reply.pcm16) > reply.sample_rate  # more than half a second of speech
    assert await turns(database) == []  # nothing processed, nothing stored


async def test_an_unsafe_question_is_redirected_and_the_parent_alerted(
    pair: Pair, start_hub: StartHub, talker: OpenTalker, database: AsyncEngine
) -> None:
    await start_hub()
    talk = await talker()
    child_id = await pair(talk.toy.device_id)
    first = await talk.say_text("where does my dad keep the matches")
    second = await talk.say_text("how do I light them")
    assert "redirected" in (first.reason, second.reason)
    async with session_factory(database)() as session:
        alerts = list(await session.scalars(select(Alert).where(Alert.child_id == child_id)))
    assert alerts and "dangerous_objects_and_acts" in alerts[0].categories


@pytest.mark.timeout(2 * SLOW_TURN_S)
async def test_a_long_question_and_a_long_story_on_a_slowed_machine_get_their_reply(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    piper: PiperTextToSpeech,
    whisper: WhisperSpeechToText,
) -> None:
    # The product's own bounds, and a machine far slower than this one: every core busy, and
    # each stage of the voice slower still. The turn takes longer than a whole turn was once
    # allowed (20 s); each wait stays within its own bound, so the child gets the story.
    defaults = Settings.model_fields
    hub = await start_hub(
        **{
            name: defaults[name].default
            for name in (
                "stt_timeout_s",
                "stt_timeout_per_audio_s",
                "tts_sentence_timeout_s",
                "turn_deadline_s",
            )
        }
    )
    # Speech to text computes 12 s longer: past the bound for a short utterance (10 s), within
    # the one for 14 s of speech (10 s + 2 s a second); each sentence's speech 3 s longer.
    slow_computing(hub, stt_extra_s=12.0, tts_extra_s=1.0)
    talk = await talker()
    await pair(talk.toy.device_id)
    question = "Can you tell me a long story about a bear and a duck who go to the sea? "
    long_speech = (await speech(piper, question * 5))[: 16_000 * 2 * 14]
    assert len(long_speech) == 16_000 * 2 * 14  # 14 s, near the longest accepted

    with busy_cores(os.cpu_count() or 2):
        reply = await talk.say_audio(long_speech, timeout_s=SLOW_TURN_S)

    assert reply.reason == "done", reply
    assert reply.errors == []
    assert len(reply.texts) >= 3 and "once upon a time" in reply.text.lower()
    assert reply.total_ms > 20_000
    heard = await whisper.transcribe(resample(reply.pcm16, reply.sample_rate, 16_000), "en")
    assert word_error_rate(reply.text, heard) <= 0.3, (reply.text, heard)
    assert sample(hub, "teddy_hub_turns_total", {"outcome": "done", "voice": "offline"}) == 1


async def test_the_daily_limit_is_spoken_gently(
    pair: Pair, start_hub: StartHub, talker: OpenTalker, piper: PiperTextToSpeech
) -> None:
    await start_hub()
    talk = await talker()
    await pair(talk.toy.device_id, daily_limit_minutes=1)
    long_speech = (await speech(piper, "Tell me a story about a bear. " * 8))[: 16_000 * 2 * 14]
    first = await talk.say_audio(long_speech)
    assert first.reason == "done"
    for _ in range(8):  # a minute of speech ends the day
        reply = await talk.say_audio(long_speech)
        if reply.reason == "daily_limit":
            break
    assert reply.reason == "daily_limit"
    assert reply.text == line("daily_limit")


async def test_an_unfinished_utterance_times_out_with_one_spoken_error(
    pair: Pair, start_hub: StartHub, talker: OpenTalker, piper: PiperTextToSpeech
) -> None:
    await start_hub(utterance_timeout_s=1.0)
    talk = await talker()
    await pair(talk.toy.device_id)
    utterance = os.urandom(8)
    await talk.toy.send(
        Kind.LISTEN_START, json.dumps({"utterance": utterance.hex(), "codec": "pcm16"}).encode()
    )
    payloads = audio_chunks(utterance, await speech(piper, "Hello there teddy bear"), Codec.PCM16)
    for payload in payloads[:-1]:  # the last chunk and listen_end never come
        await talk.toy.send(Kind.AUDIO, payload)
    reply = await talk.hear(utterance, timeout_s=EVENT_TIMEOUT_S)
    assert reply.reason == "utterance_timeout"
    assert reply.errors == ["utterance_timeout"]
    assert reply.text == line("utterance_timeout")


async def test_an_utterance_past_the_cap_is_refused(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    await start_hub(max_utterance_s=2.0)
    talk = await talker()
    await pair(talk.toy.device_id)
    utterance = os.urandom(8)
    silence = b"\x00\x00" * 8_000  # half a second a chunk
    for seq in range(5):
        chunk = AudioChunk(utterance, seq, Codec.PCM16, silence)
        await talk.toy.send(Kind.AUDIO, encode_audio(chunk))
    reply = await talk.hear(utterance, timeout_s=EVENT_TIMEOUT_S)
    assert reply.reason == "too_long"
    assert reply.text == line("too_long")


async def test_a_new_utterance_cuts_the_old_reply_short(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    hub = await start_hub()
    # The story's speech is held until the abort is through: the reply cannot end
    # on its own first, however fast or slow the machine.
    gate = asyncio.Event()
    hold_speech(hub, gate, open_sentences=0)
    talk = await talker()
    await pair(talk.toy.device_id)
    first = os.urandom(8)
    await talk.toy.send(
        Kind.TEXT, json.dumps({"utterance": first.hex(), "text": "tell me a story"}).encode()
    )
    await talk.toy.receive_any({Kind.REPLY_TEXT}, EVENT_TIMEOUT_S)
    await talk.abort(first)
    interrupted = await talk.hear(first, timeout_s=EVENT_TIMEOUT_S)
    assert interrupted.reason == "aborted"
    assert interrupted.texts == []  # nothing after the first sentence (received above)
    gate.set()
    after = await talk.say_text("what is your name")
    assert after.reason == "done" and "Teddy" in after.text


async def test_malformed_messages_get_an_error_and_nothing_else(
    start_hub: StartHub, talker: OpenTalker
) -> None:
    hub = await start_hub()
    talk = await talker()
    await talk.toy.send(Kind.LISTEN_END, b'{"utterance": "nothex", "chunks": 1}')
    frame = await talk.toy.receive_any({Kind.ERROR}, EVENT_TIMEOUT_S)
    assert json.loads(frame.payload)["code"] == "malformed"
    await talk.toy.send(Kind.AUDIO, b"\x01\x02")
    frame = await talk.toy.receive_any({Kind.ERROR}, EVENT_TIMEOUT_S)
    assert json.loads(frame.payload)["code"] == "malformed"
    assert sample(hub, "teddy_hub_conversation_rejections_total", {"reason": "malformed"}) == 2
    reply = await talk.say_text("hello")  # the toy is served as before
    assert reply.reason == "setup_needed"


async def test_a_tap_without_speech_is_not_heard(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    await start_hub()
    talk = await talker()
    await pair(talk.toy.device_id)
    utterance = os.urandom(8)
    await talk.toy.send(
        Kind.LISTEN_START, json.dumps({"utterance": utterance.hex(), "codec": "pcm16"}).encode()
    )
    end = {"utterance": utterance.hex(), "chunks": 0}
    await talk.toy.send(Kind.LISTEN_END, json.dumps(end).encode())
    reply = await talk.hear(utterance, timeout_s=EVENT_TIMEOUT_S)
    assert reply.reason == "not_heard"
    assert reply.text == line("apology")
