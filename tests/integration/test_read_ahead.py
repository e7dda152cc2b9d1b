"""The hub's MQTT client reads a whole batch per wake-up of the event loop.

aiomqtt reads one packet each time the socket wakes the loop; the hub's client reads on while
packets keep arriving (hub/mqtt.py), which is what makes its batches full. The read-ahead sits
on a private aiomqtt hook, so this test pins the behaviour: should an aiomqtt upgrade bypass
the hook, batches shrink silently and only this test would say so.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import struct
import subprocess
import termios
import time

import aiomqtt
import pytest

from hub.mqtt import BrokerAddress, Inbox, open_client
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration

MOSQUITTO_PUB = shutil.which("mosquitto_pub")


def wait_for_socket_bytes(
    client: aiomqtt.Client, expected: int, timeout_s: float = EVENT_TIMEOUT_S
) -> None:
    """Block (the event loop too, on purpose) until the socket has ``expected`` unread bytes."""
    sock = client._client.socket()  # paho's socket; the test needs to look under aiomqtt
    assert sock is not None
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        if waiting >= expected:
            return
        assert time.monotonic() < deadline, f"only {waiting} of {expected} bytes arrived"
        time.sleep(0.01)


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
            input=b"".join(b"m%d\n" % n for n in range(100)),  # one message a line
            check=True,
            timeout=EVENT_TIMEOUT_S,
        )
        payloads = [b"m%d" % n for n in range(100)]
        expected = sum(2 + 2 + len(topic) + len(payload) for payload in payloads)
        wait_for_socket_bytes(receiver, expected)
        await asyncio.sleep(0)  # this turn resumes the test; the socket's reader runs next
        await asyncio.sleep(0)
        assert inbox.qsize() == 100, "one wake-up read every waiting packet"
