"""The one exception tree of Teddy Hub.

Every error the project raises on purpose descends from :class:`TeddyError`, so a caller at
a task boundary can tell "ours, with a stable code" from "a bug"::

    TeddyError
    ├── ConfigError              settings that must not be used (names the variable)
    ├── ProtocolError            a frame or topic rejected; ``reason`` is a RejectReason
    ├── NonceStoreUnavailable    the replay store cannot answer: the hub fails closed
    ├── PortInUseError           a listener could not bind; names the setting that moves it
    ├── ToyError                 the simulated toy did not get a verified answer
    ├── ConnectRefused           a broker login refused; ``reason`` is a ConnectRejectReason
    ├── BrokerUnavailable        (hub.downlink) no broker connection to publish a downlink on
    ├── StartupError             (hub.supervisor) a part of ``teddyhub up`` did not start
    ├── PacketTooLarge           (broker.server) a client announced an oversized packet
    ├── ApiError                 (api.errors) an HTTP answer with a status and a stable code
    ├── WeakPasswordError        (api.security) a password under the strength rule
    └── InvalidTokenError        (api.tokens) an access token that must not be honoured

API, broker and pipeline errors subclass these in their own packages; there is no second root.
"""

from __future__ import annotations

from enum import StrEnum


class TeddyError(Exception):
    """Root of every error Teddy Hub raises deliberately."""


class ConfigError(TeddyError):
    """A setting is missing, a placeholder or too weak for the chosen mode."""


class RejectReason(StrEnum):
    """Why an inbound frame was dropped; the values are metric labels and log fields."""

    MALFORMED = "malformed"
    TOPIC_MISMATCH = "topic_mismatch"
    OVERSIZED = "oversized"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"
    REVOKED = "revoked"
    REPLAY = "replay"


class ProtocolError(TeddyError):
    """A frame or topic that breaks the wire contract (docs/protocol.md, "Rejections")."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class NonceStoreUnavailable(TeddyError):
    """The nonce store could not answer; nothing may be dispatched until it can."""


class PortInUseError(TeddyError):
    """A listener's port is taken; the message names the setting that moves it."""

    def __init__(self, setting: str, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is already in use; set {setting} to a free port")
        self.setting = setting
        self.port = port


class ToyError(TeddyError):
    """The simulated toy did not receive a verified answer in time."""


class ConnectRejectReason(StrEnum):
    """Why the broker refused a connection; the values are metric labels and log fields."""

    MALFORMED = "malformed"
    ID_MISMATCH = "id_mismatch"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    FUTURE = "future"
    REPLAY = "replay"
    REVOKED = "revoked"
    ANONYMOUS = "anonymous"
    UNKNOWN_SERVICE = "unknown_service"


class ConnectRefused(TeddyError):
    """A broker login that must be refused (docs/protocol.md, "Connect tokens")."""

    def __init__(self, reason: ConnectRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
