"""The brokers the broker-rule tests run against, behind one small interface.

A test gets a :class:`BrokerUnderTest` and talks to it only through real MQTT clients, so the
same test can run against the embedded amqtt broker (:func:`embedded_broker`) and, where the
module ``tests.broker.mosquitto_broker`` exists, against Mosquitto with the native plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from broker.embedded import run_broker
from broker.plugins import REVOCATION_REFRESH_S
from hub.certs import ensure_dev_certificates
from hub.protocol.keys import derive_connect_key, derive_connect_root
from hub.protocol.tokens import make_connect_token, service_password
from hub.revocation import write_revocation_file
from hub.settings import Settings
from tests.conftest import TEST_FLEET_SECRET
from tests.services import free_port
from tests.timing import EVENT_TIMEOUT_S

HOST = "127.0.0.1"
START_TIMEOUT_S = EVENT_TIMEOUT_S  # a broker starting to accept connections
# The embedded broker re-reads the revocation file on a login when its copy is at least
# REVOCATION_REFRESH_S old (broker.plugins): once that long has passed since a change, every
# login sees it, however slow the machine. The margin only absorbs clock rounding.
EMBEDDED_REVOCATION_DELAY_S = REVOCATION_REFRESH_S + 0.2


@dataclass
class BrokerUnderTest:
    """A running broker and what a test needs to log in to it."""

    name: str
    host: str
    tls_port: int
    plain_port: int | None
    ca_file: Path
    topic_root: str
    fleet_secret: bytes
    revocation_file: Path
    revocation_delay_s: float = EMBEDDED_REVOCATION_DELAY_S
    revoked: set[str] = field(default_factory=set)

    @property
    def connect_root(self) -> bytes:
        """The broker's only key."""
        return derive_connect_root(self.fleet_secret)

    def device_password(self, device_id: str, timestamp_s: int | None = None) -> str:
        """A fresh connect token for ``device_id`` (now, unless ``timestamp_s``)."""
        key = derive_connect_key(self.connect_root, device_id)
        when = int(time.time()) if timestamp_s is None else timestamp_s
        return make_connect_token(key, device_id, when, os.urandom(8))

    def service_password(self, name: str) -> str:
        """The password of service account ``svc:<name>``."""
        return service_password(self.connect_root, name)

    async def revoke(self, device_id: str) -> None:
        """Add ``device_id`` to the revocation file and wait out the broker's refresh interval.

        From then on every login of ``device_id`` is refused: the broker re-reads the file on a
        login once its copy is older than that interval, so the wait is the broker's own figure,
        not a guess at how fast it is. Connections already open are closed by a periodic sweep
        a little later; a test waits for that disconnection itself.
        """
        self.revoked.add(device_id)
        write_revocation_file(self.revocation_file, self.revoked)
        await asyncio.sleep(self.revocation_delay_s)

    def uplink(self, device_id: str, kind: str = "ping") -> str:
        """The topic ``device_id`` publishes ``kind`` to."""
        return f"{self.topic_root}/v1/{device_id}/up/{kind}"

    def downlink(self, device_id: str, kind: str = "pong") -> str:
        """The topic ``device_id`` receives ``kind`` on."""
        return f"{self.topic_root}/v1/{device_id}/down/{kind}"

    def downlinks(self, device_id: str) -> str:
        """The filter of all of ``device_id``'s downlinks."""
        return f"{self.topic_root}/v1/{device_id}/down/+"

    @property
    def uplinks(self) -> str:
        """The hub's filter of every uplink."""
        return f"{self.topic_root}/v1/+/up/+"


async def wait_accepting(host: str, port: int, task: asyncio.Task[Any] | None = None) -> None:
    """Return once ``host:port`` accepts TCP; raise the task's error if it ended first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if task is not None and task.done():
            task.result()
            raise RuntimeError("the broker stopped before it listened")
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepts on {host}:{port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


def embedded_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Development settings of a private embedded broker (overrides win).

    ``env="production"`` without certificate files uses a development CA made under
    ``tmp_path``, as an operator's PKI would provide.
    """
    data_dir = tmp_path / "broker-data"
    values: dict[str, Any] = {
        "env": "development",
        "data_dir": data_dir,
        "esp32_shared_secret": SecretStr(TEST_FLEET_SECRET),
        "topic_root": f"t{uuid.uuid4().hex[:12]}",
        "broker_bind": HOST,
        "mqtt_port": free_port(),
        "mqtts_port": free_port(),
        "revocation_file": tmp_path / "revoked-devices.txt",
    }
    values.update(overrides)
    if values["env"] == "production" and values.get("tls_cert_file") is None:
        paths = ensure_dev_certificates(data_dir / "certs")
        values.setdefault("tls_ca_file", paths.ca_cert)
        values["tls_cert_file"] = paths.server_cert
        values["tls_key_file"] = paths.server_key
        # run_broker reads only broker settings; these satisfy production's other checks.
        values.setdefault("redis_url", "redis://127.0.0.1:1/0")
        values.setdefault("database_url", "postgresql://unused@127.0.0.1:1/unused")
    return Settings(**values)


@contextlib.asynccontextmanager
async def embedded_broker(tmp_path: Path, **overrides: Any) -> AsyncIterator[BrokerUnderTest]:
    """``broker.embedded.run_broker`` as a task of the running loop, until the block ends."""
    settings = embedded_settings(tmp_path, **overrides)
    task = asyncio.create_task(run_broker(settings), name="embedded-broker")
    try:
        await wait_accepting(HOST, settings.mqtts_port, task)
        yield BrokerUnderTest(
            name="embedded",
            host=HOST,
            tls_port=settings.mqtts_port,
            plain_port=None if settings.is_production else settings.mqtt_port,
            ca_file=settings.ca_file,
            topic_root=settings.topic_root,
            fleet_secret=settings.fleet_secret(),
            revocation_file=settings.revoked_devices_file,
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=EVENT_TIMEOUT_S)
