"""The dependency that authenticates a toy's signed HTTP request (docs/protocol.md, "Device
HTTP requests"); every route under ``/api/v1/esp32/private`` sits behind it.

Checks, in order, each refusal with a stable ``code``:

1. the four ``X-Teddy-*`` headers are present (401 ``device_auth_missing``) and well formed,
   as are the method and path (401 ``device_auth_malformed``);
2. the body is at most 16 KiB (413 ``device_request_too_large``), refused from its declared
   length or while it is read, so an oversized body is never buffered whole;
3. the signature under the device's HTTP key (401 ``device_auth_bad_signature``);
4. the clock window (401 ``device_auth_stale`` / ``device_auth_future``);
5. the device is not revoked: in the revocation file brokers and hubs read (403
   ``device_revoked``);
6. the nonce was never seen (409 ``device_request_replay``), in the API's replay store
   (503 ``nonce_store_unavailable`` when it cannot answer: fail closed).

The stateless checks come first so that a forged request costs no database read and never
spends the nonce of a genuine one. Each refusal is logged once, with the device id (when the
request named a valid one) and the reason; never a signature or a body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Final

from fastapi import Depends, Request

from api.binding import DeviceRevoked, RevocationsDep
from api.deps import SettingsDep
from api.errors import ApiError, Conflict
from api.nonces import NonceStoreDep, spend_nonce
from hub.protocol.device_http import (
    HTTP_REPLAY_TTL_S,
    DeviceRequestRejected,
    DeviceRequestRejectReason,
    check_body_size,
    parse_request_head,
    verify_request,
)
from hub.protocol.keys import derive_device_key

logger = logging.getLogger(__name__)

# RFC 9110 section 11.6.1: a 401 names the scheme that would be accepted.
DEVICE_CHALLENGE: Final = {"WWW-Authenticate": 'TeddyHMAC realm="device"'}


class DeviceUnauthorized(ApiError):
    """The request does not authenticate a device; the subclasses say why."""

    status = HTTPStatus.UNAUTHORIZED
    code = "device_auth_failed"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={**DEVICE_CHALLENGE, **(headers or {})})


class DeviceAuthMissing(DeviceUnauthorized):
    """One of the four ``X-Teddy-*`` headers is absent."""

    code = "device_auth_missing"


class DeviceAuthMalformed(DeviceUnauthorized):
    """A header, the method or the path is not in its form."""

    code = "device_auth_malformed"


class DeviceAuthBadSignature(DeviceUnauthorized):
    """The signature does not verify under the named device's key for this request."""

    code = "device_auth_bad_signature"


class DeviceAuthStale(DeviceUnauthorized):
    """The request's time is more than the window in the past."""

    code = "device_auth_stale"


class DeviceAuthFuture(DeviceUnauthorized):
    """The request's time is more than the window in the future."""

    code = "device_auth_future"


class DeviceRequestTooLarge(ApiError):
    """The body is over the cap; nothing past it was read."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "device_request_too_large"


class DeviceRequestReplay(Conflict):
    """The request's nonce was used before: a copy of an earlier request."""

    code = "device_request_replay"


_REJECTIONS: Final[dict[DeviceRequestRejectReason, type[ApiError]]] = {
    DeviceRequestRejectReason.MISSING_HEADER: DeviceAuthMissing,
    DeviceRequestRejectReason.MALFORMED: DeviceAuthMalformed,
    DeviceRequestRejectReason.TOO_LARGE: DeviceRequestTooLarge,
    DeviceRequestRejectReason.BAD_SIGNATURE: DeviceAuthBadSignature,
    DeviceRequestRejectReason.STALE: DeviceAuthStale,
    DeviceRequestRejectReason.FUTURE: DeviceAuthFuture,
}


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    """The device a request authenticated, and the body it signed (already read)."""

    device_id: str
    body: bytes
    received_ms: int


def http_nonce_key(device_id: str, nonce_hex: str) -> bytes:
    """The replay-store key of a device request's nonce (namespaced apart from claims)."""
    return f"http/{device_id}/{nonce_hex}".encode("ascii")


def request_target(request: Request) -> str:
    """The path and query exactly as the client sent them, as the signature covers them.

    ``raw_path`` is the undecoded path (ASGI servers and httpx provide it); latin-1 keeps any
    byte as one character, so a non-ASCII byte reaches the shape check instead of an error.
    """
    scope = request.scope
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    target = raw_path + (b"?" + query if query else b"")
    return target.decode("latin-1")


async def _read_body(request: Request, device_id: str) -> bytes:
    """The body, refused as soon as it is known to be over the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        check_body_size(int(declared), device_id)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size, device_id)
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(error: ApiError, reason: str, device_id: str | None) -> ApiError:
    logger.info("device request refused", extra={"device_id": device_id, "reason": reason})
    return error


async def authenticated_device(
    request: Request, settings: SettingsDep, nonces: NonceStoreDep, revocations: RevocationsDep
) -> AuthenticatedDevice:
    """Authenticate the request as a device, or refuse it (see the module docstring).

    Raises:
        ApiError: with the codes listed in this module's docstring.
    """
    fleet_secret = settings.fleet_secret()
    try:
        target = request_target(request)
        head = parse_request_head(request.method, target, request.headers)
        body = await _read_body(request, head.device_id)
        now_ms = time.time_ns() // 1_000_000  # after the body: a slow upload ages the request
        verified = verify_request(
            lambda name: derive_device_key(fleet_secret, name),
            request.method,
            target,
            request.headers,
            body,
            now_ms,
        )
    except DeviceRequestRejected as error:
        raise _refuse(
            _REJECTIONS[error.reason](error.detail), error.reason.value, error.device_id
        ) from None

    device_id = verified.device_id
    if device_id in await revocations.revoked_device_ids():
        raise _refuse(DeviceRevoked("this device is revoked"), "revoked", device_id)
    fresh = await spend_nonce(
        nonces, http_nonce_key(device_id, verified.nonce_hex), HTTP_REPLAY_TTL_S
    )
    if not fresh:
        raise _refuse(
            DeviceRequestReplay("this request has been received already"), "replay", device_id
        )
    return AuthenticatedDevice(device_id, verified.body, now_ms)


AuthenticatedDeviceDep = Annotated[AuthenticatedDevice, Depends(authenticated_device)]
