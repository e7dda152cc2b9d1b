"""The hub's MQTT client reads a whole batch per wake-up of the event loop.

aiomqtt reads one packet each time the socket wakes the loop; the hub's client reads on while
packets keep arriving (hub/mqtt.py), which is what makes its batches full. The read-ahead sits
on a private aiomqtt hook, so this test pins the behaviour: should an aiomqtt upgrade bypass
the hook, batches shrink silently and only this test would say so.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from hub.mqtt import BrokerAddress, Inbox, open_client

pytestmark = pytest.mark.integration

MOSQUITTO_PUB = shutil.which("mosquitto_pub")


@pytest.mark.skipif(MOSQUITTO_PUB is None, reason="mosquitto-clients is not installed")
async def test_one_wake_up_reads_many_packets(mosquitto: BrokerAddress, topic_root: str) -> None:
    assert MOSQUITTO_PUB is not None
    inbox = Inbox(read_ahead=256)
    topic = f"{topic_root}/read-ahead"
    async with open_client(mosquitto, inbox=inbox) as receiver:
        await receiver.subscribe(topic, qos=0)
        # Blocking on purpose: while the event loop cannot run, the broker fills the receiver's
        # socket with 100 messages, so the next wake-up finds them all waiting.
        subprocess.run(  # noqa: ASYNC221
            [MOSQUITTO_PUB, "-h", mosquitto.host, "-p", str(mosquitto.port), "-t", topic, "-l"],
            input=b"".join(b"m%d\n" % n for n in range(100)),
            check=True,
            timeout=10,
        )
        time.sleep(0.3)  # noqa: ASYNC251
        await asyncio.sleep(0)  # this turn resumes the test; the socket's reader runs next
        await asyncio.sleep(0)
        assert inbox.qsize() == 100, "one wake-up read every waiting packet"
