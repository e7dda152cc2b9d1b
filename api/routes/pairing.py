"""Pairing under ``/api/v1/pair``: a parent claims a toy with the toy's claim proof.

``POST /api/v1/pair/claim`` takes the proof the toy gave the app (docs/protocol.md, "Claim
proof") and the child to bind the toy to. Checks, in order, each with a stable ``code``:

1. the proof's shape (400 ``claim_malformed``) and signature under the device's derived frame
   key for the caller's account (403 ``claim_bad_signature``): a proof made for another account
   does not verify;
2. the clock window (403 ``claim_stale`` / ``claim_future``);
3. the device is not revoked, in the revocation file or its row (403 ``device_revoked``);
4. the nonce was never seen (409 ``claim_replay``), claimed in the Redis nonce store when
   ``REDIS_URL`` is set, else in one in-process store per app (503 ``nonce_store_unavailable``
   when it cannot answer: fail closed);
5. the child is the caller's (404 ``not_found``, exactly like a missing child);
6. the device is not bound to another parent (409 ``device_claimed``; that binding is left as
   it is). A claim by the parent who already holds the device binds it to the given child.

The nonce is spent at step 4 even when a later step refuses: the toy makes a new proof.
Success creates or updates the device row, audits ``claim`` and answers the device.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Final

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CurrentParent, SessionDep, SettingsDep
from api.errors import ApiError, Conflict, NotFound
from api.nonces import NonceStoreDep, spend_nonce
from api.ratelimit import AccountLimit, rate_limited
from hub.db.models import AuditAction, AuditEntry, Child, Device, Parent
from hub.protocol.claims import (
    CLAIM_FIELDS,
    CLAIM_REPLAY_TTL_S,
    ClaimRejected,
    ClaimRejectReason,
    verify_claim_proof,
)
from hub.protocol.keys import derive_device_key
from hub.revocation import FileRevocations

router = APIRouter(prefix="/api/v1/pair", tags=["pairing"])

SUBJECT_TYPE: Final = "device"


class ClaimMalformed(ApiError):
    """The proof is not a claim proof."""

    status = HTTPStatus.BAD_REQUEST
    code = "claim_malformed"


class ClaimBadSignature(ApiError):
    """The proof does not verify for this device and the caller's account."""

    status = HTTPStatus.FORBIDDEN
    code = "claim_bad_signature"


class ClaimStale(ApiError):
    """The proof's time is more than the window in the past."""

    status = HTTPStatus.FORBIDDEN
    code = "claim_stale"


class ClaimFuture(ApiError):
    """The proof's time is more than the window in the future."""

    status = HTTPStatus.FORBIDDEN
    code = "claim_future"


class DeviceRevoked(ApiError):
    """The device is revoked and cannot be claimed."""

    status = HTTPStatus.FORBIDDEN
    code = "device_revoked"


class ClaimReplay(Conflict):
    """The proof's nonce has been used before."""

    code = "claim_replay"


class DeviceClaimed(Conflict):
    """The device is bound to another parent."""

    code = "device_claimed"


_REJECTIONS: Final[dict[ClaimRejectReason, type[ApiError]]] = {
    ClaimRejectReason.MALFORMED: ClaimMalformed,
    ClaimRejectReason.BAD_SIGNATURE: ClaimBadSignature,
    ClaimRejectReason.STALE: ClaimStale,
    ClaimRejectReason.FUTURE: ClaimFuture,
}


class ClaimBody(BaseModel):
    """The toy's claim proof as the app received it, and the child to bind the toy to."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(max_length=64)
    nonce: str = Field(max_length=64)
    timestamp: StrictInt
    hmac: str = Field(max_length=128)
    child_id: uuid.UUID


class ClaimedDevice(BaseModel):
    """A device as its parent sees it after a claim."""

    device_id: str
    child_id: uuid.UUID | None
    firmware_version: str | None
    last_seen_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


ClaimLimit = Annotated[AccountLimit, Depends(rate_limited("claim", per_account=True))]


def claim_nonce_key(device_id: str, nonce_hex: str) -> bytes:
    """The store key of a claim proof's nonce."""
    return f"claim/{device_id}/{nonce_hex}".encode("ascii")


async def _own_child(session: AsyncSession, parent: Parent, child_id: uuid.UUID) -> Child:
    child = await session.scalar(
        select(Child).where(Child.id == child_id, Child.parent_id == parent.id)
    )
    if child is None:
        raise NotFound("no such child")
    return child


def _out(device: Device) -> ClaimedDevice:
    return ClaimedDevice(
        device_id=device.device_id,
        child_id=device.child_id,
        firmware_version=device.firmware_version,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
        created_at=device.created_at,
    )


@router.post("/claim")
async def claim_device(
    body: ClaimBody,
    *,
    parent: CurrentParent,
    session: SessionDep,
    settings: SettingsDep,
    nonces: NonceStoreDep,
    account_limit: ClaimLimit,
) -> ClaimedDevice:
    """Claim a toy for one of the caller's children with the toy's claim proof.

    Raises:
        ApiError: with the codes listed in this module's docstring.
    """
    await account_limit(str(parent.id))
    fleet_secret = settings.fleet_secret()
    try:
        proof = verify_claim_proof(
            lambda device_id: derive_device_key(fleet_secret, device_id),
            body.model_dump(include=set(CLAIM_FIELDS)),
            parent.id,
            int(time.time()),
        )
    except ClaimRejected as error:
        raise _REJECTIONS[error.reason](error.detail) from None

    device = await session.get(Device, proof.device_id)
    revoked = await FileRevocations(settings.revoked_devices_file).revoked_device_ids()
    if proof.device_id in revoked or (device is not None and device.revoked_at is not None):
        raise DeviceRevoked("this device is revoked")

    fresh = await spend_nonce(
        nonces, claim_nonce_key(proof.device_id, proof.nonce_hex), CLAIM_REPLAY_TTL_S
    )
    if not fresh:
        raise ClaimReplay("this claim proof has been used already")

    child = await _own_child(session, parent, body.child_id)
    if device is not None and device.parent_id is not None and device.parent_id != parent.id:
        raise DeviceClaimed("this device belongs to another account")

    previous_child = None if device is None else device.child_id
    reclaim = device is not None and device.parent_id == parent.id
    if device is None:
        device = Device(device_id=proof.device_id, parent_id=parent.id, child_id=child.id)
        session.add(device)
    else:
        # Conditional, so a concurrent claim by another parent cannot be overwritten.
        bound = await session.execute(
            update(Device)
            .where(
                Device.device_id == proof.device_id,
                or_(Device.parent_id.is_(None), Device.parent_id == parent.id),
            )
            .values(parent_id=parent.id, child_id=child.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(bound, "rowcount", 0) != 1:
            await session.rollback()
            raise DeviceClaimed("this device belongs to another account")
    session.add(
        AuditEntry(
            actor_parent_id=parent.id,
            action=AuditAction.CLAIM.value,
            subject_type=SUBJECT_TYPE,
            subject_id=proof.device_id,
            detail={
                "child_id": str(child.id),
                "previous_child_id": None if previous_child is None else str(previous_child),
                "reclaim": reclaim,
            },
        )
    )
    try:
        await session.commit()
    except IntegrityError as error:  # another parent's claim of a new device won the race
        await session.rollback()
        raise DeviceClaimed("this device belongs to another account") from error
    await session.refresh(device)
    return _out(device)
