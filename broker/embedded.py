"""Runs the hardened amqtt broker (broker.server) with Teddy Hub's plugins.

Listeners: MQTT over TLS on ``TEDDY_MQTTS_PORT`` always, with the certificate from settings (a
development CA and certificate are made under ``TEDDY_DATA_DIR/certs`` on first start); plain
MQTT on ``TEDDY_MQTT_PORT`` in development only. The broker is given the connect root, never
the fleet secret's other branches (docs/protocol.md, "Key hierarchy").
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import structlog

from broker.server import TeddyBroker
from hub.certs import ensure_dev_certificates
from hub.errors import ConfigError, PortInUseError
from hub.ports import ensure_free
from hub.settings import Settings

log = structlog.get_logger("broker")


def broker_config(settings: Settings, connect_root: bytes) -> dict[str, Any]:
    """amqtt's configuration: listeners and the Teddy plugins."""
    listeners: dict[str, Any] = {
        # amqtt copies "default"'s value into every field another listener leaves at its
        # default, so a plain listener's ssl=False became TLS: "default" is an unbound template.
        "default": {"type": "tcp", "bind": None},
        "tls": {
            "type": "tcp",
            "bind": f"{settings.broker_bind}:{settings.mqtts_port}",
            "max_connections": settings.broker_max_connections,
            "ssl": True,
            "certfile": str(settings.cert_file),
            "keyfile": str(settings.key_file),
        },
    }
    if not settings.is_production:
        listeners["plain"] = {
            "type": "tcp",
            "bind": f"{settings.broker_bind}:{settings.mqtt_port}",
            "max_connections": settings.broker_max_connections,
            "ssl": False,
        }
    return {
        "listeners": listeners,
        "plugins": {
            "broker.plugins.TeddyAuthPlugin": {
                "connect_root_hex": connect_root.hex(),
                "allow_anonymous": settings.broker_allow_anonymous and not settings.is_production,
                "revocation_file": str(settings.revoked_devices_file),
            },
            "broker.plugins.TeddyTopicPlugin": {"topic_root": settings.topic_root},
        },
    }


async def run_broker(settings: Settings) -> None:
    """Serve until cancelled.

    Raises:
        ConfigError: when the TLS certificate is missing in production.
        PortInUseError: when a listener's port is taken.
    """
    if settings.tls_cert_file is None and settings.tls_key_file is None:
        if settings.is_production:
            raise ConfigError(
                "TEDDY_TLS_CERT_FILE and TEDDY_TLS_KEY_FILE must be set in production"
            )
        ensure_dev_certificates(settings.certs_dir)
    for port, setting in settings.broker_listeners():
        ensure_free(settings.broker_bind, port, setting)
    broker = TeddyBroker(
        broker_config(settings, settings.connect_root()),
        max_packet_size=settings.broker_max_packet_size,
        max_queued=settings.broker_max_queued_messages,
        max_inflight=settings.broker_max_inflight_messages,
        topic_root=settings.topic_root,
        revocation_file=settings.revoked_devices_file,
    )
    try:
        await broker.start()
    except Exception as error:
        if _is_address_in_use(error):
            port, setting = settings.broker_listeners()[0]
            raise PortInUseError(setting, settings.broker_bind, port) from error
        raise
    log.info(
        "broker_listening",
        bind=settings.broker_bind,
        ports={setting: port for port, setting in settings.broker_listeners()},
    )
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def _is_address_in_use(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.errno == errno.EADDRINUSE:
            return True
        current = current.__cause__ or current.__context__
    return False
