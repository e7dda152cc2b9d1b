"""Running the real ``teddyhub`` command as subprocesses, on free ports and a private data dir.

Every limit here only turns a hang into a failure, so each is set for the slowest machine a run
may get (a busy two-core CI runner, ten times slower than a laptop) with a wide margin: a
command that works returns long before its limit, whatever the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from broker.plugins import REVOCATION_REFRESH_S
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

# One `teddyhub` command from its start to its exit, and `teddyhub up` from its start to healthy:
# seconds on a laptop (a Python start, a TLS login, the offline voice computing a reply).
COMMAND_TIMEOUT_S = 5 * EVENT_TIMEOUT_S
# What a simulated toy waits for the hub's answer (`--timeout` of toy ping / pair / say), below
# COMMAND_TIMEOUT_S so that a missing answer is reported by the toy itself.
TOY_TIMEOUT_S = 4 * EVENT_TIMEOUT_S
STOP_TIMEOUT_S = EVENT_TIMEOUT_S  # SIGTERM to exit, children included
HTTP_TIMEOUT_S = EVENT_TIMEOUT_S  # one API request
# pytest-timeout for a test with its own `teddyhub up`: above the limits inside it, so a hang is
# reported by the limit that caught it (pyproject's default suits tests of a few seconds).
E2E_TEST_TIMEOUT_S = 15 * EVENT_TIMEOUT_S
# Once this long has passed since the revocation file changed, every login sees the change: the
# broker re-reads the file on a login when its copy is REVOCATION_REFRESH_S old (broker.plugins).
# The wait is the broker's own figure, so it holds however slow the machine is.
REVOCATION_SEEN_AFTER_S = REVOCATION_REFRESH_S + 0.2

TEDDYHUB = str(Path(sys.executable).with_name("teddyhub"))
# Variables that would point a run at real services or keys: the embedded run must need none.
CONFIGURATION = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET_KEY",
    "ESP32_SHARED_SECRET",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@dataclass
class UpRun:
    """A running ``teddyhub up`` and how to reach it."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    api_url: str
    hub_status_url: str
    output: Path
    http: httpx.Client  # for the API and the hub's status port, with HTTP_TIMEOUT_S

    def teddyhub(
        self, *args: str, env: dict[str, str] | None = None, timeout_s: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TEDDYHUB, *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def ping(
        self, device_id: str, timeout_s: float = TOY_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """``teddyhub toy ping`` as ``device_id``, waiting up to ``timeout_s`` for the pong."""
        return self.teddyhub("toy", "ping", "--device-id", device_id, "--timeout", str(timeout_s))

    def ping_refused_after_revocation(self, device_id: str) -> subprocess.CompletedProcess[str]:
        """A ping as ``device_id`` once the broker must have seen a revocation just written.

        One attempt, no polling: past the broker's refresh interval the login is refused for
        certain, and a refusal for a reason other than the revocation shows in the output.
        """
        time.sleep(REVOCATION_SEEN_AFTER_S)
        return self.ping(device_id)

    def wait_until_pong(self, device_id: str) -> None:
        """Ping as ``device_id`` until a pong comes (the hub's own list follows a restore on its
        next refresh, every 2 s, with no event to wait on); fail after COMMAND_TIMEOUT_S."""
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            # A ping the hub dropped as still revoked gets no pong: wait for a few refreshes.
            result = self.ping(device_id, timeout_s=5 * REVOCATION_REFRESH_S)
            if result.returncode == 0:
                return
            assert time.monotonic() < deadline, f"no pong for {device_id}: {result.stderr}"


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in CONFIGURATION and not key.startswith("TEDDY_")
    }
    env.update(
        {
            "TEDDY_DATA_DIR": str(data_dir),
            "TEDDY_MQTT_PORT": str(free_port()),
            "TEDDY_MQTTS_PORT": str(free_port()),
            "TEDDY_API_PORT": str(free_port()),
            "TEDDY_HUB_STATUS_PORT": str(free_port()),
            "TEDDY_TOPIC_ROOT": f"e{uuid.uuid4().hex[:12]}",
            "TEDDY_HUB_CLIENT_ID": f"svc:hub-{uuid.uuid4().hex[:12]}",
        }
    )
    return env


def wait_healthy(run: UpRun, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"teddyhub up exited early:\n{run.output.read_text()}")
        try:
            if (
                run.http.get(f"{run.api_url}/health").status_code == 200
                and "Teddy Hub is up" in run.output.read_text()
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"teddyhub up did not become healthy:\n{run.output.read_text()}")


@contextlib.contextmanager
def running_up(data_dir: Path, output: Path, **extra_env: str) -> Iterator[UpRun]:
    """``teddyhub up`` on free ports (and ``extra_env``), healthy; stopped afterwards."""
    env = embedded_env(data_dir) | extra_env
    with output.open("wb") as sink:
        process = subprocess.Popen([TEDDYHUB, "up"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    run = UpRun(
        process,
        env,
        f"http://127.0.0.1:{env['TEDDY_API_PORT']}",
        f"http://127.0.0.1:{env['TEDDY_HUB_STATUS_PORT']}",
        output,
        httpx.Client(timeout=HTTP_TIMEOUT_S),
    )
    try:
        wait_healthy(run)
        yield run
    finally:
        run.http.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpRun]:
    """``teddyhub up`` with no configuration but free ports, healthy before the test starts."""
    with running_up(tmp_path / "data", tmp_path / "up.log") as run:
        yield run
