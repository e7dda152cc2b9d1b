"""Telling a toy something from the API: one signed downlink, published as ``svc:api``.

The API publishes only for rare, parent-initiated events (an unpairing), so it connects for
the one message instead of holding a broker session: nothing to keep alive, and a broker
outage costs the parent nothing but the toy's notice. The broker's ACL lets ``svc:api``
publish downlinks and nothing else (docs/protocol.md, "Broker rules").
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Final

import aiomqtt
import structlog

from hub.downlink import sign_downlink
from hub.mqtt import open_client
from hub.protocol.keys import derive_device_key
from hub.protocol.kinds import Kind
from hub.settings import Settings

log = structlog.get_logger("api.toy_link")
NOTIFY_TIMEOUT_S: Final = 3.0


async def notify_toy(
    settings: Settings,
    device_id: str,
    kind: Kind,
    payload: bytes = b"",
    *,
    timeout_s: float = NOTIFY_TIMEOUT_S,
) -> bool:
    """Publish one signed downlink at QoS 1; True when the broker acknowledged it.

    A broker that cannot be reached within ``timeout_s`` gives False and one log line: the
    change the notice is about has been made already and must not be undone for it.
    """
    topic, frame = sign_downlink(
        derive_device_key(settings.fleet_secret(), device_id),
        settings.topic_root,
        device_id,
        kind,
        payload,
        timestamp_ms=time.time_ns() // 1_000_000,
    )
    identifier = f"svc:api-{secrets.token_hex(6)}"
    try:
        async with asyncio.timeout(timeout_s):
            client = open_client(
                settings.service_address("api"), identifier=identifier, timeout=timeout_s
            )
            async with client:
                await client.publish(topic, frame, qos=1)
    except (aiomqtt.MqttError, OSError, TimeoutError) as error:
        log.warning(
            "toy_notice_not_sent",
            device_id=device_id,
            kind=kind.topic_name,
            error=type(error).__name__,
        )
        return False
    log.info("toy_notice_sent", device_id=device_id, kind=kind.topic_name)
    return True
