"""Conversations with the cloud voice: the fake OpenAI-compatible server behind a real hub.

The rules of :mod:`hub.conversation.turn` seen from the toy and from the provider's side: the
cloud voice only for a child whose parent agreed to it, nothing at all to any provider for an
unconsented child or an unpaired toy, moderation that fails closed, unsafe input or replies
redirected with an alert, provider failures ending in an apology without disturbing other
toys, and an abort that stops the reply and the provider's stream at once.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import uuid
import wave
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.conversation.lines import line
from hub.db.engine import session_factory
from hub.db.models import Alert, Child, Turn
from hub.errors import ToyError
from hub.protocol.conversation import UTTERANCE_ID_SIZE, Codec, parse_audio, utterance_hex
from hub.protocol.kinds import Kind
from hub.safety.local import SafetyCategory
from hub.service import Hub
from hub.settings import Settings
from hub.toy.talk import Reply
from hub.voice.audio import resample
from hub.voice.offline import offline_voice
from tests.fakes.openai_server import (
    HANG,
    Failure,
    FakeOpenAIServer,
    RequestRecord,
    synthesize_pcm24k,
)
from tests.integration.conversation.conftest import OpenTalker, Pair, StartHub
from tests.integration.harness import new_device_id, sample, wait_until
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

CHILD_SAYS = "Hello Teddy, tell me a story about a bear."
STORY = (
    "Once upon a time a little bear found a shiny red balloon. "
    "It floated high over the green hills! "
    "Then it came home for tea."
)
REDIRECTS = frozenset(line(f"redirect_{category.value}", "en") for category in SafetyCategory)
STORY_SENTENCES = [
    "Once upon a time a little bear found a shiny red balloon.",
    "It floated high over the green hills!",
    "Then it came home for tea.",
]


def _cloud(fake: FakeOpenAIServer, **extra: Any) -> dict[str, Any]:
    """The setting changes that point a hub's cloud voice at ``fake``."""
    return {"voice_provider": "openai", "openai_base_url": fake.base_url, **extra}


async def _speech(text: str, talk_settings: Settings) -> bytes:
    """``text`` spoken by the offline voice, as the child's 16 kHz PCM16."""
    _, tts = await asyncio.to_thread(offline_voice, talk_settings)
    pcm = b"".join([chunk async for chunk in tts.synthesize(text, "en")])
    return resample(pcm, tts.sample_rate, 16_000)


async def _alerts(database: AsyncEngine, child_id: uuid.UUID) -> list[Alert]:
    async with session_factory(database)() as session:
        rows = await session.scalars(select(Alert).where(Alert.child_id == child_id))
        return list(rows)


async def _turns(database: AsyncEngine, child_id: uuid.UUID) -> list[Turn]:
    async with session_factory(database)() as session:
        rows = await session.scalars(select(Turn).where(Turn.child_id == child_id))
        return list(rows)


def _downlinks(hub: Hub, kind: Kind) -> float:
    """Frames of ``kind`` the hub has published."""
    return sample(hub, "teddy_hub_downlinks_published_total", {"kind": kind.topic_name})


def _inputs(records: list[RequestRecord]) -> list[str]:
    """What each moderation or speech request asked about."""
    return [str(record.body["input"]) for record in records]


def _assert_only(reply: Reply, name: str, reason: str) -> None:
    """The toy heard exactly the canned line ``name``, in audio too, and the turn ended with
    ``reason``."""
    assert reply.texts == [line(name, "en")]
    assert reply.reason == reason
    assert len(reply.pcm16) > 0


# --- 1. the cloud voice for a consented child ----------------------------------------------


