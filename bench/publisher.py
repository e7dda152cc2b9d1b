"""The benchmark's toys: a separate process that signs frames and publishes them.

Run as ``python -m bench.publisher --port P --root R --messages N [--qos 1 --rate R]``; it prints
one JSON line (``published``, ``seconds``, ``rate``) when done. A separate process, so that
signing and publishing never share the event loop or the GIL with the receiver being measured.

Two modes, because they answer different questions:

* QoS 0 flood (throughput). The publisher must be much faster than any receiver, or the figure
  measures the publisher. aiomqtt publishes ~8k msg/s (each ``publish`` registers a writer and
  waits for it) and paho ~50k msg/s even alone (one ``send`` per message, and less while the
  receiver and the broker share the two cores), both within reach of the ~30k msg/s a receiver
  manages. So the batch is signed first, encoded as MQTT 3.1.1 PUBLISH packets here and written
  to the socket in large chunks (~300k msg/s): the broker holds the whole batch within a
  fraction of a second and the receiver drains it at its own pace, first message to last. Keep
  a phase well under the 30 s clock window, or its last frames are rejected as stale.
* QoS 1 at a fixed rate (latency), through ``hub.mqtt.open_client`` as a toy would publish.
  Each frame is signed just before it is published and carries ``time.monotonic_ns()`` then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
import time

from bench.fleet import BenchFleet
from hub.mqtt import NODELAY, BrokerAddress, open_client

_CHUNK = 512
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
_PUBLISH_QOS0 = 0x30
_CONNECT = 0x10
_DISCONNECT = b"\xe0\x00"
_U16 = struct.Struct(">H")


def _remaining_length(length: int) -> bytes:
    """MQTT's variable-length integer (MQTT 3.1.1, section 2.2.3)."""
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | 0x80 if length else digit)
        if not length:
            return bytes(encoded)


def _packet(packet_type: int, body: bytes) -> bytes:
    return bytes((packet_type,)) + _remaining_length(len(body)) + body


def _connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, 60 s keepalive (section 3.1)."""
    identifier = client_id.encode("utf-8")
    body = b"\x00\x04MQTT\x04\x02" + _U16.pack(60) + _U16.pack(len(identifier)) + identifier
    return _packet(_CONNECT, body)


def _publish_packet(topic: str, payload: bytes) -> bytes:
    """PUBLISH at QoS 0, no packet id (section 3.3)."""
    encoded = topic.encode("utf-8")
    return _packet(_PUBLISH_QOS0, _U16.pack(len(encoded)) + encoded + payload)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def flood_qos0(host: str, port: int, fleet: BenchFleet, messages: int, client_id: str) -> float:
    """Sign ``messages`` frames, then publish them back to back; return the publishing seconds.

    Raises:
        ConnectionError: when the broker refuses or drops the connection.
    """
    frames = fleet.sign_batch(messages)
    packets = [_publish_packet(topic, data) for topic, data in frames]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(*NODELAY)
        sock.sendall(_connect_packet(client_id))
        if _receive_exactly(sock, len(_CONNACK_ACCEPTED)) != _CONNACK_ACCEPTED:
            raise ConnectionError("broker refused the connection")
        started = time.perf_counter()
        for start in range(0, len(packets), _CHUNK):
            sock.sendall(b"".join(packets[start : start + _CHUNK]))
        seconds = time.perf_counter() - started
        # DISCONNECT asks the broker to close once it has read everything before it.
        sock.sendall(_DISCONNECT)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
    return seconds


async def paced_qos1(
    host: str, port: int, fleet: BenchFleet, *, messages: int, rate: float, client_id: str
) -> float:
    """Publish ``messages`` stamped frames at QoS 1, ``rate`` a second; return the seconds."""
    interval = 1.0 / rate
    async with open_client(BrokerAddress(host, port), identifier=client_id) as client:
        started = time.perf_counter()
        for index in range(messages):
            delay = started + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            topic, data = fleet.sign_stamped()
            await client.publish(topic, data, qos=1)
        return time.perf_counter() - started


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publisher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True, help="topic root, unique to the run")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0)
    parser.add_argument("--rate", type=float, default=1000.0, help="msg/s, QoS 1 only")
    parser.add_argument("--client-id", default="teddy-bench-publisher")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Publish as asked and print one JSON line with what was done."""
    args = _arguments(argv)
    fleet = BenchFleet(args.root, args.devices)
    if args.qos == 0:
        seconds = flood_qos0(args.host, args.port, fleet, args.messages, args.client_id)
    else:
        seconds = asyncio.run(
            paced_qos1(
                args.host,
                args.port,
                fleet,
                messages=args.messages,
                rate=args.rate,
                client_id=args.client_id,
            )
        )
    rate = args.messages / seconds if seconds > 0 else float("inf")
    print(json.dumps({"published": args.messages, "seconds": seconds, "rate": rate}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
