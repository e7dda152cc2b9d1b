"""Routes toys call over HTTP, under ``/api/v1/esp32`` (docs/protocol.md, "Device HTTP requests").

Two routers, so that authentication is a property of where a route is declared, not something
each route must remember:

- :data:`public_router`: ``GET /api/v1/esp32/config``, what a toy needs before it can sign
  anything (broker URLs, the server's clock, the topic root, the current firmware).
- :data:`private_router`: everything under ``/api/v1/esp32/private``, each request signed by the
  toy and checked by :func:`api.device_auth.authenticated_device`, a dependency of the router
  itself. The public router declares no path parameter, so none of its routes can match a
  private path (a test walks ``app.routes`` to keep it so).

Private routes take their body from the dependency (the bytes the signature covers) and parse
it only after it verified: an unauthenticated sender can make the API neither buffer more than
16 KiB nor parse JSON.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from api.deps import SessionDep, SettingsDep
from api.device_auth import AuthenticatedDeviceDep, authenticated_device
from api.errors import ApiError
from hub.db.models import Device
from hub.settings import Settings

PREFIX: Final = "/api/v1/esp32"
PRIVATE_PREFIX: Final = f"{PREFIX}/private"
# Answers carry the server's clock or one device's state: no cache may keep them.
NO_STORE: Final = {"Cache-Control": "no-store"}
VERSION_PATTERN: Final = r"^[!-~]{1,32}$"  # visible ASCII; fits devices.firmware_version

public_router = APIRouter(prefix=PREFIX, tags=["esp32"])
private_router = APIRouter(
    prefix=PRIVATE_PREFIX, tags=["esp32"], dependencies=[Depends(authenticated_device)]
)


class NoFirmware(ApiError):
    """No firmware build is configured (TEDDY_FIRMWARE_VERSION, _SHA256 and _URL)."""

    status = HTTPStatus.NOT_FOUND
    code = "no_firmware"


class Firmware(BaseModel):
    """The firmware build toys should run."""

    version: str
    sha256: str
    url: str


class DeviceConfig(BaseModel):
    """What a toy reads before it connects: where, what time it is, and what to run."""

    brokers: list[str]
    server_time_ms: int
    topic_root: str
    firmware: Firmware | None


class FirmwareManifest(Firmware):
    """The configured build, and whether the toy asking runs something else."""

    update_available: bool


class StatusReport(BaseModel):
    """A toy's periodic report on itself."""

    model_config = ConfigDict(extra="forbid")

    firmware_version: str = Field(pattern=VERSION_PATTERN)
    uptime_s: StrictInt = Field(ge=0)
    free_heap: StrictInt | None = Field(default=None, ge=0)
    rssi_dbm: StrictInt | None = None
    battery_pct: StrictInt | None = Field(default=None, ge=0, le=100)


class StatusAnswer(BaseModel):
    """The server's clock (so the toy can correct drift) and the device's standing."""

    server_time_ms: int
    revoked: bool


def now_ms() -> int:
    """The server's wall clock in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def configured_firmware(settings: Settings) -> Firmware | None:
    """The firmware build when all three settings are set, else None."""
    if settings.firmware_version and settings.firmware_sha256 and settings.firmware_url:
        return Firmware(
            version=settings.firmware_version,
            sha256=settings.firmware_sha256,
            url=settings.firmware_url,
        )
    return None


@public_router.get("/config")
async def device_config(settings: SettingsDep, response: Response) -> DeviceConfig:
    """Public: broker URLs, server time, topic root and firmware, for toys before they log in.

    Nothing here is secret; a toy without a real-time clock sets its clock from
    ``server_time_ms`` before it makes a connect token or signs a request.
    """
    response.headers.update(NO_STORE)
    return DeviceConfig(
        brokers=settings.toy_broker_urls(),
        server_time_ms=now_ms(),
        topic_root=settings.topic_root,
        firmware=configured_firmware(settings),
    )


@private_router.get("/firmware")
async def firmware_manifest(
    device: AuthenticatedDeviceDep,
    settings: SettingsDep,
    session: SessionDep,
    response: Response,
    current: Annotated[
        str | None,
        Query(pattern=VERSION_PATTERN, description="The version the toy runs now."),
    ] = None,
) -> FirmwareManifest:
    """The build this toy should run; ``update_available`` when it runs another one.

    Without ``current``, the version the toy last reported is compared; a toy that never said
    what it runs is offered the build.

    Raises:
        NoFirmware: when no build is configured.
    """
    firmware = configured_firmware(settings)
    if firmware is None:
        raise NoFirmware("no firmware build is configured")
    if current is None:
        row = await session.get(Device, device.device_id)
        current = None if row is None else row.firmware_version
    response.headers.update(NO_STORE)
    return FirmwareManifest(**firmware.model_dump(), update_available=current != firmware.version)


def _parse_report(body: bytes) -> StatusReport:
    """The report the toy signed, or the same 422 FastAPI gives for a bad body."""
    try:
        return StatusReport.model_validate_json(body)
    except ValidationError as error:
        errors: list[Any] = [
            {**detail, "loc": ("body", *detail["loc"])}
            for detail in error.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None


_STATUS_SCHEMA: Final = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": StatusReport.model_json_schema()}},
    }
}


@private_router.post("/status", openapi_extra=_STATUS_SCHEMA)
async def report_status(
    device: AuthenticatedDeviceDep, session: SessionDep, response: Response
) -> StatusAnswer:
    """Record the toy's firmware version and that it was seen now (the row is made if new).

    The body is a :class:`StatusReport` (JSON).
    """
    report = _parse_report(device.body)
    seen = datetime.now(UTC)
    values = {"firmware_version": report.firmware_version, "last_seen_at": seen}
    row = await session.get(Device, device.device_id)
    if row is None:
        session.add(Device(device_id=device.device_id, **values))
    else:
        row.firmware_version = report.firmware_version
        row.last_seen_at = seen
    try:
        await session.commit()
    except IntegrityError:  # the toy's first two reports raced; the other made the row
        await session.rollback()
        await session.execute(
            update(Device).where(Device.device_id == device.device_id).values(**values)
        )
        await session.commit()
    response.headers.update(NO_STORE)
    return StatusAnswer(server_time_ms=now_ms(), revoked=False)
