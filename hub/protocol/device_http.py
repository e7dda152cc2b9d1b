"""Signed HTTP requests from a toy to the API (docs/protocol.md, "Device HTTP requests").

A toy proves who it is on ``/api/v1/esp32/private/...`` with four headers::

    X-Teddy-Device     its device id
    X-Teddy-Timestamp  Unix time in milliseconds, decimal
    X-Teddy-Nonce      16 random bytes as 32 lowercase hex characters
    X-Teddy-Signature  lowercase hex of HMAC-SHA256(http_key, canonical)

    http_key  = HKDF-SHA256(ikm=frame key, salt="teddy/v1", info="teddy/v1/http-key", L=32)
    canonical = "TEDDY-HTTP-V1" \\n METHOD \\n path?query \\n device id \\n timestamp \\n nonce
                \\n hex(SHA-256(body))

The HTTP key is derived from the frame key rather than being the frame key itself, so that no
HMAC this key makes can ever be mistaken for a frame tag (or a claim proof) and vice versa. The
checks run in a fixed order, the first failure deciding the reason: headers present, their
shape, the body's size, the signature (constant time), the clock window. Revocation and the
nonce (replay) are the caller's stateful checks, made only after these pass, so a forged
request never spends a genuine request's nonce.

Pure functions only: no clock, no randomness, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import ProtocolError, TeddyError
from hub.protocol.keys import DEVICE_KEY_SIZE, KEY_SALT
from hub.protocol.topics import validate_device_id
from hub.protocol.verify import CLOCK_WINDOW_MS, NONCE_TTL_MS

HTTP_KEY_INFO: Final = b"teddy/v1/http-key"
SIGNATURE_VERSION: Final = "TEDDY-HTTP-V1"
HEADER_DEVICE: Final = "X-Teddy-Device"
HEADER_TIMESTAMP: Final = "X-Teddy-Timestamp"
HEADER_NONCE: Final = "X-Teddy-Nonce"
HEADER_SIGNATURE: Final = "X-Teddy-Signature"
SIGNED_HEADERS: Final = (HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
REQUEST_NONCE_SIZE: Final = 16
# Status reports and manifests are a few hundred bytes; the cap bounds what an unauthenticated
# sender can make the API read and hash (the same 16 KiB as a frame's payload).
MAX_BODY_SIZE: Final = 16 * 1024
# A request passes the clock check for at most 2 x window; its nonce is remembered for the
# frames' nonce TTL (4 x window), as long as any copy of it could pass again.
HTTP_REPLAY_TTL_S: Final = NONCE_TTL_MS // 1000
MAX_TIMESTAMP_DIGITS: Final = 16

_TIMESTAMP_PATTERN = re.compile(r"0|[1-9][0-9]{0,15}")
_NONCE_PATTERN = re.compile(r"[0-9a-f]{32}")
_SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")
_METHOD_PATTERN = re.compile(r"[A-Z]{1,16}")
# Visible ASCII only: no space or line break can enter the newline-joined canonical string.
_PATH_PATTERN = re.compile(r"/[\x21-\x7e]{0,2047}")


class DeviceRequestRejectReason(StrEnum):
    """Why a signed device request was refused; the values are stable (API codes, logs)."""

    MISSING_HEADER = "missing_header"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"


class DeviceRequestRejected(TeddyError):
    """A device request that must not be honoured; ``reason`` says which check failed.

    ``device_id`` is the id the request named when it was a valid id (for logs), else None.
    """

    def __init__(
        self, reason: DeviceRequestRejectReason, detail: str, device_id: str | None = None
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device_id = device_id


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The four headers of a request, each checked for its shape (not yet verified)."""

    device_id: str
    timestamp_ms: int
    nonce_hex: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request that passed every stateless check."""

    device_id: str
    timestamp_ms: int
    nonce_hex: str
    body: bytes


def derive_http_key(device_key: bytes) -> bytes:
    """The key a toy signs HTTP requests with, from its 32-byte frame key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=DEVICE_KEY_SIZE, salt=KEY_SALT, info=HTTP_KEY_INFO
    ).derive(device_key)


def canonical_request(  # noqa: PLR0917 - the canonical string's fields, in its order
    method: str, path: str, device_id: str, timestamp_ms: int, nonce_hex: str, body: bytes
) -> bytes:
    """The bytes a request's signature covers (UTF-8, newline-joined, no trailing newline)."""
    return "\n".join(
        (
            SIGNATURE_VERSION,
            method.upper(),
            path,
            device_id,
            str(timestamp_ms),
            nonce_hex,
            hashlib.sha256(body).hexdigest(),
        )
    ).encode("utf-8")


def _check_request_line(method: str, path: str) -> None:
    if _METHOD_PATTERN.fullmatch(method.upper()) is None:
        raise ValueError("method must be 1-16 letters")
    if _PATH_PATTERN.fullmatch(path) is None:
        raise ValueError("path must start with '/' and hold visible ASCII only (percent-encode)")


