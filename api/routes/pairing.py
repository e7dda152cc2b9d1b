"""Pairing under ``/api/v1/pair``: a parent binds a toy to a child, two ways.

**Claim proof.** ``POST /api/v1/pair/claim`` takes the proof the toy gave the app
(docs/protocol.md, "Claim proof") and the child to bind the toy to. Checks, in order, each
with a stable ``code``:

1. the proof's shape (400 ``claim_malformed``) and signature under the device's derived frame
   key for the caller's account (403 ``claim_bad_signature``): a proof made for another account
   does not verify;
2. the clock window (403 ``claim_stale`` / ``claim_future``);
3. the device is not revoked (the revocation file; 403 ``device_revoked``);
4. the nonce was never seen (409 ``claim_replay``), claimed in the Redis nonce store when
   ``REDIS_URL`` is set, else in one in-process store per app (503 ``nonce_store_unavailable``
   when it cannot answer: fail closed);
5. the child is the caller's (404 ``not_found``, exactly like a missing child);
6. the device is not bound to another parent (409 ``device_claimed``; that binding is left as
   it is). A claim by the parent who already holds the device binds it to the given child.

The nonce is spent at step 4 even when a later step refuses: the toy makes a new proof.
Success creates or updates the device row, audits ``claim`` and answers the device. Every
403 and 409 refusal is audited ``claim_failed`` with its code and the device the proof named
(when that is a well-formed device id); the proof itself (nonce, signature) is never stored.

**Pairing code.** The toy asks the hub for a code and speaks it (docs/protocol.md, "Pairing
codes"); ``POST /api/v1/pair/code`` takes the code and the child. Rate limited per IP and per
account like every pairing route, and in addition each account and each client network (the
IPv4 address, the IPv6 /64) may make only ``TEDDY_PAIR_CODE_GUESS_LIMIT`` attempts per window,
counted before the code is looked at (429 ``rate_limited``): a guesser learns nothing once out
of attempts, and concurrent requests cannot slip past the count. A wrong, expired or used code
answers 404 ``pair_code_invalid`` (the three are indistinguishable) and is audited
``pair_code_failed``. The child is checked first (a wrong child costs no attempt); a right code
is spent even when the device then turns out revoked (403) or another parent's (409), and
those refusals are audited ``pair_code_failed`` with their reason.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from api.audit import audit_device
from api.binding import (
    DeviceOut,
    RevocationsDep,
    bind_device,
    device_out,
    ensure_not_revoked,
)
from api.deps import CurrentParent, SessionDep, SettingsDep
from api.errors import ApiError, Conflict, NotFound
from api.nonces import NonceStoreDep, spend_nonce
from api.ownership import own_child
from api.ratelimit import (
    AccountLimit,
    RateLimiter,
    address_block,
    client_ip,
    parse_limit,
    rate_limited,
)
from hub.db.models import AuditAction
from hub.errors import ProtocolError
from hub.pairing import normalise_code, redeem_code
from hub.protocol.claims import (
    CLAIM_FIELDS,
    CLAIM_REPLAY_TTL_S,
    ClaimRejected,
    ClaimRejectReason,
    verify_claim_proof,
)
from hub.protocol.keys import derive_device_key, derive_pair_code_key
from hub.protocol.topics import validate_device_id

router = APIRouter(prefix="/api/v1/pair", tags=["pairing"])

GUESS_SCOPE: Final = "pair_code_guess"


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


class ClaimReplay(Conflict):
    """The proof's nonce has been used before."""

    code = "claim_replay"


class PairCodeInvalid(NotFound):
    """No live code matches: wrong, expired or already used (indistinguishable on purpose)."""

    code = "pair_code_invalid"


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


class PairCodeBody(BaseModel):
    """The code the toy spoke, as the parent typed it, and the child to bind the toy to."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, examples=["042 917"])
    child_id: uuid.UUID


ClaimLimit = Annotated[AccountLimit, Depends(rate_limited("claim", per_account=True))]
PairCodeLimit = Annotated[AccountLimit, Depends(rate_limited("pair_code", per_account=True))]


def claim_nonce_key(device_id: str, nonce_hex: str) -> bytes:
    """The store key of a claim proof's nonce."""
    return f"claim/{device_id}/{nonce_hex}".encode("ascii")


