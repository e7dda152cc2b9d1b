"""Connect tokens: the password a toy logs in to the broker with (docs/protocol.md,
"Connect tokens").

``v1.<unix seconds>.<16 hex nonce>.<64 hex tag>``, where the tag is
``HMAC-SHA256(connect_key(id), "teddy/v1/connect\\n" + id + "\\n" + seconds + "\\n" + nonce)``.
The username and the client id are the device id. A token is good from ``TOKEN_FUTURE_SKEW_S``
before its time to ``TOKEN_LIFETIME_S`` after it; a broker remembers the nonces it accepted for
``TOKEN_REPLAY_TTL_S``, so a captured token cannot be used again on that broker.

Service accounts (the hub, the API) log in as ``svc:<name>`` with a password derived from the
same connect root, ``hex(HMAC-SHA256(connect_root, "teddy/v1/service\n" + name))``: a broker
can check it without any other secret, and ``svc:`` can never be a device id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from hub.errors import ConnectRefused, ConnectRejectReason, ProtocolError
from hub.protocol.topics import validate_device_id

TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
TOKEN_NONCE_SIZE = 8
TOKEN_LIFETIME_S = 300
TOKEN_FUTURE_SKEW_S = 60
TOKEN_REPLAY_TTL_S = TOKEN_LIFETIME_S + TOKEN_FUTURE_SKEW_S
MAX_TOKEN_LENGTH = 128
_TOKEN_PATTERN = re.compile(r"v1\.(0|[1-9][0-9]{0,10})\.([0-9a-f]{16})\.([0-9a-f]{64})")
_DOMAIN = b"teddy/v1/connect\n"
_SERVICE_DOMAIN = b"teddy/v1/service\n"
SERVICE_PREFIX = "svc:"
SERVICE_NAMES = ("hub", "api")


@dataclass(frozen=True, slots=True)
class ConnectToken:
    """A parsed connect token."""

    timestamp_s: int
    nonce_hex: str
    tag: bytes


def token_mac_input(device_id: str, timestamp_s: int, nonce_hex: str) -> bytes:
    """The bytes the token's tag covers."""
    return b"".join(
        (
            _DOMAIN,
            device_id.encode("ascii"),
            b"\n",
            str(timestamp_s).encode(),
            b"\n",
            nonce_hex.encode("ascii"),
        )
    )


def make_connect_token(connect_key: bytes, device_id: str, timestamp_s: int, nonce: bytes) -> str:
    """The password for ``device_id`` at ``timestamp_s``."""
    validate_device_id(device_id)
    if len(nonce) != TOKEN_NONCE_SIZE:
        raise ValueError(f"token nonce must be {TOKEN_NONCE_SIZE} bytes")
    if not 0 <= timestamp_s < 10**11:
        raise ValueError("timestamp must be 0 to 11 decimal digits")
    nonce_hex = nonce.hex()
    tag = hmac.digest(
        connect_key, token_mac_input(device_id, timestamp_s, nonce_hex), hashlib.sha256
    )
    return f"{TOKEN_VERSION}.{timestamp_s}.{nonce_hex}.{tag.hex()}"


def parse_connect_token(password: str) -> ConnectToken:
    """Split a token into its fields.

    Raises:
        ConnectRefused: (malformed) for anything that is not a version-1 token.
    """
    if len(password) > MAX_TOKEN_LENGTH:
        raise ConnectRefused(ConnectRejectReason.MALFORMED, "token too long")
    match = _TOKEN_PATTERN.fullmatch(password)
    if match is None:
        raise ConnectRefused(ConnectRejectReason.MALFORMED, "not a v1 connect token")
    return ConnectToken(int(match[1]), match[2], bytes.fromhex(match[3]))


def verify_connect_token(
    connect_key: bytes, device_id: str, client_id: str, password: str, now_s: int
) -> ConnectToken:
    """Check a device's login: id, token shape, tag (constant time), then its time.

    Replay and revocation are the broker's stateful checks after this one.

    Raises:
        ConnectRefused: with the reason of the first check that failed.
    """
    if client_id != device_id:
        raise ConnectRefused(ConnectRejectReason.ID_MISMATCH, "client id must equal username")
    try:
        validate_device_id(device_id)
    except ProtocolError as error:
        raise ConnectRefused(ConnectRejectReason.MALFORMED, error.detail) from None
    token = parse_connect_token(password)
    expected = hmac.digest(
        connect_key, token_mac_input(device_id, token.timestamp_s, token.nonce_hex), hashlib.sha256
    )
    if not hmac.compare_digest(expected, token.tag):
        raise ConnectRefused(ConnectRejectReason.BAD_SIGNATURE, "token does not verify")
    if token.timestamp_s < now_s - TOKEN_LIFETIME_S:
        raise ConnectRefused(ConnectRejectReason.EXPIRED, "token expired")
    if token.timestamp_s > now_s + TOKEN_FUTURE_SKEW_S:
        raise ConnectRefused(ConnectRejectReason.FUTURE, "token from the future")
    return token


def service_username(name: str) -> str:
    """The broker username of service ``name``."""
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}")
    return SERVICE_PREFIX + name


def service_password(connect_root: bytes, name: str) -> str:
    """The broker password of service ``name`` (hex, 64 characters)."""
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}")
    return hmac.digest(connect_root, _SERVICE_DOMAIN + name.encode("ascii"), hashlib.sha256).hex()


def verify_service_login(connect_root: bytes, username: str, password: str) -> str:
    """Check a service account's login; return the service's name.

    Raises:
        ConnectRefused: ``unknown_service`` or ``bad_signature``.
    """
    name = username.removeprefix(SERVICE_PREFIX)
    if not username.startswith(SERVICE_PREFIX) or name not in SERVICE_NAMES:
        raise ConnectRefused(ConnectRejectReason.UNKNOWN_SERVICE, "no such service account")
    expected = service_password(connect_root, name).encode("ascii")
    if not hmac.compare_digest(expected, password.encode("utf-8", "replace")):
        raise ConnectRefused(ConnectRejectReason.BAD_SIGNATURE, "service password is wrong")
    return name
