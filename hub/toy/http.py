"""The toy's side of signed HTTP requests (docs/protocol.md, "Device HTTP requests").

The request is built first and signed over its target as httpx will send it (percent-encoded
path and query), so what the toy signs is byte for byte what the API verifies. Each request
gets a fresh nonce and the current time; a retry is a new request, never a resend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Final

import httpx

from hub.errors import ToyError
from hub.gate import wall_clock_ms
from hub.protocol.device_http import REQUEST_NONCE_SIZE, sign_request

STATUS_PATH: Final = "/api/v1/esp32/private/status"
SIMULATOR_FIRMWARE_VERSION: Final = "sim-1"
DEFAULT_TIMEOUT_S: Final = 10.0


async def send_signed(
    client: httpx.AsyncClient,
    device_id: str,
    device_key: bytes,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    clock_ms: Callable[[], int] = wall_clock_ms,
) -> httpx.Response:
    """Send ``method path`` (relative to the client's base URL) signed as ``device_id``.

    Raises:
        ToyError: when the API cannot be reached.
    """
    headers = {"Content-Type": "application/json"} if body else {}
    request = client.build_request(method, path, content=body, headers=headers)
    target = request.url.raw_path.decode("ascii")  # path and query, exactly as sent
    request.headers.update(
        sign_request(
            device_key,
            method,
            target,
            device_id,
            clock_ms(),
            os.urandom(REQUEST_NONCE_SIZE),
            body,
        )
    )
    try:
        return await client.send(request)
    except httpx.HTTPError as error:
        raise ToyError(f"cannot reach the API at {request.url}: {error}") from error


async def report_status(
    api_url: str,
    device_id: str,
    device_key: bytes,
    *,
    uptime_s: int = 0,
    firmware_version: str = SIMULATOR_FIRMWARE_VERSION,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Post a status report as the toy and return the API's answer.

    ``transport`` replaces the network (tests serve the app in-process).

    Raises:
        ToyError: when the API cannot be reached or refuses the report (its problem ``code``
            is in the message).
    """
    body = json.dumps(
        {"firmware_version": firmware_version, "uptime_s": uptime_s}, separators=(",", ":")
    ).encode()
    async with httpx.AsyncClient(
        base_url=api_url, timeout=timeout_s, transport=transport
    ) as client:
        response = await send_signed(client, device_id, device_key, "POST", STATUS_PATH, body=body)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not response.is_success or not isinstance(answer, dict):
        code = answer.get("code") if isinstance(answer, dict) else None
        raise ToyError(f"status report refused: HTTP {response.status_code} {code or ''}".strip())
    return answer
