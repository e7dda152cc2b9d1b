"""Conversation turns through a real hub: its overhead with cloud providers, and the offline voice.

The hub runs in a child process of its own (``python -m bench.conversation``, built by
``Hub.build`` from ``TEDDY_*`` variables, memory stores, the embedded SQLite database in a
temporary directory), so that its event loop and its CPU are not shared with the simulated
toys or the fake providers: the figures are the hub's. The benchmark process runs the toys
(``hub.toy.talk.Talker``) and the fake OpenAI-compatible server of the tests
(``tests/fakes/openai_server.py``) on the dedicated Mosquitto of :mod:`bench.broker`.

Every figure is taken from the hub's own ``reply_end`` timings: ``first_audio`` is the time
from the end of speech (the utterance complete at the hub) to the first reply audio published.
With the cloud fake, what the providers cost on that path is known (it is configured), so

    overhead = first_audio - (stt + moderation + chat first sentence + moderation + tts)

is what the hub itself adds: decoding and WAV-wrapping the utterance, the SDK's HTTP, the
database reads and writes, the local safety layer, resampling and signing and publishing the
first audio chunk, plus any wait for the CPU under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.mqtt import BrokerAddress

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(_PROJECT_ROOT) not in sys.path:  # the fake provider lives in the tests package
    sys.path.insert(0, str(_PROJECT_ROOT))

# What the fake providers are told to cost, in seconds (before the first byte of each answer).
LATENCY_S: dict[str, float] = {
    "transcriptions": 0.100,
    "chat": 0.150,
    "speech": 0.100,
    "moderations": 0.030,
}
# One sentence, streamed a word a delta with no pause between deltas: the first sentence is
# complete as soon as the stream is, so "chat first sentence" costs exactly the chat latency.
REPLY = "Once upon a time a little bear found a shiny red balloon."
QUESTION = "Teddy, what is your favourite animal?"
_READY = "bench-hub-ready"
_FLEET_SECRET = "bench-conversation-fleet-secret-" + "0" * 32
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cloud_path_ms(spoken: bool) -> float:
    """The fake's configured latencies on the end-of-speech -> first-audio path, in ms."""
    path = LATENCY_S["moderations"] * 2 + LATENCY_S["chat"] + LATENCY_S["speech"]
    if spoken:
        path += LATENCY_S["transcriptions"]
    return path * 1000


def percentile(values: list[float], percent: float) -> float:
    """Linear-interpolated percentile (the median at 50); NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Series:
    """Per-turn figures of one phase, in ms, and what went wrong."""

    label: str
    values_ms: list[float] = field(default_factory=list)  # what the section reports
    first_audio_ms: list[float] = field(default_factory=list)  # the hub's raw first_audio
    toy_first_audio_ms: list[float] = field(default_factory=list)  # toy clock, from listen_end
    total_ms: list[float] = field(default_factory=list)  # hub's end of speech -> reply_end
    timings: list[dict[str, float]] = field(default_factory=list)  # every reply_end's
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    hub_cpu_s: float = 0.0

    def stages(self, spoken: bool, cloud: bool) -> str:
        """p50 of what each stage took beyond the fake's latency (``cloud``) or in all."""
        steps = [
            ("stt", "stt", "transcriptions"),
            ("input check", "input_checked", "moderations"),
            ("chat to first sentence", "chat_first_sentence", "chat"),
            ("check + tts to first audio", "first_audio", "speech"),
        ]
        if not spoken:
            steps = steps[1:]
        parts = []
        for name, stage, endpoint in steps:
            extra = LATENCY_S[endpoint] * 1000 if cloud else 0.0
            if stage == "first_audio" and cloud:
                extra += LATENCY_S["moderations"] * 1000
            previous = {"stt": None, "input_checked": "stt"}.get(stage)
            if stage == "chat_first_sentence":
                previous = "input_checked"
            elif stage == "first_audio":
                previous = "chat_first_sentence"
            elif stage == "input_checked" and not spoken:
                previous = None
            spans = [
                t[stage] - (t[previous] if previous else 0.0) - extra
                for t in self.timings
                if stage in t and (previous is None or previous in t)
            ]
            parts.append(f"{name} {percentile(spans, 50):+.1f}")
        return ", ".join(parts) + " ms"

    @property
    def turns(self) -> int:
        """Turns measured."""
        return len(self.values_ms)

    def fail(self, reason: str) -> None:
        """Count one turn that did not end in a spoken reply."""
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def line(self) -> str:
        """``p50 .. ms  p95 .. ms  (n turns ...)``."""
        notes = [f"{self.turns} turns in {self.seconds:.1f} s"]
        if self.toy_first_audio_ms:
            notes.append(
                f"first_audio p50 {percentile(self.first_audio_ms, 50):.0f} ms on the hub, "
                f"{percentile(self.toy_first_audio_ms, 50):.0f} ms at the toy"
            )
        if self.turns and self.hub_cpu_s:
            notes.append(f"hub CPU {self.hub_cpu_s * 1000 / self.turns:.1f} ms/turn")
        if self.failures:
            failed = ", ".join(f"{reason} {count}" for reason, count in self.failures.items())
            notes.append(f"failed: {failed}")
        return (
            f"p50 {percentile(self.values_ms, 50):7.1f} ms  "
            f"p95 {percentile(self.values_ms, 95):7.1f} ms  ({'; '.join(notes)})"
        )