@pytest.mark.parametrize("codec", [Codec.PCM16, Codec.OPUS], ids=["pcm16", "opus"])
async def test_consented_child_talks_to_the_cloud_voice_streamed(
    codec: Codec,
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.config.transcript = CHILD_SAYS
    fake_openai.config.reply = STORY
    fake_openai.config.reply_words_per_chunk = 2
    fake_openai.config.chat_chunk_delay_s = 0.1
    speech_delay_s = 0.25
    fake_openai.config.speech_chunk_delay_s = speech_delay_s
    # The chat and every speech answer keep their last chunk until the toy has been sent
    # audio: a hub that waited for the whole reply, or for a sentence's whole speech, before
    # speaking would never get there (and this test would fail), on any machine.
    fake_openai.config.hold_last_chunk = asyncio.Event()
    device_id = new_device_id()
    await pair(device_id, cloud_ai=True, first_name="Rosalind")
    hub = await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id, codecs=(codec.wire_name,))
    spoken = await _speech(CHILD_SAYS, talk_settings)

    async def release_once_audio_left() -> None:
        await wait_until(lambda: _downlinks(hub, Kind.REPLY_AUDIO) > 0, "the first reply audio")
        assert fake_openai.config.hold_last_chunk is not None
        fake_openai.config.hold_last_chunk.set()

    releaser = asyncio.create_task(release_once_audio_left())
    reply = await toy.say_audio(spoken, codec)
    await releaser

    assert reply.reason == "done", reply
    assert reply.errors == []
    assert reply.texts == STORY_SENTENCES
    assert reply.text == STORY.strip()
    # The child's speech went to the cloud as a 16 kHz mono WAV of the whole utterance.
    (transcription,) = fake_openai.received("transcriptions")
    wav = transcription.body["file"]
    assert isinstance(wav, bytes)
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        assert reader.getframerate() == 16_000
        seconds = reader.getnframes() / 16_000
    assert seconds == pytest.approx(len(spoken) / 32_000, abs=0.1)
    assert transcription.body["language"] == "en"
    # The chat: a system prompt naming the child, then the transcript, streamed.
    (chat,) = fake_openai.received("chat")
    messages = chat.body["messages"]
    assert messages[0]["role"] == "system"
    assert '"Rosalind"' in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": CHILD_SAYS}
    assert chat.body["stream"] is True
    # Moderation of the input, then of each sentence before it was spoken.
    assert _inputs(fake_openai.received("moderations")) == [CHILD_SAYS, *STORY_SENTENCES]
    assert _inputs(fake_openai.received("speech")) == STORY_SENTENCES
    assert all(r.status == 200 for r in fake_openai.requests)
    # The audio is the cloud voice's speech (24 kHz from the fake, at the toy's 16 kHz).
    expected_samples = 0
    for sentence in STORY_SENTENCES:
        expected_samples += len(await synthesize_pcm24k(sentence)) // 2 * 16_000 // 24_000
    assert reply.sample_rate == 16_000
    assert len(reply.pcm16) // 2 == pytest.approx(expected_samples, rel=0.05)
    # Streamed (the held last chunks above prove it; these are the same order as measured):
    # the first audio left while the chat was still streaming and its own speech arriving.
    assert reply.first_audio_ms is not None
    timings = reply.hub_timings_ms
    assert timings["first_audio"] < timings["total"]
    first_speech = fake_openai.received("speech")[0]
    assert first_speech.at < chat.sent_at[-1]
    # The rest of the reply took at least its streaming pauses after the first audio.
    assert reply.total_ms - reply.first_audio_ms >= speech_delay_s * 1000


# --- 2. and 3. the gates: consent, pairing ---------------------------------------------------


