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

A job that overruns its bound still holds its thread (Python cannot stop one), so the pool
starts a replacement at once and the stuck thread leaves when its job ends: one stuck model
call never stops the voice for every other toy (``teddy_hub_offline_voice_stuck`` counts the
threads stuck now; at most four times the workers are replaced, past that jobs wait).

The queue is thread-based, not an asyncio primitive, so one set of loaded models and workers
may be shared by several event loops (a test suite's, or a benchmark's).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar, cast

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
        self.stuck = Gauge(
            "teddy_hub_offline_voice_stuck",
            "Worker threads still computing a job past its bound (each one replaced).",
            registry=registry,
        )


@dataclass
class _Job:
    """One piece of work, its result, and the thread that computes it (once one does)."""

    work: Callable[[], Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    thread: threading.Thread | None = None


class VoiceWorkers:
    """A fixed pool of worker threads for the offline voice, with a first-come queue."""

    def __init__(
        self, workers: int | None = None, metrics: VoiceQueueMetrics | None = None
    ) -> None:
        self.workers = workers or default_workers()
        self._metrics = metrics
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._stuck: set[threading.Thread] = set()  # replaced; they leave after their job
        self._max_stuck = 4 * self.workers
        self._started_threads = 0
        self._closed = False
        self._busy = 0  # jobs submitted and not finished (waiting or computing)
        self._waiting = 0
        self._episode_depth = 0
        self._episode_wait_s = 0.0
        with self._lock:
            for _ in range(self.workers):
                self._start_thread()

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker right now."""
        return self._waiting

    def _start_thread(self) -> None:
        """One more worker (called with the lock held)."""
        self._started_threads += 1
        thread = threading.Thread(
            target=self._serve, name=f"offline-voice-{self._started_threads}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _serve(self) -> None:
        """A worker: take jobs until told to stop, or until its stuck job ends."""
        me = threading.current_thread()
        while True:
            job = self._jobs.get()
            if job is None or not job.future.set_running_or_notify_cancel():
                if job is None:
                    break
                continue
            job.thread = me
            try:
                result = job.work()
            except BaseException as error:  # noqa: BLE001 - handed to the caller as it is
                job.future.set_exception(error)
            else:
                job.future.set_result(result)
            with self._lock:
                if me in self._stuck:  # a replacement took this worker's place
                    self._stuck.discard(me)
                    self._set_stuck_gauge()
                    break
        with self._lock:
            self._threads.discard(me)

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

        def job_work() -> T:
            signal(started)
            return work()

        job = _Job(job_work)
        queued_at = time.monotonic()
        with self._lock:
            if self._closed:
                raise ProviderError(
                    f"offline-{stage.value}", ProviderFailure.UNAVAILABLE, "the voice is closed"
                )
            self._busy += 1
            queued = self._busy > self.workers
            if queued:
                self._add_waiting(stage)
        job.future.add_done_callback(self._release)

        def done(_: object) -> None:
            signal(started)  # a job cancelled in the queue never started
            signal(finished)

        job.future.add_done_callback(done)
        self._jobs.put(job)
        try:
            await started.wait()
        except asyncio.CancelledError:
            job.future.cancel()  # still waiting: it never runs
            raise
        finally:
            if queued:
                self._remove_waiting(stage, time.monotonic() - queued_at)
        if job.future.cancelled():
            raise ProviderError(
                f"offline-{stage.value}", ProviderFailure.UNAVAILABLE, "the voice is closed"
            )
        try:
            async with asyncio.timeout(limit_s):
                await finished.wait()
        except TimeoutError:
            self._overran(stage, job, limit_s)
            raise ProviderError(
                f"offline-{stage.value}",
                ProviderFailure.TIMEOUT,
                f"still computing after {limit_s:.1f} s",
            ) from None
        return cast(T, job.future.result())

    def _overran(self, stage: Stage, job: _Job, limit_s: float) -> None:
        """Count a job past its bound and give its worker's place to a new thread."""
        replaced = False
        with self._lock:
            thread = job.thread
            if (
                thread is not None
                and not job.future.done()
                and thread not in self._stuck
                and not self._closed
                and len(self._stuck) < self._max_stuck
            ):
                self._stuck.add(thread)
                self._start_thread()
                replaced = True
                self._set_stuck_gauge()
        if self._metrics is not None:
            self._metrics.timeouts.labels(stage.value).inc()
        log.warning(
            "offline_voice_timeout",
            stage=stage.value,
            limit_s=round(limit_s, 1),
            worker_replaced=replaced,
        )

    def _set_stuck_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.stuck.set(len(self._stuck))

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
        """Drop every waiting job and stop the workers; jobs computing finish first."""
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for _ in range(threads):
            self._jobs.put(None)
