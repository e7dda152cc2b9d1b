"""Fleet administration under ``/api/v1/admin``: list every device, revoke and restore.

Only accounts with the ``admin`` role reach these routes; anyone else gets 404, exactly as for
a route that does not exist (``CurrentAdmin``).

Revocation writes the revocation file that brokers and hubs poll (``TEDDY_REVOCATION_FILE``;
in a multi-host deployment, a volume they all mount), so the toy is refused by the broker and
the hub within seconds and without a restart. The file is the one source of truth (what
``revoked`` shows); the device's row records since when an administrator revoked it. A device
that has never been seen gets a row, so that it is listed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from api.audit import audit_device
from api.binding import RevocationsDep
from api.deps import CurrentAdmin, SessionDep, SettingsDep
from api.routes.devices import DeviceId
from hub.db.models import AuditAction, Device, Parent
from hub.revocation import FileRevocations, change_revocation
from hub.settings import Settings

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

MAX_PAGE = 500
MAX_OFFSET = 2**31 - 1  # databases take a 64-bit OFFSET at most; no fleet is near this


class AdminDeviceOut(BaseModel):
    """A device as the fleet's administrator sees it."""

    device_id: str
    parent_id: uuid.UUID | None
    child_id: uuid.UUID | None
    firmware_version: str | None
    last_seen_at: datetime | None
    revoked: bool
    revoked_at: datetime | None
    created_at: datetime


def _admin_out(device: Device, revoked_ids: frozenset[str]) -> AdminDeviceOut:
    return AdminDeviceOut(
        device_id=device.device_id,
        parent_id=device.parent_id,
        child_id=device.child_id,
        firmware_version=device.firmware_version,
        last_seen_at=device.last_seen_at,
        revoked=device.device_id in revoked_ids,
        revoked_at=device.revoked_at,
        created_at=device.created_at,
    )


@router.get("/devices")
async def list_all_devices(
    admin: CurrentAdmin,
    session: SessionDep,
    revocations: RevocationsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AdminDeviceOut]:
    """Every device the fleet knows, by device id, a page at a time."""
    devices = await session.scalars(
        select(Device).order_by(Device.device_id).limit(limit).offset(offset)
    )
    revoked = await revocations.revoked_device_ids()
    return [_admin_out(device, revoked) for device in devices]


async def _set_revoked(
    admin: Parent,
    session: SessionDep,
    settings: Settings,
    revocations: FileRevocations,
    device_id: str,
    *,
    revoked: bool,
) -> AdminDeviceOut:
    """Record, change the file, then commit; a failed commit puts the file back.

    The row and the audit entry are written (flushed) first, so that once the file has
    changed only the commit can fail, and then the change is undone: the file, which brokers
    and hubs obey, and the record of who changed it never disagree for long.
    """
    device = await session.get(Device, device_id)
    if device is None:
        device = Device(device_id=device_id)
        session.add(device)
    if revoked:
        device.revoked_at = device.revoked_at or datetime.now(UTC)
    else:
        device.revoked_at = None
    action = AuditAction.ADMIN_REVOKE if revoked else AuditAction.ADMIN_RESTORE
    session.add(audit_device(admin, action, device_id))
    await session.flush()
    path = settings.revoked_devices_file
    changed = await asyncio.to_thread(change_revocation, path, device_id, revoked=revoked)
    try:
        await session.commit()
    except BaseException:
        if changed:
            await asyncio.to_thread(change_revocation, path, device_id, revoked=not revoked)
        raise
    await session.refresh(device)
    return _admin_out(device, await revocations.revoked_device_ids())


@router.post("/devices/{device_id}/revoke")
async def revoke_device(
    device_id: DeviceId,
    admin: CurrentAdmin,
    session: SessionDep,
    settings: SettingsDep,
    revocations: RevocationsDep,
) -> AdminDeviceOut:
    """Refuse the device at every broker and hub from now on (audited ``admin_revoke``)."""
    return await _set_revoked(admin, session, settings, revocations, device_id, revoked=True)


@router.post("/devices/{device_id}/restore")
async def restore_device(
    device_id: DeviceId,
    admin: CurrentAdmin,
    session: SessionDep,
    settings: SettingsDep,
    revocations: RevocationsDep,
) -> AdminDeviceOut:
    """Lift the device's revocation (audited ``admin_restore``)."""
    return await _set_revoked(admin, session, settings, revocations, device_id, revoked=False)
