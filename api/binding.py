"""Binding a toy to a parent's child: what both pairing flows end in.

A device is bound to at most one parent. Binding is a conditional update (or an insert that
the primary key guards), so two parents racing for one toy cannot both win and an existing
binding is never overwritten by someone else; the parent who holds the toy may move it to
another of their children. Each binding is audited with the flow that made it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import audit_device
from api.errors import ApiError, Conflict
from hub.db.models import AuditAction, Child, Device, Parent
from hub.revocation import FileRevocations


class DeviceRevoked(ApiError):
    """The device is revoked and cannot be paired."""

    status = HTTPStatus.FORBIDDEN
    code = "device_revoked"


class DeviceClaimed(Conflict):
    """The device is bound to another parent."""

    code = "device_claimed"


class DeviceOut(BaseModel):
    """A device as its parent sees it."""

    device_id: str
    child_id: uuid.UUID | None
    firmware_version: str | None
    last_seen_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


def device_out(device: Device) -> DeviceOut:
    """The parent's view of ``device``."""
    return DeviceOut(
        device_id=device.device_id,
        child_id=device.child_id,
        firmware_version=device.firmware_version,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
        created_at=device.created_at,
    )


def app_revocations(request: Request) -> FileRevocations:
    """The app's one reader of the revocation file, kept on ``app.state``: it re-reads the
    file only when the file changed, so a check costs a ``stat``."""
    state = request.app.state
    path = state.settings.revoked_devices_file
    reader: FileRevocations | None = getattr(state, "revocations", None)
    if reader is None or getattr(state, "revocations_path", None) != path:
        reader = FileRevocations(path)
        state.revocations = reader
        state.revocations_path = path
    return reader


RevocationsDep = Annotated[FileRevocations, Depends(app_revocations)]


async def ensure_not_revoked(revocations: FileRevocations, device_id: str) -> None:
    """Refuse a device in the revocation file.

    The file is the one source of truth, the same list brokers and hubs read, so the API never
    disagrees with them; ``devices.revoked_at`` only records when an administrator revoked.

    Raises:
        DeviceRevoked: 403.
    """
    if device_id in await revocations.revoked_device_ids():
        raise DeviceRevoked("this device is revoked")


async def bind_device(
    session: AsyncSession,
    parent: Parent,
    child: Child,
    device_id: str,
    action: AuditAction,
) -> Device:
    """Bind ``device_id`` to ``child`` of ``parent``, audit it and commit.

    Raises:
        DeviceClaimed: 409 when another parent holds the device (their binding is kept).
    """
    device = await session.get(Device, device_id)
    if device is not None and device.parent_id is not None and device.parent_id != parent.id:
        raise DeviceClaimed("this device belongs to another account")
    previous_child = None if device is None else device.child_id
    rebind = device is not None and device.parent_id == parent.id
    if device is None:
        device = Device(device_id=device_id, parent_id=parent.id, child_id=child.id)
        session.add(device)
    else:
        bound = await session.execute(
            update(Device)
            .where(
                Device.device_id == device_id,
                or_(Device.parent_id.is_(None), Device.parent_id == parent.id),
            )
            .values(parent_id=parent.id, child_id=child.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(bound, "rowcount", 0) != 1:
            await session.rollback()
            raise DeviceClaimed("this device belongs to another account")
    session.add(
        audit_device(
            parent,
            action,
            device_id,
            child_id=str(child.id),
            previous_child_id=None if previous_child is None else str(previous_child),
            rebind=rebind,
        )
    )
    try:
        await session.commit()
    except IntegrityError as error:  # another parent's claim of a new device won the race
        await session.rollback()
        raise DeviceClaimed("this device belongs to another account") from error
    await session.refresh(device)
    return device
