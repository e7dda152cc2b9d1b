"""Looking up what the caller owns: someone else's id answers exactly like a missing one.

Every route that takes a child or device id goes through these, so the "404 for another
parent's id" rule lives in one place (and the other-parent test matrix exercises each route).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import NotFound
from hub.db.models import Child, Device, Parent


async def own_child(session: AsyncSession, parent: Parent, child_id: uuid.UUID) -> Child:
    """The caller's child with this id.

    Raises:
        NotFound: for an id that does not exist and for another parent's child alike.
    """
    child = await session.scalar(
        select(Child).where(Child.id == child_id, Child.parent_id == parent.id)
    )
    if child is None:
        raise NotFound("no such child")
    return child


async def own_device(session: AsyncSession, parent: Parent, device_id: str) -> Device:
    """The caller's device with this id.

    Raises:
        NotFound: for a device that does not exist, is unclaimed or is another parent's.
    """
    device = await session.scalar(
        select(Device).where(Device.device_id == device_id, Device.parent_id == parent.id)
    )
    if device is None:
        raise NotFound("no such device")
    return device
