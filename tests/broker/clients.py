"""MQTT clients nobody here wrote (paho-mqtt, Debian's mosquitto_pub/sub), driven from asyncio.

Every blocking call runs in a worker thread or a subprocess, so the broker under test, a task
of the same event loop, keeps serving while a test waits.

Every wait for something that is going to happen (a CONNACK, a SUBACK, a PUBACK, a message, a
disconnection) returns the moment it happens and gives up only after
:data:`tests.timing.EVENT_TIMEOUT_S`, a limit no slow machine comes near. Only "nothing
arrives" waits a short fixed time (:data:`QUIET_S`): a slow machine can make such a check miss
a late message, never fail it falsely.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import shutil
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.broker.brokers import BrokerUnderTest
from tests.timing import EVENT_TIMEOUT_S

QUIET_S = 0.7  # how long "receives nothing" waits
_POLL_S = 0.02


async def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = EVENT_TIMEOUT_S
) -> None:
    """Return once ``predicate()`` holds; fail naming ``what`` after ``timeout_s``.

    For states a broker reaches with no event a client could wait on (connections it closes).
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(_POLL_S)


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho 2.2 would leave it open (ResourceWarning)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _client_context(ca_file: Path | None) -> ssl.SSLContext:
    """What paho's ``tls_set`` builds: verify the chain and the host name (``None``: OS CAs)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.sslsocket_class = _ClosingSSLSocket
    return context


class PahoClient:
    """One paho-mqtt client whose network loop runs in its own thread (no auto-reconnect)."""

    def __init__(
        self,
        broker: BrokerUnderTest,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = True,
        ca: bool = True,
        port: int | None = None,
        clean_session: bool = True,
        keepalive: int = 60,
    ) -> None:
        self.broker = broker
        self.port = port if port is not None else broker.tls_port
        self.keepalive = keepalive
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=clean_session,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            # ca=False: the system's default trust store, which knows nothing of the dev CA.
            self.client.tls_set_context(_client_context(broker.ca_file if ca else None))
        self.connack: ReasonCode | None = None
        self.connack_event = threading.Event()
        self.disconnected = threading.Event()
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._suback_event = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self.connack_event.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        self.disconnected.set()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        with self._suback_event:
            self._subacks[mid] = codes
            self._suback_event.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                self.disconnected.set()
                return

    async def connect(self) -> bool:
        """Connect and wait for the CONNACK; True when the broker accepted the login.

        False for a refused login, and for a connection that closed (or failed its TLS
        handshake) without any CONNACK. ``TimeoutError`` when the broker did neither: silence
        is not a refusal.
        """
        try:
            await asyncio.to_thread(
                self.client.connect, self.broker.host, self.port, self.keepalive
            )
        except (OSError, ssl.SSLError):
            self.disconnected.set()
            return False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.connack_event.is_set():
                return self.connack is not None and not self.connack.is_failure
            if self.disconnected.is_set():
                return False
            await asyncio.sleep(_POLL_S)
        raise TimeoutError(f"neither a CONNACK nor a disconnection in {EVENT_TIMEOUT_S:g} s")

    async def connected(self) -> PahoClient:
        """Connect, asserting the login is accepted."""
        assert await self.connect(), f"login refused: {self.connack}"
        return self

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe; the SUBACK's code (granted QoS, or 0x80 for a refusal)."""
        result, mid = self.client.subscribe(topic_filter, qos)
        assert result == paho.MQTT_ERR_SUCCESS
        assert mid is not None
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._suback_event:
                codes = self._subacks.get(mid)
            if codes is not None:
                return int(codes[0].value)
            if self.disconnected.is_set():
                return 0x80
            await asyncio.sleep(_POLL_S)
        raise TimeoutError(f"no SUBACK for {topic_filter}")

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish and, for QoS 1, wait for the PUBACK (or the connection's end)."""
        info = self.client.publish(topic, payload, qos)
        if qos == 0:
            return
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            if self.disconnected.is_set():
                return
            try:
                if info.is_published():
                    return
            except RuntimeError:
                # paho marks the message lost as it notices the end of the connection, which
                # may be just before ``disconnected`` is set: the same outcome.
                if info.rc == paho.MQTT_ERR_CONN_LOST:
                    return
                raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PUBACK for {topic} in {EVENT_TIMEOUT_S:g} s")
            await asyncio.sleep(_POLL_S)

    async def receive(self, timeout_s: float = EVENT_TIMEOUT_S) -> paho.MQTTMessage:
        """The next message; ``TimeoutError`` if none comes."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.messages.get_nowait()
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("no message") from None
                await asyncio.sleep(_POLL_S)

    async def receive_on(self, topic: str, timeout_s: float = EVENT_TIMEOUT_S) -> paho.MQTTMessage:
        """The next message on ``topic``, skipping others."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = await self.receive(max(0.0, deadline - time.monotonic()))
            if message.topic == topic:
                return message

    async def received_nothing(self, quiet_s: float = QUIET_S) -> list[paho.MQTTMessage]:
        """Wait ``quiet_s``; every message that came in the meantime (expected: none)."""
        await asyncio.sleep(quiet_s)
        got: list[paho.MQTTMessage] = []
        while not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got

    async def wait_disconnected(self, timeout_s: float = EVENT_TIMEOUT_S) -> bool:
        """True once the connection is gone, False if it lasted ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.disconnected.is_set():
                return True
            await asyncio.sleep(_POLL_S)
        return self.disconnected.is_set()

    @property
    def is_connected(self) -> bool:
        """True while the broker has not closed the connection."""
        return self.client.is_connected() and not self.disconnected.is_set()

    async def close(self) -> None:
        """Disconnect cleanly (if still connected) and stop the network thread."""
        if self._thread is not None and not self.disconnected.is_set():
            self.client.disconnect()
            # paho reports the end once the DISCONNECT is written and the socket closed.
            await self.wait_disconnected()
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, EVENT_TIMEOUT_S)
        if self._thread is None or not self._thread.is_alive():
            # paho's loop() opens a TCP socket pair of its own and closes it only when the
            # client is collected: whenever the garbage collector happens to run, in some
            # later test, the unclosed sockets would fail that test.
            self.client._reset_sockets()  # paho has no public way to close it


class Clients:
    """Opens paho clients for one test and closes them all at its end."""

    def __init__(self, broker: BrokerUnderTest) -> None:
        self.broker = broker
        self._opened: list[PahoClient] = []

    def new(self, client_id: str, **options: Any) -> PahoClient:
        """A client not yet connected."""
        client = PahoClient(self.broker, client_id, **options)
        self._opened.append(client)
        return client

    async def toy(self, device_id: str, **options: Any) -> PahoClient:
        """``device_id`` logged in with a fresh token."""
        password = self.broker.device_password(device_id)
        return await self.new(
            device_id, username=device_id, password=password, **options
        ).connected()

    async def hub(self, suffix: str = "") -> PahoClient:
        """The hub's service account, subscribed to every uplink."""
        client = await self.new(
            "svc:hub" + suffix, username="svc:hub", password=self.broker.service_password("hub")
        ).connected()
        assert await client.subscribe(self.broker.uplinks) == 1
        return client

    async def close(self) -> None:
        """Close every client opened."""
        for client in self._opened:
            await client.close()


@contextlib.asynccontextmanager
async def paho_clients(broker: BrokerUnderTest) -> AsyncIterator[Clients]:
    """A :class:`Clients` closed when the block ends."""
    clients = Clients(broker)
    try:
        yield clients
    finally:
        await clients.close()


# mosquitto_pub / mosquitto_sub -------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """How a mosquitto command-line client ended."""

    returncode: int
    stdout: str
    stderr: str


def mosquitto_clients_available() -> bool:
    """True when Debian's mosquitto-clients are installed."""
    return shutil.which("mosquitto_pub") is not None and shutil.which("mosquitto_sub") is not None


def cli_login(
    broker: BrokerUnderTest,
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    trust: str = "ca",
    port: int | None = None,
) -> list[str]:
    """The common arguments: host, port, TLS trust (ca / os / none), login."""
    args = ["-h", broker.host, "-p", str(port if port is not None else broker.tls_port)]
    if trust == "ca":
        args += ["--cafile", str(broker.ca_file)]
    elif trust == "os":
        args += ["--tls-use-os-certs"]
    args += ["-i", client_id, "-V", "mqttv311"]
    if username is not None:
        args += ["-u", username]
    if password is not None:
        args += ["-P", password]
    return args


async def run_cli(*args: str, timeout_s: float = EVENT_TIMEOUT_S) -> CliResult:
    """Run a mosquitto client to its end."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliResult(process.returncode, stdout.decode(errors="replace"), stderr.decode())


async def mosquitto_pub(
    broker: BrokerUnderTest,
    client_id: str,
    username: str | None,
    password: str | None,
    topic: str,
    *,
    message: str = "hello",
    **login: Any,
) -> CliResult:
    """One ``mosquitto_pub`` (QoS 1): exit code 0 when the broker accepted the login."""
    args = cli_login(broker, client_id, username, password, **login)
    return await run_cli("mosquitto_pub", *args, "-q", "1", "-t", topic, "-m", message)


# Raw packets, only for what paho cannot do (a client that goes silent) -----------------------


def _encode_string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def connect_packet(
    client_id: str,
    username: str,
    password: str,
    *,
    keepalive: int,
    will_topic: str | None = None,
    will_message: bytes = b"",
) -> bytes:
    """An MQTT 3.1.1 CONNECT (clean session; will at QoS 0 when ``will_topic``)."""
    flags = 0x02 | 0x80 | 0x40
    payload = _encode_string(client_id)
    if will_topic is not None:
        flags |= 0x04
        payload += _encode_string(will_topic) + _encode_string(will_message)
    payload += _encode_string(username) + _encode_string(password)
    variable = _encode_string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body = variable + payload
    return b"\x10" + _remaining_length(len(body)) + body


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close a raw connection and wait until its socket is closed.

    ``close()`` alone only starts closing (a TLS transport sends its close_notify first): the
    test's event loop could end before the socket is released, however fast the machine.
    """
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), EVENT_TIMEOUT_S)


async def closed_within(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    """True when the peer closes the stream (EOF or reset) within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError):
        return True
    return True