def sign_request(  # noqa: PLR0917 - the canonical string's fields, in its order
    device_key: bytes,
    method: str,
    path: str,
    device_id: str,
    timestamp_ms: int,
    nonce: bytes,
    body: bytes = b"",
) -> dict[str, str]:
    """The four headers that authenticate this request as ``device_id``.

    ``path`` is the request target exactly as it will be sent: the percent-encoded path and,
    when there is one, ``?`` and the query.

    Raises:
        ProtocolError: (malformed) for a device id outside the alphabet.
        ValueError: for a nonce that is not 16 bytes, a timestamp out of range, a method that
            is not letters or a path that is not visible ASCII starting with ``/``.
    """
    validate_device_id(device_id)
    _check_request_line(method, path)
    if len(nonce) != REQUEST_NONCE_SIZE:
        raise ValueError(f"request nonce must be {REQUEST_NONCE_SIZE} bytes")
    if isinstance(timestamp_ms, bool) or not 0 <= timestamp_ms < 10**MAX_TIMESTAMP_DIGITS:
        raise ValueError(f"timestamp must be 0 to {MAX_TIMESTAMP_DIGITS} decimal digits")
    nonce_hex = nonce.hex()
    signature = hmac.digest(
        derive_http_key(device_key),
        canonical_request(method, path, device_id, timestamp_ms, nonce_hex, body),
        hashlib.sha256,
    )
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_NONCE: nonce_hex,
        HEADER_SIGNATURE: signature.hex(),
    }


def _find_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Our four headers by lower-case name; a repeated one is malformed.

    ``items()`` of Starlette's ``Headers`` lists a repeated header once per occurrence, so a
    request cannot carry two device ids and have each reader pick a different one.
    """
    wanted = {name.lower() for name in SIGNED_HEADERS}
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key not in wanted:
            continue
        if key in found:
            raise DeviceRequestRejected(
                DeviceRequestRejectReason.MALFORMED, f"header {name} is repeated"
            )
        found[key] = value
    missing = [name for name in SIGNED_HEADERS if name.lower() not in found]
    if missing:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.MISSING_HEADER, f"missing {', '.join(missing)}"
        )
    return found


def parse_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Check that the four headers are present (once each) and each has its shape.

    Raises:
        DeviceRequestRejected: ``missing_header`` or ``malformed``.
    """
    found = _find_headers(headers)
    device_id = found[HEADER_DEVICE.lower()]
    try:
        validate_device_id(device_id)
    except ProtocolError:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.MALFORMED, f"{HEADER_DEVICE} is not a device id"
        ) from None

    def malformed(detail: str) -> DeviceRequestRejected:
        return DeviceRequestRejected(DeviceRequestRejectReason.MALFORMED, detail, device_id)

    timestamp = found[HEADER_TIMESTAMP.lower()]
    if _TIMESTAMP_PATTERN.fullmatch(timestamp) is None:
        raise malformed(f"{HEADER_TIMESTAMP} must be Unix milliseconds, decimal")
    nonce = found[HEADER_NONCE.lower()]
    if _NONCE_PATTERN.fullmatch(nonce) is None:
        raise malformed(f"{HEADER_NONCE} must be 32 lowercase hex characters")
    signature = found[HEADER_SIGNATURE.lower()]
    if _SIGNATURE_PATTERN.fullmatch(signature) is None:
        raise malformed(f"{HEADER_SIGNATURE} must be 64 lowercase hex characters")
    return SignedHeaders(device_id, int(timestamp), nonce, bytes.fromhex(signature))


def parse_request_head(method: str, path: str, headers: Mapping[str, str]) -> SignedHeaders:
    """The checks that need no body: the headers, then the method and path.

    A server runs them before it reads the body, so a request that cannot authenticate is
    refused without being read.

    Raises:
        DeviceRequestRejected: ``missing_header`` or ``malformed``.
    """
    signed = parse_signed_headers(headers)
    try:
        _check_request_line(method, path)
    except ValueError as error:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.MALFORMED, str(error), signed.device_id
        ) from None
    return signed


def check_body_size(size: int, device_id: str | None = None) -> None:
    """Refuse a body over :data:`MAX_BODY_SIZE` (callers check before reading all of it).

    Raises:
        DeviceRequestRejected: ``too_large``.
    """
    if size > MAX_BODY_SIZE:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.TOO_LARGE, f"body over {MAX_BODY_SIZE} bytes", device_id
        )


def verify_request(  # noqa: PLR0917 - what an HTTP server hands over, in request order
    key_for: Callable[[str], bytes],
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now_ms: int,
) -> VerifiedRequest:
    """Run every stateless check on a request received at ``now_ms`` (Unix ms).

    ``key_for`` answers a device id's frame key (for example
    :meth:`hub.protocol.keys.DeviceKeyring.key_for`); it is called only for a request whose
    headers, method, path and size are well formed. ``path`` is the request target as
    received: the raw path and, when there is a query, ``?`` and the raw query.

    Raises:
        DeviceRequestRejected: with the reason of the first check that failed.
    """
    signed = parse_request_head(method, path, headers)
    device_id = signed.device_id
    check_body_size(len(body), device_id)
    expected = hmac.digest(
        derive_http_key(key_for(device_id)),
        canonical_request(method, path, device_id, signed.timestamp_ms, signed.nonce_hex, body),
        hashlib.sha256,
    )
    if not hmac.compare_digest(expected, signed.signature):
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.BAD_SIGNATURE, "signature does not verify", device_id
        )
    # Written without subtracting from `now`, as firmware with unsigned arithmetic must.
    if signed.timestamp_ms + CLOCK_WINDOW_MS < now_ms:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.STALE,
            f"timestamp {now_ms - signed.timestamp_ms} ms old",
            device_id,
        )
    if signed.timestamp_ms > now_ms + CLOCK_WINDOW_MS:
        raise DeviceRequestRejected(
            DeviceRequestRejectReason.FUTURE,
            f"timestamp {signed.timestamp_ms - now_ms} ms ahead",
            device_id,
        )
    return VerifiedRequest(device_id, signed.timestamp_ms, signed.nonce_hex, body)