@dataclass
class ConversationResult:
    """Every phase of the section."""

    one_toy: Series
    many_toys: Series
    offline: Series
    toys: int
    many_input: str


# --- the hub, in a process of its own ------------------------------------------------------


def _hub_environment(
    data_dir: Path, broker: BrokerAddress, topic_root: str, base_url: str
) -> dict[str, str]:
    """The child's environment: the parent's, without any hub or provider configuration."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEDDY_", "OPENAI_"))
        and key not in {"REDIS_URL", "DATABASE_URL", "JWT_SECRET_KEY", "ESP32_SHARED_SECRET"}
    }
    environment.update(
        {
            "TEDDY_DATA_DIR": str(data_dir),
            "TEDDY_ESP32_SHARED_SECRET": _FLEET_SECRET,
            "TEDDY_JWT_SECRET_KEY": "bench-jwt-secret-" + "x" * 40,
            "TEDDY_MQTT_HOST": broker.host,
            "TEDDY_MQTT_PORT": str(broker.port),
            "TEDDY_MQTT_TLS": "false",
            "TEDDY_TOPIC_ROOT": topic_root,
            "TEDDY_HUB_CLIENT_ID": f"svc:hub-{topic_root}",
            "TEDDY_VOICE_PROVIDER": "openai",
            "TEDDY_OPENAI_BASE_URL": base_url,
            "TEDDY_SESSION_MAX_TURNS": "100000",
            "TEDDY_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return environment


async def _serve_hub() -> None:
    """Child side: build the hub from the environment, say when it is subscribed, run."""
    from hub.logs import configure_logging  # noqa: PLC0415 - child process only
    from hub.service import Hub  # noqa: PLC0415
    from hub.settings import Settings  # noqa: PLC0415

    configure_logging("WARNING")
    hub = Hub.build(Settings())
    task = asyncio.create_task(hub.run(serve_status=False))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    subscribed = asyncio.create_task(hub.consumer.wait_subscribed())
    await asyncio.wait({task, subscribed}, return_when=asyncio.FIRST_COMPLETED)
    if subscribed.done():
        print(_READY, flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class HubProcess:
    """``python -m bench.conversation`` running a hub; ``cpu_s()`` reads its CPU time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, environment: dict[str, str]) -> AsyncIterator[HubProcess]:
        """Start the hub, wait until it is subscribed, stop it at the end."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.conversation",
            cwd=_PROJECT_ROOT,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(30):
                while True:
                    line = await process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the bench hub exited with {await process.wait()}")
                    if line.decode().strip() == _READY:
                        break
            yield cls(process)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(10):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()

    def cpu_s(self) -> float:
        """User plus system CPU seconds the hub has used so far (0 where /proc is missing)."""
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _TICKS


# --- the database: toys paired to children, as the API would -------------------------------


async def _pair(data_dir: Path, devices: list[tuple[str, bool]]) -> None:
    """Bind each (device, cloud consent) to a new child with consent recorded."""
    from pydantic import SecretStr  # noqa: PLC0415

    from hub.db.engine import create_engine_for, database_url, session_factory  # noqa: PLC0415
    from hub.db.migrate import upgrade  # noqa: PLC0415
    from hub.db.models import Child, Device, Parent  # noqa: PLC0415
    from hub.settings import Settings  # noqa: PLC0415

    settings = Settings(data_dir=data_dir, esp32_shared_secret=SecretStr(_FLEET_SECRET))
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    await upgrade(database_url(settings))
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            for device_id, cloud_ai in devices:
                parent = Parent(email=f"{uuid.uuid4().hex}@example.com", password_hash="x")  # noqa: S106
                session.add(parent)
                await session.flush()
                child = Child(
                    parent_id=parent.id,
                    first_name="Mia",
                    birth_year=datetime.now(UTC).year - 6,
                    language="en",
                    consent_given_at=datetime.now(UTC),
                    consent_method="in_app_checkbox",
                    consent_notice_version="2025-01",
                    cloud_ai_consent=cloud_ai,
                    daily_limit_minutes=None,
                )
                session.add(child)
                await session.flush()
                session.add(Device(device_id=device_id, parent_id=parent.id, child_id=child.id))
            await session.commit()
    finally:
        await engine.dispose()


# --- toys ----------------------------------------------------------------------------------


async def _synthesize_question() -> bytes:
    from hub.voice.audio import resample  # noqa: PLC0415
    from hub.voice.offline import PiperTextToSpeech  # noqa: PLC0415

    tts = await asyncio.to_thread(PiperTextToSpeech)
    parts = [pcm async for pcm in tts.synthesize(QUESTION, "en")]
    return resample(b"".join(parts), tts.sample_rate, 16_000)


Say = Callable[[Any], Awaitable[Any]]


async def _turns(
    talker: Any, series: Series, count: int, say: Say, measure: Callable[[dict[str, float]], float]
) -> None:
    """``count`` turns in a row on one toy, each recorded into ``series``."""
    from hub.errors import ToyError  # noqa: PLC0415

    for _ in range(count):
        try:
            reply = await say(talker)
        except ToyError:
            series.fail("no reply_end")
            continue
        timings = reply.hub_timings_ms
        if reply.reason != "done" or "first_audio" not in timings:
            series.fail(reply.reason or "no audio")
            continue
        series.values_ms.append(measure(timings))
        series.first_audio_ms.append(timings["first_audio"])
        series.timings.append(timings)
        series.total_ms.append(timings.get("total", float("nan")))
        if reply.first_audio_ms is not None:
            series.toy_first_audio_ms.append(reply.first_audio_ms)


async def _phase(
    hub: HubProcess,
    series: Series,
    talkers: list[Any],
    *,
    turns_each: int,
    say: Say,
    measure: Callable[[dict[str, float]], float],
) -> None:
    """Every talker runs ``turns_each`` turns, all at once; wall and hub CPU time recorded."""
    cpu = hub.cpu_s()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for talker in talkers:
            group.create_task(_turns(talker, series, turns_each, say, measure))
    series.seconds = time.perf_counter() - started
    series.hub_cpu_s = hub.cpu_s() - cpu


async def conversation_phase(
    broker: BrokerAddress,
    topic_root: str,
    *,
    turns: int = 100,
    toys: int = 50,
    turns_per_toy: int = 10,
    offline_turns: int = 20,
    many_input: str = "voice",
) -> ConversationResult:
    """Run the three phases against one hub process; see the module docstring."""
    from hub.protocol.keys import derive_device_key  # noqa: PLC0415
    from hub.toy.simulator import SimulatedToy  # noqa: PLC0415
    from hub.toy.talk import Talker  # noqa: PLC0415
    from tests.fakes.openai_server import FakeOpenAIConfig, FakeOpenAIServer  # noqa: PLC0415

    question = await _synthesize_question()
    spoken_path = cloud_path_ms(spoken=True)
    many_path = cloud_path_ms(spoken=many_input == "voice")

    async def say_voice(talker: Any) -> Any:
        return await talker.say_audio(question, timeout_s=30.0)

    async def say_typed(talker: Any) -> Any:
        return await talker.say_text(QUESTION, timeout_s=30.0)

    config = FakeOpenAIConfig(
        transcript=QUESTION,
        reply=REPLY,
        reply_words_per_chunk=1,
        speech_chunks=4,
        latency_s=dict(LATENCY_S),  # type: ignore[arg-type]
    )
    one_id = f"bench-one-{secrets.token_hex(4)}"
    offline_id = f"bench-offline-{secrets.token_hex(4)}"
    many_ids = [f"bench-many-{index:03d}-{secrets.token_hex(4)}" for index in range(toys)]
    one = Series("1 toy")
    many = Series(f"{toys} toys")
    offline = Series("offline")
    with tempfile.TemporaryDirectory(prefix="teddy-bench-conversation-") as directory:
        data_dir = Path(directory) / "data"
        await _pair(data_dir, [(one_id, True), (offline_id, False), *((d, True) for d in many_ids)])
        async with contextlib.AsyncExitStack() as stack:
            fake = await stack.enter_async_context(FakeOpenAIServer(config).serve())
            hub = await stack.enter_async_context(
                HubProcess.running(_hub_environment(data_dir, broker, topic_root, fake.base_url))
            )
            secret = _FLEET_SECRET.encode()

            async def talker_for(device_id: str) -> Any:
                toy = SimulatedToy(
                    device_id, derive_device_key(secret, device_id), broker, topic_root
                )
                await stack.enter_async_context(toy)
                talk = Talker(toy)
                await talk.hello(codecs=("pcm16",), sample_rates=(16_000,))
                return talk

            single = await talker_for(one_id)
            alone = await talker_for(offline_id)
            fleet = await asyncio.gather(*(talker_for(device_id) for device_id in many_ids))
            # Warm up: the cloud client, the fake's speech cache, Whisper and Piper loading.
            warm = Series("warm-up")
            await _turns(single, warm, 3, say_voice, lambda t: t["first_audio"])
            await _turns(alone, warm, 2, say_voice, lambda t: t["first_audio"])
            if warm.failures:
                raise RuntimeError(f"conversation warm-up turns failed: {warm.failures}")

            cloud_spoken = lambda t: t["first_audio"] - spoken_path  # noqa: E731
            cloud_many = lambda t: t["first_audio"] - many_path  # noqa: E731
            as_is = lambda t: t["first_audio"]  # noqa: E731
            _progress(f"conversation: {turns} spoken turns, one toy (cloud fake)")
            await _phase(hub, one, [single], turns_each=turns, say=say_voice, measure=cloud_spoken)
            many_say = say_voice if many_input == "voice" else say_typed
            _progress(f"conversation: {toys} toys x {turns_per_toy} turns at once (cloud fake)")
            # One more warm-up round with every toy at once (first turns open conversations).
            await _phase(hub, Series("warm-up"), fleet, turns_each=1, say=many_say, measure=as_is)
            await _phase(
                hub, many, fleet, turns_each=turns_per_toy, say=many_say, measure=cloud_many
            )
            _progress(f"conversation: {offline_turns} spoken turns, one toy (offline voice)")
            await _phase(
                hub, offline, [alone], turns_each=offline_turns, say=say_voice, measure=as_is
            )
    return ConversationResult(one, many, offline, toys, many_input)


def print_conversation(result: ConversationResult) -> None:
    """The section, as ``python -m bench`` prints it."""
    spoken = cloud_path_ms(spoken=True)
    typed = cloud_path_ms(spoken=False)
    latencies = ", ".join(
        f"{name} {LATENCY_S[key] * 1000:.0f} ms"
        for name, key in (
            ("stt", "transcriptions"),
            ("chat first token", "chat"),
            ("tts first byte", "speech"),
            ("moderation", "moderations"),
        )
    )
    print()
    print(f"conversation: hub overhead per turn (cloud fake, latencies {latencies})")
    print(
        f"  overhead = first_audio - (stt + moderation + chat first sentence + moderation + tts "
        f"first byte) = first_audio - {spoken:.0f} ms spoken, - {typed:.0f} ms typed"
    )
    print(
        "  first_audio: hub clock, utterance complete at the hub -> first reply_audio published; "
        "one-sentence reply streamed without pauses"
    )
    voice = result.many_input == "voice"
    kind = "spoken PCM" if voice else "typed text"
    print(f"  1 toy    : {result.one_toy.line()}  [spoken PCM input]")
    print(f"             p50 per stage beyond the fake: {result.one_toy.stages(True, True)}")
    print(f"  {result.toys} toys  : {result.many_toys.line()}  [{kind} input, concurrent]")
    print(f"             p50 per stage beyond the fake: {result.many_toys.stages(voice, True)}")
    print(
        f"offline voice: end of speech -> first audio  {result.offline.line()}  "
        f"[Whisper tiny.en + offline chat + Piper, spoken {QUESTION!r}]"
    )
    print(f"             p50 per stage: {result.offline.stages(True, False)}")
    print(flush=True)


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


if __name__ == "__main__":
    asyncio.run(_serve_hub())