@router.post("/claim")
async def claim_device(
    body: ClaimBody,
    *,
    parent: CurrentParent,
    session: SessionDep,
    settings: SettingsDep,
    nonces: NonceStoreDep,
    revocations: RevocationsDep,
    account_limit: ClaimLimit,
) -> DeviceOut:
    """Claim a toy for one of the caller's children with the toy's claim proof.

    Raises:
        ApiError: with the codes listed in this module's docstring.
    """
    await account_limit(str(parent.id))
    parent_id = parent.id
    fleet_secret = settings.fleet_secret()
    try:
        try:
            proof = verify_claim_proof(
                lambda device_id: derive_device_key(fleet_secret, device_id),
                body.model_dump(include=set(CLAIM_FIELDS)),
                parent.id,
                int(time.time()),
            )
        except ClaimRejected as error:
            raise _REJECTIONS[error.reason](error.detail) from None

        await ensure_not_revoked(revocations, proof.device_id)
        fresh = await spend_nonce(
            nonces, claim_nonce_key(proof.device_id, proof.nonce_hex), CLAIM_REPLAY_TTL_S
        )
        if not fresh:
            raise ClaimReplay("this claim proof has been used already")
        child = await own_child(session, parent, body.child_id)
        device = await bind_device(session, parent, child, proof.device_id, AuditAction.CLAIM)
    except ApiError as error:
        if error.status in _AUDITED_CLAIM_REFUSALS:
            session.add(
                audit_device(
                    parent_id, AuditAction.CLAIM_FAILED, _named_device(body), reason=error.code
                )
            )
            await session.commit()
        raise
    return device_out(device)


_AUDITED_CLAIM_REFUSALS: Final = frozenset({HTTPStatus.FORBIDDEN, HTTPStatus.CONFLICT})


def _named_device(body: ClaimBody) -> str | None:
    """The device id the proof names, for the audit; None when it is not a device id."""
    try:
        return validate_device_id(body.device_id)
    except ProtocolError:
        return None


@router.post("/code")
async def pair_with_code(
    body: PairCodeBody,
    request: Request,
    *,
    parent: CurrentParent,
    session: SessionDep,
    settings: SettingsDep,
    revocations: RevocationsDep,
    account_limit: PairCodeLimit,
) -> DeviceOut:
    """Pair the toy that spoke ``code`` with one of the caller's children.

    Raises:
        ApiError: with the codes listed in this module's docstring.
    """
    await account_limit(str(parent.id))
    parent_id = parent.id
    child = await own_child(session, parent, body.child_id)
    # Every attempt spends from the budget before the code is looked at, so concurrent
    # requests cannot all slip in under it; a parent typing the right code spends one.
    limiter: RateLimiter = request.app.state.rate_limiter
    guess_limit = parse_limit(settings.pair_code_guess_limit, "TEDDY_PAIR_CODE_GUESS_LIMIT")
    ip = client_ip(request, trust_proxy_headers=settings.trust_proxy_headers)
    await limiter.hit(GUESS_SCOPE, "account", str(parent.id), guess_limit)
    await limiter.hit(GUESS_SCOPE, "network", address_block(ip), guess_limit)
    code = normalise_code(body.code)
    device_id = None
    if code is not None:
        code_key = derive_pair_code_key(settings.fleet_secret())
        device_id = await redeem_code(session, code_key, code, now=datetime.now(UTC))
    if device_id is None:
        session.add(audit_device(parent, AuditAction.PAIR_CODE_FAILED, None, reason="invalid"))
        await session.commit()
        raise PairCodeInvalid("no such pairing code; ask the toy for a new one")
    # The code is spent from here on, whatever refuses next; each refusal is audited.
    await session.commit()
    try:
        await ensure_not_revoked(revocations, device_id)
        device = await bind_device(session, parent, child, device_id, AuditAction.PAIR_CODE)
    except ApiError as error:
        session.add(
            audit_device(parent_id, AuditAction.PAIR_CODE_FAILED, device_id, reason=error.code)
        )
        await session.commit()
        raise
    return device_out(device)
