"""A parent's toys under ``/api/v1/devices``: list, read, move to another child, unpair.

Devices come into this list only through pairing (``/api/v1/pair``). Someone else's device, an
unclaimed one and one that does not exist all answer 404 ``not_found`` alike.

Unpairing (``DELETE``) unbinds the toy from the parent and the child at once, audits
``unpair``, and then tells the toy with a signed ``unpaired`` downlink; the answer says whether
the broker took the notice (``toy_notified``). The unbinding does not wait for the toy, so a
toy that is off or unreachable is still unpaired, and learns it when it next asks.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update

from api.audit import audit_device
from api.binding import DeviceOut, device_out
from api.deps import CurrentParent, SessionDep, SettingsDep
from api.errors import NotFound
from api.ownership import own_child, own_device
from api.toy_link import notify_toy
from hub.db.models import AuditAction, Device
from hub.protocol.kinds import Kind
from hub.protocol.topics import DEVICE_ID_PATTERN

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

DEVICE_ID_REGEX: Final = f"^{DEVICE_ID_PATTERN.pattern}$"
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_REGEX, examples=["toy-0001"])]


class DeviceChange(BaseModel):
    """Move the toy to another of the caller's children."""

    model_config = ConfigDict(extra="forbid")

    child_id: uuid.UUID


class Unpaired(BaseModel):
    """The outcome of an unpairing."""

    device_id: str
    toy_notified: bool


@router.get("")
async def list_devices(parent: CurrentParent, session: SessionDep) -> list[DeviceOut]:
    """The caller's toys."""
    devices = await session.scalars(
        select(Device).where(Device.parent_id == parent.id).order_by(Device.device_id)
    )
    return [device_out(device) for device in devices]


@router.get("/{device_id}")
async def get_device(device_id: DeviceId, parent: CurrentParent, session: SessionDep) -> DeviceOut:
    """One of the caller's toys.

    Raises:
        NotFound: 404 for a device that is not the caller's.
    """
    return device_out(await own_device(session, parent, device_id))


@router.patch("/{device_id}")
async def move_device(
    device_id: DeviceId, body: DeviceChange, parent: CurrentParent, session: SessionDep
) -> DeviceOut:
    """Bind the toy to another of the caller's children (audited ``rebind``).

    Raises:
        NotFound: 404 for a device or child that is not the caller's.
    """
    device = await own_device(session, parent, device_id)
    child = await own_child(session, parent, body.child_id)
    previous = device.child_id
    # Conditional on ownership, so a stale request after an unpairing moves nothing.
    moved = await session.execute(
        update(Device)
        .where(Device.device_id == device_id, Device.parent_id == parent.id)
        .values(child_id=child.id)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        await session.rollback()
        raise NotFound("no such device")
    session.add(
        audit_device(
            parent,
            AuditAction.REBIND,
            device_id,
            child_id=str(child.id),
            previous_child_id=None if previous is None else str(previous),
        )
    )
    await session.commit()
    await session.refresh(device)
    return device_out(device)


@router.delete("/{device_id}")
async def unpair_device(
    device_id: DeviceId, parent: CurrentParent, session: SessionDep, settings: SettingsDep
) -> Unpaired:
    """Unbind the toy from the caller and their child, then tell the toy.

    Raises:
        NotFound: 404 for a device that is not the caller's.
    """
    device = await own_device(session, parent, device_id)
    previous = device.child_id
    device.parent_id = None
    device.child_id = None
    session.add(
        audit_device(
            parent,
            AuditAction.UNPAIR,
            device_id,
            previous_child_id=None if previous is None else str(previous),
        )
    )
    await session.commit()
    notified = await notify_toy(settings, device_id, Kind.UNPAIRED)
    return Unpaired(device_id=device_id, toy_notified=notified)
