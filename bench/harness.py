"""What every phase shares: counting arrivals, ending on idle, running the publisher process.

Arrivals are counted with one clock read each, the same in every phase, and the rate runs from
the first arrival to the last, so neither process start-up nor the idle wait is in it. A watchdog
(not a per-message timer) ends a phase once everything arrived or nothing arrived for a while,
so a lost message costs a few seconds and shows up as "received n of N", never as a hang.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_POLL_S = 0.05
# `python -m bench.publisher` must find the `bench` package: run it from the directory holding it.
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Counts arrivals and remembers when the first and the last one came."""

    __slots__ = ("count", "expected", "first_ns", "last_ns")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0

    def record(self) -> None:
        """One arrival, now."""
        now = time.monotonic_ns()
        if not self.count:
            self.first_ns = now
        self.count += 1
        self.last_ns = now

    @property
    def rate(self) -> float:
        """Arrivals per second between the first and the last; 0 with fewer than two."""
        span_ns = self.last_ns - self.first_ns
        if self.count < 2 or span_ns <= 0:
            return 0.0
        return (self.count - 1) * 1e9 / span_ns

    async def wait(self, *, start_timeout_s: float, idle_timeout_s: float) -> None:
        """Return once every expected arrival came, or arrivals stopped (or never started)."""
        started_ns = time.monotonic_ns()
        while self.count < self.expected:
            await asyncio.sleep(_POLL_S)
            now = time.monotonic_ns()
            if not self.count:
                if now - started_ns > start_timeout_s * 1e9:
                    return
            elif now - self.last_ns > idle_timeout_s * 1e9:
                return


@dataclass(frozen=True, slots=True)
class PublisherReport:
    """What the publisher process says it did."""

    published: int
    seconds: float
    rate: float
    exit_code: int


class Publisher:
    """``python -m bench.publisher`` as a child process; start it once the receiver listens."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(
        cls,
        *,
        port: int,
        topic_root: str,
        messages: int,
        devices: int,
        qos: int = 0,
        rate: float | None = None,
    ) -> Publisher:
        """Spawn the publisher; it signs and publishes as soon as its imports are done."""
        arguments = [
            "-m",
            "bench.publisher",
            "--port",
            str(port),
            "--root",
            topic_root,
            "--messages",
            str(messages),
            "--devices",
            str(devices),
            "--qos",
            str(qos),
            "--client-id",
            f"{topic_root}-publisher",
        ]
        if rate is not None:
            arguments += ["--rate", str(rate)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *arguments, cwd=_PROJECT_ROOT, stdout=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def report(self, timeout_s: float = 60.0) -> PublisherReport:
        """Wait for the publisher to finish and read its summary (zeros if it failed)."""
        try:
            async with asyncio.timeout(timeout_s):
                stdout, _ = await self._process.communicate()
        except TimeoutError:
            self.kill()
            await self._process.wait()
            return PublisherReport(0, 0.0, 0.0, -1)
        exit_code = self._process.returncode if self._process.returncode is not None else -1
        lines = stdout.decode(errors="replace").strip().splitlines()
        try:
            summary = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            summary = {}
        return PublisherReport(
            published=int(summary.get("published", 0)),
            seconds=float(summary.get("seconds", 0.0)),
            rate=float(summary.get("rate", 0.0)),
            exit_code=exit_code,
        )

    def kill(self) -> None:
        """Stop the publisher if it still runs (a phase that failed)."""
        if self._process.returncode is None:
            self._process.kill()
