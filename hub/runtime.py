"""Running a long-lived coroutine as a process: signals, exit codes, one-line errors."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from hub.errors import TeddyError

PARENT_PID_VARIABLE = "TEDDY_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def follow_parent() -> None:
    """End this process with its parent, when ``teddyhub up`` started it.

    Asked for by the child itself at start-up (not in a ``preexec_fn``, which is unsafe once
    the parent has threads): Linux sends SIGTERM if the parent dies, and a parent that died
    before the request was made is noticed by the pid check.
    """
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):
        sys.exit("teddyhub: the process that started this one is gone")


def run_until_signal(main: Coroutine[Any, Any, None]) -> int:
    """Run ``main`` until it ends or SIGINT/SIGTERM arrives; return the exit code.

    A ``TeddyError`` (a port in use, a bad setting) is printed as one line and exits 2; a
    signal ends ``main`` by cancellation so its ``finally`` blocks close connections.
    """

    async def runner() -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - asyncio.run always runs a task
            raise RuntimeError("run_until_signal needs a running task")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        await main

    errors: list[TeddyError] = []
    try:
        try:
            asyncio.run(runner())
        except* TeddyError as group:
            errors.extend(_teddy_errors(group))
    except asyncio.CancelledError:
        return 0
    for error in errors:
        print(f"teddyhub: {error}", file=sys.stderr)
    return 2 if errors else 0


def _teddy_errors(group: BaseExceptionGroup[TeddyError]) -> list[TeddyError]:
    found: list[TeddyError] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found.extend(_teddy_errors(error))
        else:
            found.append(error)
    return found
