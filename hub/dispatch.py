"""Dispatch of verified frames to handlers, fair across devices.

Each device has a lane: a bounded backlog and a count of its handler calls in progress. A fixed
pool of workers takes lanes round-robin from a ready queue, one frame at a time, so a chatty toy
gets one turn per round like every other, never more than ``device_concurrency`` handler calls
at once, and never more than ``device_backlog`` waiting frames (the rest are dropped and counted).
Each call runs under ``handler_timeout_s``; a handler that raises or hangs costs its own frame
and nothing else. No task is created per frame.
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

    def register(self, kind: Kind, handler: Handler) -> None:
        """Send every verified frame of ``kind`` to ``handler``."""
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind.topic_name} is already registered")
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
        """Run the worker pool until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work())

    async def idle(self) -> None:
        """Wait until nothing is pending (tests and graceful shutdown)."""
        await self._idle.wait()

    async def _work(self) -> None:
        ready = self._ready
        while True:
            lane = await ready.get()
            lane.queued = False
            item = lane.pending.popleft()
            lane.running += 1
            self._requeue(lane)
            try:
                await self._call(item)
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

    async def _call(self, item: Inbound) -> None:
        kind = item.frame.kind
        handler = self._handlers[kind]
        self._metrics.dispatched[kind].inc()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                await handler(item)
        except TimeoutError:
            self._metrics.handler_timeouts[kind].inc()
            log.exception(
                "handler_timeout",
                device_id=item.device_id,
                kind=kind.topic_name,
                timeout_s=self._timeout,
            )
        except Exception as error:
            self._metrics.handler_errors[kind].inc()
            log.exception(
                "handler_failed",
                device_id=item.device_id,
                kind=kind.topic_name,
                error=type(error).__name__,
                exc_info=error,
            )
        finally:
            self._metrics.handler_seconds.observe(time.perf_counter() - started)
