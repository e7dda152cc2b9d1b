"""A Mosquitto of the benchmark's own, on a free port, configured not to drop anything.

The system Mosquitto on 1883 keeps its default limits (``max_queued_messages 1000`` counts QoS 0
messages waiting for a slow subscriber, and the excess is dropped), is shared with whatever else
runs on the machine, and may persist sessions to disk. A throughput figure is only meaningful
if every published message can reach the subscriber, so the benchmark starts a broker with
unbounded queues, no persistence and TCP_NODELAY, and stops it at the end.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO = "/usr/sbin/mosquitto"
_HOST = "127.0.0.1"

_CONFIG = """\
listener {port} {host}
allow_anonymous true
set_tcp_nodelay true
persistence false
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
max_inflight_bytes 0
log_dest stderr
log_type error
log_type warning
"""


def free_port(host: str = _HOST) -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def mosquitto_version() -> str:
    """The first line Mosquitto prints about itself, e.g. ``mosquitto version 2.0.11``."""
    try:
        # `mosquitto -h` prints its version and usage, then exits non-zero.
        result = subprocess.run(
            [MOSQUITTO, "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({type(error).__name__})"
    lines = (result.stdout or result.stderr).splitlines()
    return lines[0].strip() if lines else "unknown"


class BenchBroker:
    """A dedicated Mosquitto, running while the ``with`` block runs.

    Raises:
        RuntimeError: on entry, when Mosquitto exits or does not listen within ``start_timeout_s``.
    """

    def __init__(self, start_timeout_s: float = 10.0) -> None:
        self.host = _HOST
        self.port = free_port()
        self._start_timeout_s = start_timeout_s
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchBroker:
        self._dir = tempfile.TemporaryDirectory(prefix="teddy-bench-mosquitto-")
        config = Path(self._dir.name) / "mosquitto.conf"
        config.write_text(_CONFIG.format(port=self.port, host=self.host), encoding="utf-8")
        log = (Path(self._dir.name) / "mosquitto.log").open("wb")
        try:
            self._process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
        finally:
            log.close()
        try:
            self._wait_listening()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of Mosquitto's log (warnings and errors only), for a failure message."""
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "mosquitto.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _wait_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} in time")