async def test_child_without_cloud_consent_never_reaches_the_provider(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    consented, unconsented = new_device_id(), new_device_id()
    await pair(consented, cloud_ai=True)
    child_id = await pair(unconsented, cloud_ai=False)
    await start_hub(**_cloud(fake_openai))
    spoken = await _speech("Hello Teddy, what is your favourite colour?", talk_settings)

    toy = await talker(unconsented)
    by_voice = await toy.say_audio(spoken)
    typed = await toy.say_text("Can you tell me a story?")

    assert fake_openai.received() == []
    for reply in (by_voice, typed):
        assert reply.reason == "done", reply
        assert reply.texts
        assert reply.text != fake_openai.config.reply_for([])
        assert len(reply.pcm16) > 0
    assert {turn.provider for turn in await _turns(database, child_id)} == {"offline"}

    # The same hub does use the cloud for the consented child (the gate is per child).
    cloud_reply = await (await talker(consented)).say_text("Can you tell me a story?")
    assert cloud_reply.reason == "done"
    assert cloud_reply.text == fake_openai.config.reply_for([])
    assert len(fake_openai.received("chat")) == 1


@pytest.mark.parametrize("spoken", [False, True], ids=["typed", "spoken"])
async def test_unpaired_toy_is_asked_to_be_set_up(
    spoken: bool,
    talk_settings: Settings,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
) -> None:
    await start_hub(**_cloud(fake_openai))
    toy = await talker()  # a device id no parent ever paired

    if spoken:
        pcm = await _speech("Hello Teddy!", talk_settings)
        reply = await toy.say_audio(pcm)
    else:
        reply = await toy.say_text("Hello Teddy!")

    _assert_only(reply, "setup_needed", "setup_needed")
    assert fake_openai.received() == []


# --- 4. moderation fails closed ------------------------------------------------------------


@pytest.mark.parametrize(
    "failures", [(500, 500, 500, 500), (HANG, HANG, HANG, HANG)], ids=["5xx", "hang"]
)
async def test_input_moderation_failure_fails_closed(
    failures: tuple[Any, ...],
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    fake_openai.config.fail("moderations", *failures)
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai, moderation_timeout_s=1.0))
    toy = await talker(device_id)

    started = time.monotonic()
    reply = await toy.say_text("Can you tell me a story?")

    _assert_only(reply, "moderation_unavailable", "moderation_unavailable")
    assert 1 <= len(fake_openai.received("moderations")) <= talk_settings.provider_retries + 1
    assert fake_openai.received("chat") == []
    assert fake_openai.received("speech") == []  # the canned line is the offline voice's
    # Ended by moderation's own bound (1 s, however many retries fit), not by the turn's cap.
    assert time.monotonic() - started < talk_settings.turn_deadline_s
    (turn,) = await _turns(database, child_id)
    assert "moderation_unavailable" in turn.safety_flags


