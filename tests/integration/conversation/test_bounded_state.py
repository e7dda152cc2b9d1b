"""What one toy can make a hub hold: unfinished utterances are capped per toy and in all, and
a typed question resent or redelivered to any replica is answered once."""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from hub.conversation.lines import line
from hub.errors import ToyError
from hub.protocol.conversation import AudioChunk, Codec, encode_audio
from hub.protocol.kinds import Kind
from hub.service import Hub
from hub.toy.talk import Talker
from tests.integration.conversation.conftest import OpenTalker, Pair, StartHub, StartReplicas
from tests.integration.harness import dispatched, sample, wait_until
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration


def refused(hub: Hub) -> float:
    return sample(hub, "teddy_hub_conversation_rejections_total", {"reason": "too_many_utterances"})


def open_utterances(hub: Hub) -> float:
    return sample(hub, "teddy_hub_open_utterances")


async def listen_start(talk: Talker, utterance: bytes) -> None:
    body = {"utterance": utterance.hex(), "codec": "pcm16"}
    await talk.toy.send(Kind.LISTEN_START, json.dumps(body).encode())


async def test_a_toy_flooding_listen_start_is_refused_past_its_cap(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    # Utterances stay open for the whole test: the flood is what is measured, not timeouts.
    hub = await start_hub(utterance_timeout_s=EVENT_TIMEOUT_S)
    flooder, other = await talker(), await talker()
    await pair(flooder.toy.device_id)
    await pair(other.toy.device_id)
    cap = hub.settings.max_open_utterances_per_device
    for utterance in (os.urandom(8) for _ in range(cap)):
        await listen_start(flooder, utterance)
    await wait_until(lambda: open_utterances(hub) == cap, "the toy's utterances to open")

    # One more is refused, and the toy is told so in words.
    one_more = os.urandom(8)
    await listen_start(flooder, one_more)
    told = await flooder.hear(one_more, EVENT_TIMEOUT_S)
    assert told.errors == ["too_many_utterances"]
    assert told.texts == [line("too_many_utterances")]
    assert told.reason == "too_many_utterances"
    assert refused(hub) == 1

    # A flood of them costs nothing more: each is counted and dropped.
    flood = [os.urandom(8) for _ in range(15)]
    for utterance in flood:
        await listen_start(flooder, utterance)
    await wait_until(lambda: refused(hub) == 16, "the flood to be refused")
    assert open_utterances(hub) == cap
    # Audio for a refused utterance is not kept either.
    chunk = AudioChunk(flood[-1], 0, Codec.PCM16, b"\x00\x00" * 1_600)
    await flooder.toy.send(Kind.AUDIO, encode_audio(chunk))
    await wait_until(lambda: refused(hub) == 17, "the chunk to be refused")
    assert hub.talk.utterances.held() == 0  # type: ignore[attr-defined]
    # Another toy is served as before.
    reply = await other.say_text("what is your name")
    assert reply.reason == "done"


async def test_open_utterances_are_capped_across_toys(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    hub = await start_hub(utterance_timeout_s=EVENT_TIMEOUT_S, max_open_utterances=5)
    first, second = await talker(), await talker()
    for utterance in (os.urandom(8) for _ in range(4)):
        await listen_start(first, utterance)
    for utterance in (os.urandom(8) for _ in range(2)):
        await listen_start(second, utterance)
    await wait_until(lambda: dispatched(hub, Kind.LISTEN_START) == 6, "every listen_start")
    await wait_until(lambda: refused(hub) == 1, "the sixth to be refused")
    assert open_utterances(hub) == 5


async def typed_twice(talk: Talker, text: str) -> bytes:
    """The same typed question sent twice (a toy's resend): two frames, one utterance."""
    utterance = os.urandom(8)
    body = json.dumps({"utterance": utterance.hex(), "text": text}).encode()
    await talk.toy.send(Kind.TEXT, body)
    await talk.toy.send(Kind.TEXT, body)
    return utterance


async def test_a_resent_typed_question_is_answered_once(
    pair: Pair, start_hub: StartHub, talker: OpenTalker
) -> None:
    hub = await start_hub()
    talk = await talker()
    await pair(talk.toy.device_id)
    utterance = await typed_twice(talk, "what is your name")
    reply = await talk.hear(utterance, EVENT_TIMEOUT_S)
    await wait_until(lambda: dispatched(hub, Kind.TEXT) == 2, "both frames")

    assert reply.reason == "done"
    assert "Teddy" in reply.text
    await _assert_nothing_more(talk, utterance)
    assert sample(hub, "teddy_hub_turns_total", {"outcome": "done", "voice": "offline"}) == 1


async def test_two_replicas_answer_a_resent_typed_question_once(
    pair: Pair,
    start_replicas: StartReplicas,
    talker: OpenTalker,
) -> None:
    replicas = await start_replicas(2)
    talk = await talker()
    await pair(talk.toy.device_id)
    # Several questions, each sent twice: the shared subscription spreads the copies over the
    # replicas, so some pairs are split between them whatever order the broker picks.
    for n in range(4):
        utterance = await typed_twice(talk, f"what is your name {n}")
        reply = await talk.hear(utterance, EVENT_TIMEOUT_S)
        assert reply.reason == "done", reply
        await wait_until(
            lambda n=n: sum(dispatched(hub, Kind.TEXT) for hub in replicas) == 2 * (n + 1),
            "both copies",
        )
        await _assert_nothing_more(talk, utterance)

    per_replica = [dispatched(hub, Kind.TEXT) for hub in replicas]
    assert all(count > 0 for count in per_replica), per_replica  # really shared
    turns = sum(
        sample(hub, "teddy_hub_turns_total", {"outcome": "done", "voice": "offline"})
        for hub in replicas
    )
    assert turns == 4


async def _assert_nothing_more(talk: Talker, utterance: bytes) -> None:
    """No second answer to ``utterance`` (a short wait: a slow machine can only pass it)."""
    kinds = {Kind.REPLY_TEXT, Kind.REPLY_END, Kind.ERROR}
    with contextlib.suppress(ToyError):
        while True:
            frame = await talk.toy.receive_any(kinds, 1.0)
            assert json.loads(frame.payload).get("utterance") != utterance.hex(), frame
