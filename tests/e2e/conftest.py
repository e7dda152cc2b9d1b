"""Running the real ``teddyhub`` command as subprocesses, on free ports and a private data dir."""

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

from tests.services import free_port

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

    def teddyhub(
        self, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TEDDYHUB, *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def stop(self, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


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


def wait_healthy(run: UpRun, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"teddyhub up exited early:\n{run.output.read_text()}")
        try:
            if (
                httpx.get(f"{run.api_url}/health", timeout=1).status_code == 200
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
    )
    try:
        wait_healthy(run)
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpRun]:
    """``teddyhub up`` with no configuration but free ports, healthy before the test starts."""
    with running_up(tmp_path / "data", tmp_path / "up.log") as run:
        yield run