@pytest.mark.parametrize("passing_sentences", [0, 1])
async def test_reply_moderation_failure_speaks_nothing_unmoderated(
    passing_sentences: int,
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.config.reply = STORY
    # Moderation answers the input and ``passing_sentences`` sentences, then fails for good
    # (the request log is where the fake takes its next failure from, right after logging).
    first_failing = 2 + passing_sentences

    class FailingFrom(list[RequestRecord]):
        def append(self, record: RequestRecord) -> None:
            super().append(record)
            moderations = sum(1 for logged in self if logged.endpoint == "moderations")
            if record.endpoint == "moderations" and moderations == first_failing:
                fake_openai.config.fail("moderations", 503, 503, 503, 503, 503, 503)

    fake_openai.requests = FailingFrom()
    device_id = new_device_id()
    await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("Can you tell me a story?")

    assert reply.reason == "moderation_unavailable", reply
    passed = STORY_SENTENCES[:passing_sentences]
    assert reply.texts == [*passed, line("moderation_unavailable", "en")]
    assert len(fake_openai.received("chat")) == 1  # the input passed; a reply sentence failed
    moderations = fake_openai.received("moderations")
    assert [r.status for r in moderations[:first_failing]] == [200] * (first_failing - 1) + [503]
    moderated = _inputs(moderations)
    assert moderated[: first_failing - 1] == ["Can you tell me a story?", *passed]
    assert set(moderated[first_failing - 1 :]) == {STORY_SENTENCES[passing_sentences]}
    # Only sentences that passed moderation went to the speech endpoint.
    assert _inputs(fake_openai.received("speech")) == passed
    for sentence in STORY_SENTENCES[passing_sentences:]:
        assert sentence not in reply.texts


# --- 5. and 6. unsafe input or reply: redirect and alert -----------------------------------


async def test_input_flagged_by_provider_is_redirected_with_an_alert(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    # A word the local safety layer has no reason to flag: only the provider's moderation does.
    fake_openai.config.flagged_words = frozenset({"pancakes"})
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("I like pancakes with jam.")

    assert reply.reason == "redirected", reply
    (redirect,) = reply.texts
    assert redirect in REDIRECTS
    assert len(reply.pcm16) > 0
    assert _inputs(fake_openai.received("moderations")) == ["I like pancakes with jam."]
    assert fake_openai.received("chat") == []
    assert fake_openai.received("speech") == []
    (alert,) = await _alerts(database, child_id)
    assert alert.categories
    (turn,) = await _turns(database, child_id)
    assert turn.flagged
    assert alert.turn_id == turn.id


async def test_the_providers_category_chooses_the_redirect(
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    fake_openai.config.flagged_words = frozenset({"pancakes"})
    fake_openai.config.flagged_category = "self-harm"
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("pancakes")

    assert reply.texts == [line("redirect_self_harm")]
    (alert,) = await _alerts(database, child_id)
    assert alert.categories == ["self_harm"]


async def test_the_apology_is_in_the_childs_language(
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    fake_openai.config.fail("chat", 503, 503, 503, 503)
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    async with session_factory(database)() as session:
        await session.execute(update(Child).where(Child.id == child_id).values(language="de"))
        await session.commit()
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("Erzähl mir eine Geschichte.")

    assert reply.reason == "error"
    assert reply.texts == [line("apology", "de")]


async def test_reply_sentence_flagged_by_provider_is_not_spoken(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    fake_openai.config.flagged_words = frozenset({"pancakes"})
    fake_openai.config.reply = "Hello friend. I love pancakes so much. Shall we play a game?"
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("What do you like?")

    assert reply.reason == "redirected", reply
    assert len(reply.texts) == 2
    assert reply.texts[0] == "Hello friend."
    assert reply.texts[1] in REDIRECTS
    assert "I love pancakes so much." not in reply.texts
    assert _inputs(fake_openai.received("speech")) == ["Hello friend."]
    assert len(await _alerts(database, child_id)) == 1


async def test_unsafe_reply_is_stopped_by_the_local_output_check(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
    database: AsyncEngine,
) -> None:
    secret = "Let's keep this our little secret, don't tell your mum."
    fake_openai.config.reply = f"What a fun day. {secret} Now off you go."
    device_id = new_device_id()
    child_id = await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)

    reply = await toy.say_text("What shall we do today?")

    assert reply.reason == "redirected", reply
    assert secret not in reply.texts
    assert "Now off you go." not in reply.texts
    assert reply.texts == ["What a fun day.", line("redirect_secrecy", "en")]
    # The unsafe sentence never went to the speech endpoint (nor to moderation: the local
    # check already said no).
    assert secret not in _inputs(fake_openai.received("speech"))
    assert secret not in _inputs(fake_openai.received("moderations"))
    (alert,) = await _alerts(database, child_id)
    assert "secrecy" in alert.categories
    (turn,) = await _turns(database, child_id)
    assert turn.flagged
    assert "unsafe_reply" in turn.safety_flags


# --- 7. provider failures: an apology, other toys unaffected --------------------------------


@pytest.mark.parametrize("failure", [503, HANG], ids=["503", "hang"])
async def test_failing_chat_ends_in_an_apology(
    failure: Any,
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
) -> None:
    attempts = talk_settings.provider_retries + 1
    fake_openai.config.fail("chat", *([failure] * (attempts + 2)))
    device_id = new_device_id()
    await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai, provider_timeout_s=1.0))
    toy = await talker(device_id)

    started = time.monotonic()
    reply = await toy.say_text("Tell me a story.")

    _assert_only(reply, "apology", "error")
    assert len(fake_openai.received("chat")) == attempts
    assert fake_openai.received("speech") == []
    # Ended by the provider's failures (each hang by its own timeout), not by the turn's cap.
    assert time.monotonic() - started < talk_settings.turn_deadline_s


async def test_other_toys_are_answered_while_a_provider_call_hangs(
    pair: Pair, start_hub: StartHub, talker: OpenTalker, fake_openai: FakeOpenAIServer
) -> None:
    released = asyncio.Event()
    # The chat hangs until the other toys have been answered, then fails (and so does its
    # retry): the order is fixed by the test, not by how fast anything runs.
    fake_openai.config.fail("chat", Failure(status=503, hang=True, until=released), 503, 503)
    cloud_id, offline_id = new_device_id(), new_device_id()
    await pair(cloud_id, cloud_ai=True)
    await pair(offline_id, cloud_ai=False)
    await start_hub(**_cloud(fake_openai))
    cloud_toy = await talker(cloud_id)
    offline_toy = await talker(offline_id)

    failing = asyncio.create_task(cloud_toy.say_text("Tell me a story."))
    await wait_until(lambda: bool(fake_openai.received("chat")), "the chat request")
    others = [await offline_toy.say_text(f"Do you like cake {n}?") for n in range(2)]
    assert not failing.done()  # still hanging while the other toy was answered twice
    (hanging,) = fake_openai.received("chat")
    assert hanging.status is None
    released.set()
    reply = await failing

    for other in others:
        assert other.reason == "done", other
        assert other.texts
    _assert_only(reply, "apology", "error")


# --- 8. abort ------------------------------------------------------------------------------


async def test_abort_stops_the_reply_and_the_provider_stream(
    talk_settings: Settings,
    pair: Pair,
    start_hub: StartHub,
    talker: OpenTalker,
    fake_openai: FakeOpenAIServer,
) -> None:
    # The chat stops short of its last word until the test ends: the second sentence can
    # never be complete, so the abort is the only way this reply ends, on any machine.
    fake_openai.config.reply = "Hello there. Then the little bear walked up the hill and sang."
    fake_openai.config.hold_last_chunk = asyncio.Event()
    device_id = new_device_id()
    await pair(device_id, cloud_ai=True)
    await start_hub(**_cloud(fake_openai))
    toy = await talker(device_id)
    utterance = os.urandom(UTTERANCE_ID_SIZE)
    body = {"utterance": utterance_hex(utterance), "text": "Tell me a long story."}
    await toy.toy.send(Kind.TEXT, json.dumps(body).encode())

    kinds = {Kind.REPLY_TEXT, Kind.REPLY_AUDIO, Kind.REPLY_END}
    while True:
        frame = await toy.toy.receive_any(kinds, EVENT_TIMEOUT_S)
        if frame.kind is Kind.REPLY_TEXT:
            assert json.loads(frame.payload)["text"] == "Hello there."
            break
        assert frame.kind is Kind.REPLY_AUDIO
    await toy.abort(utterance)

    end: dict[str, Any] | None = None
    audio_before_end = 0
    while end is None:
        frame = await toy.toy.receive_any(kinds, EVENT_TIMEOUT_S)
        if frame.kind is Kind.REPLY_END:
            end = json.loads(frame.payload)
        elif frame.kind is Kind.REPLY_AUDIO:
            assert parse_audio(frame.payload).utterance == utterance
            audio_before_end += 1
        else:
            pytest.fail(f"a sentence after the abort: {frame.payload!r}")

    assert end["utterance"] == utterance.hex()
    assert end["reason"] == "aborted"
    # Nothing more for this utterance once reply_end was sent.
    with pytest.raises(ToyError, match="no verified"):
        await toy.toy.receive_any(kinds, 1.0)
    # The hub hung up on the chat stream it no longer needs.
    (chat,) = fake_openai.received("chat")
    await wait_until(lambda: chat.hung_up, "the hub to close the chat stream")
