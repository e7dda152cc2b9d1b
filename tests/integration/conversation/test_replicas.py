"""Two hub replicas on one shared subscription reassemble an utterance whose chunks are split
between them and out of order: exactly one of them answers, once."""

from __future__ import annotations

import json
import os
import random

import pytest
import redis.asyncio as aioredis

from hub.protocol.conversation import Codec
from hub.protocol.kinds import Kind
from hub.toy.talk import audio_chunks
from hub.voice.audio import resample
from hub.voice.offline import PiperTextToSpeech
from tests.integration.conversation.conftest import OpenTalker, Pair, StartReplicas
from tests.integration.harness import dispatched
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration


async def test_two_replicas_answer_a_split_utterance_once(
    pair: Pair,
    start_replicas: StartReplicas,
    talker: OpenTalker,
    redis_prefix: str,
    redis_client: aioredis.Redis,
) -> None:
    replicas = await start_replicas(2)
    talk = await talker()
    await pair(talk.toy.device_id)
    piper = PiperTextToSpeech()
    pcm = b"".join([part async for part in piper.synthesize("Tell me a joke please.", "en")])
    speech = resample(pcm, piper.sample_rate, 16_000)

    utterance = os.urandom(8)
    payloads = audio_chunks(utterance, speech, Codec.OPUS)
    assert len(payloads) >= 4
    order = list(range(len(payloads)))
    random.Random(3).shuffle(order)
    end = json.dumps({"utterance": utterance.hex(), "chunks": len(payloads)}).encode()
    await talk.toy.send(Kind.LISTEN_END, end)  # the end first, then the chunks shuffled
    for index in order:
        await talk.toy.send(Kind.AUDIO, payloads[index])
    reply = await talk.hear(utterance, timeout_s=EVENT_TIMEOUT_S)

    assert reply.reason == "done", reply
    assert reply.text
    per_replica = [dispatched(hub, Kind.AUDIO) for hub in replicas]
    assert sum(per_replica) == len(payloads)
    assert all(count > 0 for count in per_replica), per_replica  # really split
    turns = sum(
        hub.metrics.registry.get_sample_value(
            "teddy_hub_turns_total", {"outcome": "done", "voice": "offline"}
        )
        or 0
        for hub in replicas
    )
    assert turns == 1
    # Nothing of the utterance is left in Redis.
    keys = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}utt:*")]
    assert [key for key in keys if not key.endswith(b":done")] == []
