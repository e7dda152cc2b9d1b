"""Dispatch of verified frames to handlers, fair across devices.

Each device has a lane: a bounded backlog and a count of its handler calls in progress. A fixed
pool of workers takes lanes round-robin from a ready queue, one frame at a time, so a chatty toy
gets one turn per round like every other, never more than ``device_concurrency`` handler calls
at once, and never more than ``device_backlog`` waiting frames (the rest are dropped and counted).
Each call runs under ``handler_timeout_s`` (enforced by one watchdog for the pool); a handler
that raises or hangs costs its own frame and nothing else. No task or timer is created per frame.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from hub.metrics import HubMetrics
from hub.protocol.frames import Frame
from hub.protocol.kinds import Kind

log = structlog.get_logger("hub.dispatch")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A verified uplink frame as handlers see it."""

    topic: str
    frame: Frame
    received_ns: int = field(default_factory=time.monotonic_ns)

    @property
    def device_id(self) -> str:
        """The toy that signed the frame."""
        return self.frame.device_id


Handler = Callable[[Inbound], Awaitable[None]]


class _Worker:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.deadline: float | None = None
        self.expired = False


class _Lane:
    __slots__ = ("device_id", "pending", "queued", "running")

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.pending: deque[Inbound] = deque()
        self.running = 0
        self.queued = False


class Dispatcher:
    """Routes verified frames to the handler registered for their kind."""

    def __init__(
        self,
        metrics: HubMetrics,
        *,
        handler_timeout_s: float = 15.0,
        device_concurrency: int = 4,
        device_backlog: int = 64,
        max_pending: int = 10_000,
        workers: int = 128,
    ) -> None:
        self._metrics = metrics
        self._timeout = handler_timeout_s
        self._concurrency = device_concurrency
        self._backlog = device_backlog
        self._max_pending = max_pending
        self._workers = workers
        self._handlers: dict[Kind, Handler] = {}
        self._lanes: dict[str, _Lane] = {}
        self._ready: asyncio.Queue[_Lane] = asyncio.Queue()
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker_states: list[_Worker] = []
        # Where handler deadlines are read from; a test sets its own clock to decide when a
        # handler has overrun, instead of racing the machine's speed.
        self.clock: Callable[[], float] = time.monotonic

    def register(self, kind: Kind, handler: Handler) -> None:
        """Send every verified frame of ``kind`` to ``handler``."""
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind.topic_name} is already registered")
        self._handlers[kind] = handler

    def replace(self, kind: Kind, handler: Handler) -> None:
        """Send ``kind`` to ``handler`` instead of the one registered (tests record a kind)."""
        self._handlers[kind] = handler

    @property
    def pending(self) -> int:
        """Frames accepted and not yet finished."""
        return self._pending

    def submit(self, item: Inbound) -> bool:
        """Queue ``item`` without waiting; ``False`` when it was dropped (and counted)."""
        kind = item.frame.kind
        if kind not in self._handlers:
            self._metrics.dropped_no_handler.inc()
            log.warning(
                "frame_dropped", device_id=item.device_id, kind=kind.topic_name, reason="no_handler"
            )
            return False
        lane = self._lanes.get(item.device_id)
        if lane is None:
            lane = self._lanes[item.device_id] = _Lane(item.device_id)
        elif len(lane.pending) >= self._backlog:
            self._metrics.dropped_backlog.inc()
            log.warning(
                "frame_dropped",
                device_id=item.device_id,
                kind=kind.topic_name,
                reason="device_backlog",
            )
            return False
        lane.pending.append(item)
        self._pending += 1
        self._idle.clear()
        if self._pending >= self._max_pending:
            self._room.clear()
        if not lane.queued and lane.running < self._concurrency:
            lane.queued = True
            self._ready.put_nowait(lane)
        return True

    async def wait_for_room(self) -> None:
        """Return once fewer than ``max_pending`` frames are in flight (backpressure)."""
        await self._room.wait()

    async def run(self) -> None:
        """Run the worker pool and its timeout watchdog until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work())
            group.create_task(self._watch_deadlines())

    async def idle(self) -> None:
        """Wait until nothing is pending (tests and graceful shutdown)."""
        await self._idle.wait()

    async def _work(self) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - workers always run as tasks
            raise RuntimeError("a dispatcher worker must run as a task")
        worker = _Worker(task)
        self._worker_states.append(worker)
        ready = self._ready
        while True:
            lane = await ready.get()
            lane.queued = False
            item = lane.pending.popleft()
            lane.running += 1
            self._requeue(lane)
            try:
                await self._call(item, worker)
            finally:
                lane.running -= 1
                self._pending -= 1
                if self._pending < self._max_pending:
                    self._room.set()
                if not self._pending:
                    self._idle.set()
                if lane.pending:
                    self._requeue(lane)
                elif lane.running == 0:
                    del self._lanes[lane.device_id]

    def _requeue(self, lane: _Lane) -> None:
        if lane.pending and not lane.queued and lane.running < self._concurrency:
            lane.queued = True
            self._ready.put_nowait(lane)

    async def _call(self, item: Inbound, worker: _Worker) -> None:
        kind = item.frame.kind
        handler = self._handlers[kind]
        self._metrics.dispatched[kind].inc()
        started = time.perf_counter()
        worker.deadline = self.clock() + self._timeout
        try:
            await handler(item)
        except asyncio.CancelledError as error:
            # Three senders are possible: the watchdog (the call expired), a shutdown of the
            # pool (the task is being cancelled), or the handler itself (it awaited something
            # that was cancelled). Only a shutdown may end the worker.
            if worker.expired:
                self._count_timeout(item)
            elif worker.task.cancelling():
                raise
            else:
                self._count_error(item, error)
        except Exception as error:  # noqa: BLE001 - a handler's failure must not stop the pool
            self._count_error(item, error)
        else:
            if worker.expired:  # the handler swallowed its cancellation
                self._count_timeout(item)
        finally:
            worker.deadline = None
            self._metrics.handler_seconds.observe(time.perf_counter() - started)
            if worker.expired:
                worker.expired = False
                if worker.task.uncancel():  # a shutdown arrived while the call was expiring
                    raise asyncio.CancelledError

    def _count_error(self, item: Inbound, error: BaseException) -> None:
        kind = item.frame.kind
        self._metrics.handler_errors[kind].inc()
        log.error(
            "handler_failed",
            device_id=item.device_id,
            kind=kind.topic_name,
            error=type(error).__name__,
            exc_info=error,
        )

    def _count_timeout(self, item: Inbound) -> None:
        kind = item.frame.kind
        self._metrics.handler_timeouts[kind].inc()
        log.error(
            "handler_timeout",
            device_id=item.device_id,
            kind=kind.topic_name,
            timeout_s=self._timeout,
        )

    async def _watch_deadlines(self) -> None:
        """Cancel handler calls that overran their deadline.

        One watchdog for the whole pool instead of a timer per call: a per-call
        ``asyncio.timeout`` cost about half of the dispatcher's time per frame. A worker is
        only ever suspended inside its handler while it has a deadline, so the cancellation
        lands there; timeouts fire at most one tick late.
        """
        tick = min(self._timeout / 4, 0.25)
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            for worker in self._worker_states:
                deadline = worker.deadline
                if deadline is not None and deadline <= now and not worker.expired:
                    worker.expired = True
                    worker.task.cancel()
