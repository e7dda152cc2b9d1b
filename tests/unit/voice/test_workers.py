"""The offline voice's workers: a busy hub queues jobs visibly, and a job's bound counts its
computing only, never its wait. Jobs here block on events the test releases, so every order
below is fixed by the test, not by how fast the machine runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hub.voice.providers import ProviderError, ProviderFailure
from hub.voice.workers import Stage, VoiceQueueMetrics, VoiceWorkers
from tests.timing import EVENT_TIMEOUT_S


def blocker(
    release: threading.Event, result: str = "done"
) -> tuple[threading.Event, Callable[[], str]]:
    """A job that reports it started, then computes until ``release`` is set."""
    started = threading.Event()

    def work() -> str:
        started.set()
        if not release.wait(EVENT_TIMEOUT_S):
            raise AssertionError("the test never released the job")
        return result

    return started, work


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


async def until(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            while not predicate():  # noqa: ASYNC110 - a gauge has no change notification
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


async def test_a_job_waits_for_a_free_worker_and_the_wait_is_counted(
    registry: CollectorRegistry,
) -> None:
    workers = VoiceWorkers(1, VoiceQueueMetrics(registry))
    release_first, release_second = threading.Event(), threading.Event()
    first_started, first_work = blocker(release_first, "first")
    second_started, second_work = blocker(release_second, "second")
    with capture_logs() as logs:
        first = asyncio.create_task(workers.run(Stage.STT, first_work, limit_s=EVENT_TIMEOUT_S))
        await asyncio.to_thread(first_started.wait, EVENT_TIMEOUT_S)
        second = asyncio.create_task(workers.run(Stage.TTS, second_work, limit_s=EVENT_TIMEOUT_S))
        await until(lambda: workers.waiting == 1, "the second job to queue")
        assert sample(registry, "teddy_hub_offline_voice_waiting") == 1
        assert not second_started.is_set()  # one worker: the second job has not begun

        release_first.set()
        assert await first == "first"
        await asyncio.to_thread(second_started.wait, EVENT_TIMEOUT_S)
        release_second.set()
        assert await second == "second"

    assert sample(registry, "teddy_hub_offline_voice_waiting") == 0
    assert sample(registry, "teddy_hub_offline_voice_wait_seconds_count", {"stage": "tts"}) == 1
    assert sample(registry, "teddy_hub_offline_voice_wait_seconds_count", {"stage": "stt"}) == 0
    events = [entry["event"] for entry in logs]
    assert events == ["offline_voice_busy", "offline_voice_caught_up"]
    caught_up = logs[1]
    assert caught_up["deepest_queue"] == 1
    workers.close()


async def test_the_bound_counts_computing_not_waiting(registry: CollectorRegistry) -> None:
    workers = VoiceWorkers(1, VoiceQueueMetrics(registry))
    release = threading.Event()
    started, work = blocker(release)
    holding = asyncio.create_task(workers.run(Stage.STT, work, limit_s=EVENT_TIMEOUT_S))
    await asyncio.to_thread(started.wait, EVENT_TIMEOUT_S)
    # A quick job whose bound (generous for what it computes) is shorter than its wait.
    quick = asyncio.create_task(workers.run(Stage.TTS, lambda: "quick", limit_s=2.0))
    await until(lambda: workers.waiting == 1, "the quick job to queue")
    await asyncio.sleep(3.0)  # it has now waited longer than its bound
    release.set()
    assert await holding == "done"
    assert await quick == "quick"
    assert sample(registry, "teddy_hub_offline_voice_timeouts_total", {"stage": "tts"}) == 0
    workers.close()


async def test_a_job_computing_past_its_bound_is_refused_and_counted(
    registry: CollectorRegistry,
) -> None:
    workers = VoiceWorkers(1, VoiceQueueMetrics(registry))
    release = threading.Event()
    _, work = blocker(release)
    with capture_logs() as logs, pytest.raises(ProviderError) as caught:
        await workers.run(Stage.STT, work, limit_s=0.05)
    release.set()
    assert caught.value.failure is ProviderFailure.TIMEOUT
    assert sample(registry, "teddy_hub_offline_voice_timeouts_total", {"stage": "stt"}) == 1
    assert [entry["event"] for entry in logs] == ["offline_voice_timeout"]
    workers.close()


async def test_a_stuck_job_loses_its_worker_not_the_voice(registry: CollectorRegistry) -> None:
    workers = VoiceWorkers(1, VoiceQueueMetrics(registry))
    release = threading.Event()
    _, stuck_work = blocker(release)
    with pytest.raises(ProviderError):
        await workers.run(Stage.STT, stuck_work, limit_s=0.05)
    assert sample(registry, "teddy_hub_offline_voice_stuck") == 1
    # The one worker is still stuck, yet the next job runs: a new thread took its place.
    assert await workers.run(Stage.TTS, lambda: "next", limit_s=EVENT_TIMEOUT_S) == "next"
    release.set()  # the stuck job ends; its thread leaves instead of adding a worker
    await until(lambda: sample(registry, "teddy_hub_offline_voice_stuck") == 0, "the stuck job")
    assert await workers.run(Stage.TTS, lambda: 1, limit_s=EVENT_TIMEOUT_S) == 1
    workers.close()


async def test_a_job_cancelled_while_waiting_never_runs(registry: CollectorRegistry) -> None:
    workers = VoiceWorkers(1, VoiceQueueMetrics(registry))
    release = threading.Event()
    started, work = blocker(release)
    holding = asyncio.create_task(workers.run(Stage.STT, work, limit_s=EVENT_TIMEOUT_S))
    await asyncio.to_thread(started.wait, EVENT_TIMEOUT_S)
    ran = threading.Event()
    waiting = asyncio.create_task(
        workers.run(Stage.TTS, ran.set, limit_s=EVENT_TIMEOUT_S)  # the child pressed again
    )
    await until(lambda: workers.waiting == 1, "the job to queue")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert workers.waiting == 0
    release.set()
    await holding
    # The next job runs at once: the cancelled one left no trace in the queue.
    assert await workers.run(Stage.TTS, lambda: "next", limit_s=EVENT_TIMEOUT_S) == "next"
    assert not ran.is_set()
    workers.close()


async def test_a_failing_job_raises_its_own_error() -> None:
    workers = VoiceWorkers(2)

    def broken() -> None:
        raise ProviderError("offline-whisper", ProviderFailure.UNAVAILABLE, "model gone")

    with pytest.raises(ProviderError, match="model gone"):
        await workers.run(Stage.STT, broken, limit_s=EVENT_TIMEOUT_S)
    assert await workers.run(Stage.STT, lambda: 7, limit_s=EVENT_TIMEOUT_S) == 7
    workers.close()


async def test_closed_workers_refuse_new_jobs_with_a_provider_error() -> None:
    workers = VoiceWorkers(1)
    workers.close()
    with pytest.raises(ProviderError) as caught:
        await workers.run(Stage.TTS, lambda: None, limit_s=EVENT_TIMEOUT_S)
    assert caught.value.failure is ProviderFailure.UNAVAILABLE


def test_default_workers_leave_a_core_for_the_rest() -> None:
    assert VoiceWorkers().workers >= 1
