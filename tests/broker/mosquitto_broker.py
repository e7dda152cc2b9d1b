"""Mosquitto with Teddy Hub's native plugin (broker/mosquitto), as a broker under test.

:func:`mosquitto_broker` builds the plugin (``make -C broker/mosquitto``), writes a
configuration like ``broker/mosquitto/mosquitto.conf`` (TLS listener with a development
certificate, the plugin given the connect root only, a private topic root and revocation
file), starts ``/usr/sbin/mosquitto`` on free ports and yields a
:class:`tests.broker.brokers.BrokerUnderTest`. Without the build tools, the headers or
Mosquitto the test is skipped (a failure when ``CI=true``: CI must run it).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from hub.certs import CertificatePaths, ensure_dev_certificates
from hub.protocol.keys import derive_connect_root
from tests.broker.brokers import HOST, START_TIMEOUT_S, BrokerUnderTest
from tests.conftest import TEST_FLEET_SECRET
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "broker" / "mosquitto"
PLUGIN = PLUGIN_DIR / "build" / "teddy_auth.so"
MOSQUITTO = Path("/usr/sbin/mosquitto")
# The plugin looks at the revocation file at most every 2 s (REVOCATION_CHECK_MS in
# teddy_auth_plugin.c), on logins and on Mosquitto's tick: once that long has passed since a
# change, every login sees it (see BrokerUnderTest.revoke).
MOSQUITTO_REVOCATION_DELAY_S = 2.5
# Exit status of the Makefile's header check: the headers are missing, not the code broken.
MISSING_HEADERS_STATUS = 2
SUPPORTED_OVERRIDES = frozenset(
    {
        "env",
        "plain_listener",
        "allow_anonymous",
        "broker_allow_anonymous",
        "topic_root",
        "broker_max_connections",
        "broker_max_packet_size",
        "broker_max_queued_messages",
        "broker_max_inflight_messages",
        "persistence",
        "replay_capacity",
        "debug_log",
    }
)


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where Mosquitto and the plugin's build must be present."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"mosquitto plugin unavailable in CI: {reason}")
    pytest.skip(f"mosquitto plugin unavailable: {reason}")


def build_plugin() -> Path:
    """``make -C broker/mosquitto``; the path of ``teddy_auth.so``."""
    make = shutil.which("make")
    if make is None:
        _unavailable("no 'make' on PATH")
    if shutil.which("cc") is None:
        _unavailable("no C compiler ('cc') on PATH")
    if not MOSQUITTO.exists():
        _unavailable(f"{MOSQUITTO} is missing (Debian package mosquitto)")
    result = subprocess.run(
        [make, "-C", str(PLUGIN_DIR)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        if "teddy_auth: missing headers" in output:
            _unavailable(output.splitlines()[-1])
        pytest.fail(f"make -C broker/mosquitto failed:\n{output}")
    return PLUGIN


def _flag(value: Any) -> str:
    return "true" if value else "false"


def write_config(
    directory: Path, *, tls_port: int, plain_port: int | None, **overrides: Any
) -> tuple[Path, str, Path]:
    """Write mosquitto.conf and the plugin's files; the config, topic root, revocation file."""
    unknown = set(overrides) - SUPPORTED_OVERRIDES
    if unknown:
        raise TypeError(
            f"mosquitto_broker does not support {sorted(unknown)}; "
            f"supported: {sorted(SUPPORTED_OVERRIDES)}"
        )
    production = overrides.get("env", "development") == "production"
    allow_anonymous = (
        bool(overrides.get("allow_anonymous", overrides.get("broker_allow_anonymous", False)))
        and not production
    )
    topic_root = overrides.get("topic_root") or f"t{uuid.uuid4().hex[:12]}"
    directory.mkdir(parents=True, exist_ok=True)
    certs = ensure_dev_certificates(directory.parent / "certs")
    root_file = directory / "connect-root.hex"
    root_file.write_text(derive_connect_root(TEST_FLEET_SECRET.encode()).hex() + "\n")
    root_file.chmod(0o600)
    revocation_file = directory / "revoked-devices.txt"
    if not revocation_file.exists():
        revocation_file.write_text("# revoked device ids, one a line\n", encoding="utf-8")
    max_connections = overrides.get("broker_max_connections", 1000)
    lines = [
        "per_listener_settings false",
        f"allow_anonymous {_flag(allow_anonymous)}",
        f"persistence {_flag(overrides.get('persistence', False))}",
        f"persistence_location {directory}/",
        f"log_dest file {directory / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        *(["log_type debug"] if overrides.get("debug_log") else []),
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"max_packet_size {overrides.get('broker_max_packet_size', 20480)}",
        f"max_inflight_messages {overrides.get('broker_max_inflight_messages', 20)}",
        f"max_queued_messages {overrides.get('broker_max_queued_messages', 1000)}",
        "set_tcp_nodelay true",
        "",
        f"listener {tls_port} {HOST}",
        f"max_connections {max_connections}",
        f"certfile {certs.server_cert}",
        f"keyfile {certs.server_key}",
        "",
    ]
    if plain_port is not None:
        lines += [f"listener {plain_port} {HOST}", f"max_connections {max_connections}", ""]
    lines += [
        f"plugin {PLUGIN}",
        f"plugin_opt_connect_root_file {root_file}",
        f"plugin_opt_topic_root {topic_root}",
        f"plugin_opt_revocation_file {revocation_file}",
        f"plugin_opt_allow_anonymous {_flag(allow_anonymous)}",
    ]
    if "replay_capacity" in overrides:
        lines.append(f"plugin_opt_replay_capacity {int(overrides['replay_capacity'])}")
    if os.geteuid() == 0:
        # As root Mosquitto would switch to the "mosquitto" user, who cannot read tmp_path.
        lines.append(f"user {getpass.getuser()}")
    config = directory / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config, topic_root, revocation_file


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


async def _wait_listening(process: asyncio.subprocess.Process, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise RuntimeError(
                f"mosquitto exited with {process.returncode} before listening:\n{_read(log)}"
            )
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto does not accept on {HOST}:{port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def mosquitto_broker(tmp_path: Path, **overrides: Any) -> AsyncIterator[BrokerUnderTest]:
    """Mosquitto with the plugin, stopped when the block ends.

    Overrides: ``env`` ("production": no plain listener, anonymous never), ``plain_listener``
    (a plain MQTT listener too; off unless asked), ``allow_anonymous`` /
    ``broker_allow_anonymous``, ``topic_root``, ``broker_max_connections``,
    ``broker_max_packet_size``, ``broker_max_queued_messages``,
    ``broker_max_inflight_messages``, ``persistence``, ``replay_capacity``, ``debug_log``
    (Mosquitto's debug log, with every ACL denial).
    """
    build_plugin()
    tls_port = free_port()
    plain_port = free_port() if overrides.get("plain_listener") else None
    directory = tmp_path / "mosquitto"
    config, topic_root, revocation_file = write_config(
        directory, tls_port=tls_port, plain_port=plain_port, **overrides
    )
    process = await asyncio.create_subprocess_exec(
        str(MOSQUITTO),
        "-c",
        str(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_listening(process, tls_port, directory / "mosquitto.log")
        yield BrokerUnderTest(
            name="mosquitto",
            host=HOST,
            tls_port=tls_port,
            plain_port=plain_port,
            ca_file=CertificatePaths.in_dir(tmp_path / "certs").ca_cert,
            topic_root=topic_root,
            fleet_secret=TEST_FLEET_SECRET.encode(),
            revocation_file=revocation_file,
            revocation_delay_s=MOSQUITTO_REVOCATION_DELAY_S,
        )
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=EVENT_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
