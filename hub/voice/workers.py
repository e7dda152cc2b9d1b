"""Where the offline voice computes: a few worker threads with a visible queue in front.

Whisper and Piper are CPU-bound and already use every core for one job, so running more jobs
at once than there are workers only makes each of them slower. Jobs (one utterance to
transcribe, one sentence to speak) wait their turn in a first-come queue instead, and a busy
hub shows that it is busy rather than failing turns:

* ``teddy_hub_offline_voice_waiting`` — jobs waiting for a worker now;
* ``teddy_hub_offline_voice_wait_seconds`` — how long each job waited, by stage;
* ``teddy_hub_offline_voice_timeouts_total`` — jobs that overran their compute bound;
* one ``offline_voice_busy`` log line when jobs start to queue, and one
  ``offline_voice_caught_up`` (with the deepest queue and the longest wait) when it drains.

Each job's bound (``limit_s``) starts when a worker picks it up, never while it waits, so a
long queue on a busy machine delays a turn but does not time it out; only a job that is stuck
while computing is refused. A job cancelled while waiting (the child pressed the button again)
leaves the queue at once; one already computing runs to its end in its thread (Python cannot
stop a thread), keeping its worker until then, and its result is dropped.

The queue is thread-based, not an asyncio primitive, so one set of loaded models and workers
may be shared by several event loops (a test suite's, or a benchmark's).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.voice.providers import ProviderError, ProviderFailure

log = structlog.get_logger("hub.voice.workers")

T = TypeVar("T")
_WAIT_BUCKETS: Final = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Stage(StrEnum):
    """What a job computes; a metric label."""

    STT = "stt"
    TTS = "tts"


def default_workers() -> int:
    """Half the cores, at least one: each model already spreads one job over several cores."""
    return max(1, (os.cpu_count() or 2) // 2)


class VoiceQueueMetrics:
    """The queue's metrics, in the registry of the hub that owns the voice."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.waiting = Gauge(
            "teddy_hub_offline_voice_waiting",
            "Offline speech jobs waiting for a worker (a busy hub queues, it does not fail).",
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "teddy_hub_offline_voice_wait_seconds",
            "How long offline speech jobs waited for a worker, by stage.",
            ["stage"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.timeouts = Counter(
            "teddy_hub_offline_voice_timeouts",
            "Offline speech jobs that overran their compute bound, by stage.",
            ["stage"],
            registry=registry,
        )


class VoiceWorkers:
    """A fixed pool of worker threads for the offline voice, with a first-come queue."""

    def __init__(
        self, workers: int | None = None, metrics: VoiceQueueMetrics | None = None
    ) -> None:
        self.workers = workers or default_workers()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="offline-voice"
        )
        self._metrics = metrics
        self._lock = threading.Lock()
        self._busy = 0  # jobs submitted and not finished (waiting or computing)
        self._waiting = 0
        self._episode_depth = 0
        self._episode_wait_s = 0.0

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker right now."""
        return self._waiting

    async def run(self, stage: Stage, work: Callable[[], T], *, limit_s: float) -> T:
        """``work()`` in a worker thread, once one is free, bounded by ``limit_s`` of computing.

        Raises:
            ProviderError: (timeout) when the job computed for longer than ``limit_s``,
                (unavailable) when the workers were closed; whatever ``work`` raises.
        """
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        finished = asyncio.Event()

        def signal(event: asyncio.Event) -> None:
            # RuntimeError: the caller's loop is gone, nobody waits for this job any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        def job() -> T:
            signal(started)
            return work()

        queued_at = time.monotonic()
        with self._lock:
            self._busy += 1
            queued = self._busy > self.workers
            if queued:
                self._add_waiting(stage)
        try:
            future = self._executor.submit(job)
        except RuntimeError:  # shut down
            self._release(None)
            if queued:
                self._remove_waiting(stage, 0.0)
            raise ProviderError(
                f"offline-{stage.value}", ProviderFailure.UNAVAILABLE, "the voice is closed"
            ) from None
        future.add_done_callback(self._release)

        def done(_: object) -> None:
            signal(started)  # a job cancelled in the queue never started
            signal(finished)

        future.add_done_callback(done)
        try:
            await started.wait()
        except asyncio.CancelledError:
            future.cancel()  # still waiting: it never runs
            raise
        finally:
            if queued:
                self._remove_waiting(stage, time.monotonic() - queued_at)
        if future.cancelled():
            raise ProviderError(
                f"offline-{stage.value}", ProviderFailure.UNAVAILABLE, "the voice is closed"
            )
        try:
            async with asyncio.timeout(limit_s):
                await finished.wait()
        except TimeoutError:
            if self._metrics is not None:
                self._metrics.timeouts.labels(stage.value).inc()
            log.warning("offline_voice_timeout", stage=stage.value, limit_s=round(limit_s, 1))
            raise ProviderError(
                f"offline-{stage.value}",
                ProviderFailure.TIMEOUT,
                f"still computing after {limit_s:.1f} s",
            ) from None
        return future.result()

    def _add_waiting(self, stage: Stage) -> None:
        """Count a job that must wait (called with the lock held)."""
        self._waiting += 1
        if self._waiting == 1:
            log.info("offline_voice_busy", stage=stage.value, workers=self.workers)
        self._episode_depth = max(self._episode_depth, self._waiting)
        if self._metrics is not None:
            self._metrics.waiting.set(self._waiting)

    def _remove_waiting(self, stage: Stage, waited_s: float) -> None:
        with self._lock:
            self._waiting -= 1
            self._episode_wait_s = max(self._episode_wait_s, waited_s)
            if self._metrics is not None:
                self._metrics.waiting.set(self._waiting)
                self._metrics.wait_seconds.labels(stage.value).observe(waited_s)
            if self._waiting == 0:
                log.info(
                    "offline_voice_caught_up",
                    deepest_queue=self._episode_depth,
                    longest_wait_ms=round(self._episode_wait_s * 1000),
                )
                self._episode_depth = 0
                self._episode_wait_s = 0.0

    def _release(self, _: object) -> None:
        with self._lock:
            self._busy -= 1

    def close(self) -> None:
        """Drop every waiting job; jobs computing finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
