"""``teddyhub up``: broker, hub and API as one process tree.

Each part runs in its own child process (so the API, which imports the hub, is started by name
and the hub never imports it), started in dependency order and awaited until it answers. If any
child ends, the others are stopped and ``up`` exits with an error; SIGINT or SIGTERM stops all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
import httpx

from hub.certs import ensure_dev_certificates
from hub.db.engine import database_url, is_sqlite
from hub.db.migrate import upgrade
from hub.errors import TeddyError
from hub.mqtt import BrokerAddress, open_client
from hub.ports import ensure_free
from hub.runtime import PARENT_PID_VARIABLE
from hub.settings import Settings

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class StartupError(TeddyError):
    """A part of the process tree did not start."""


@dataclass(frozen=True)
class Part:
    """One child process of the tree."""

    name: str
    command: str
    ready: Callable[[], Awaitable[bool]]
    where: str


def _broker_where(settings: Settings) -> str:
    where = f"mqtts://{settings.broker_bind}:{settings.mqtts_port}"
    if not settings.is_production:
        where += f"  and  mqtt://{settings.broker_bind}:{settings.mqtt_port}"
    return where + "  (embedded amqtt; toys log in with connect tokens)"


async def _mqtt_accepts(address: BrokerAddress, client_id: str) -> bool:
    """A full, authenticated MQTT CONNECT, the way the hub will make it."""
    try:
        async with open_client(address, identifier=client_id, timeout=1.0):
            return True
    except aiomqtt.MqttError:
        return False


async def _http_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


# What a broker never needs: it is given the connect root instead (least privilege).
_WITHHELD_FROM_BROKER = (
    "ESP32_SHARED_SECRET",
    "TEDDY_ESP32_SHARED_SECRET",
    "JWT_SECRET_KEY",
    "TEDDY_JWT_SECRET_KEY",
    "OPENAI_API_KEY",
    "TEDDY_OPENAI_API_KEY",
    "DATABASE_URL",
    "TEDDY_DATABASE_URL",
    "REDIS_URL",
    "TEDDY_REDIS_URL",
)


def broker_env(env: dict[str, str], settings: Settings) -> dict[str, str]:
    """The broker child's environment: the connect root, and no other secret."""
    kept = {name: value for name, value in env.items() if name not in _WITHHELD_FROM_BROKER}
    kept["TEDDY_BROKER_CONNECT_ROOT"] = settings.connect_root().hex()
    return kept


def plan(settings: Settings) -> list[Part]:
    """The parts ``up`` starts, in order, with their readiness probes."""
    parts: list[Part] = []
    if settings.broker == "embedded":
        parts.append(
            Part(
                "broker",
                "broker",
                lambda: _mqtt_accepts(
                    settings.service_address("hub"), f"svc:hub-probe-{os.getpid()}"
                ),
                _broker_where(settings),
            )
        )
    status = f"http://{settings.hub_status_host}:{settings.hub_status_port}"
    parts.append(
        Part(
            "hub",
            "hub",
            lambda: _http_ok(f"{status}/ready"),
            f"{status}/ready  and  /metrics",
        )
    )
    api = f"http://{settings.api_host}:{settings.api_port}"
    parts.append(
        Part(
            "api",
            "api",
            lambda: _http_ok(f"{api}/health"),
            f"{api}  (health at /health" + (")" if settings.is_production else ", docs at /docs)"),
        )
    )
    return parts


def check_ports(settings: Settings) -> None:
    """Fail fast, with the setting's name, if any port ``up`` needs is taken."""
    if settings.broker == "embedded":
        for port, setting in settings.broker_listeners():
            ensure_free(settings.broker_bind, port, setting)
    ensure_free(settings.hub_status_host, settings.hub_status_port, "TEDDY_HUB_STATUS_PORT")
    ensure_free(settings.api_host, settings.api_port, "TEDDY_API_PORT")


async def supervise(settings: Settings) -> None:
    """Start every part, report where each listens, and watch them until cancelled."""
    check_ports(settings)
    if settings.broker == "embedded" and settings.tls_cert_file is None:
        ensure_dev_certificates(settings.certs_dir)
    url = database_url(settings)
    if not settings.is_production and is_sqlite(url):
        # Once, before the hub and the API open the embedded file (each would migrate too).
        await upgrade(url)
    env = {
        **os.environ,
        "TEDDY_DATA_DIR": str(settings.data_dir.resolve()),
        PARENT_PID_VARIABLE: str(os.getpid()),
    }
    children: dict[str, asyncio.subprocess.Process] = {}
    try:
        for part in plan(settings):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hub",
                part.command,
                env=broker_env(env, settings) if part.name == "broker" else env,
                stdin=asyncio.subprocess.DEVNULL,
            )
            children[part.name] = process
            await _wait_ready(part, process)
        _print_summary(settings, plan(settings))
        await _watch(children)
    finally:
        await _stop_all(children)


async def _wait_ready(part: Part, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        if process.returncode is not None:
            raise StartupError(f"{part.name} exited with code {process.returncode} while starting")
        if await part.ready():
            return
        await asyncio.sleep(0.1)
    raise StartupError(f"{part.name} did not become ready within {START_TIMEOUT_S:g} s")


async def _watch(children: dict[str, asyncio.subprocess.Process]) -> None:
    waits = {asyncio.ensure_future(process.wait()): name for name, process in children.items()}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waits:
            future.cancel()
    finished = next(iter(done))
    raise StartupError(f"{waits[finished]} exited with code {finished.result()}; stopping")


async def _stop_all(children: dict[str, asyncio.subprocess.Process]) -> None:
    running = [p for p in reversed(children.values()) if p.returncode is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _print_summary(settings: Settings, parts: list[Part]) -> None:
    lines = [f"Teddy Hub is up ({settings.env} mode)"]
    lines += [f"  {part.name:<8} {part.where}" for part in parts]
    lines.append(f"  data     {settings.data_dir.resolve()}")
    lines.append("Check it from another shell:  teddyhub toy ping   (Ctrl+C here stops everything)")
    print("\n".join(lines), flush=True)
