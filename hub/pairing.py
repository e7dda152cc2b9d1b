"""Pairing codes: issued by the hub to a toy that asks, redeemed by a parent through the API.

A code is six decimal digits, short enough for a toy to speak and a parent to type. Its
strength comes from everything around it rather than its length: it lives for minutes
(``TEDDY_PAIR_CODE_TTL_S``), it is deleted the moment it is redeemed (an atomic ``DELETE``, so
two parents racing for one code cannot both win), each device has at most one live code, and
the API limits and audits wrong guesses. The table holds only an HMAC of each code under a key
derived from the fleet secret, so a copy of the database reveals no live code.

The hub and the API share the codes through the database both already use, so replicas of
either need no other shared state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import PairingCode

CODE_DIGITS: Final = 6
# A toy that asks again within this many seconds gets no new code (a stuck button, a loop).
REISSUE_COOLDOWN_S: Final = 3.0
_ISSUE_ATTEMPTS: Final = 8


def new_code() -> str:
    """A uniformly random code of ``CODE_DIGITS`` digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_code(text: str) -> str | None:
    """The digits of a code as a parent may type it ("123 456", "123-456"); None if not one."""
    digits = "".join(character for character in text if character not in " -")
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def code_digest(key: bytes, code: str) -> str:
    """The stored form of ``code``."""
    return hmac.new(key, code.encode("ascii"), hashlib.sha256).hexdigest()


class PairingCodeCooldown(Exception):
    """The device asked for a code moments ago; the earlier one stands."""


async def issue_code(
    sessions: async_sessionmaker[AsyncSession],
    key: bytes,
    device_id: str,
    *,
    now: datetime,
    ttl_s: int,
) -> str:
    """A fresh live code for ``device_id``, replacing its previous one.

    Expired codes of every device are swept on the way, so the table holds only live codes.

    Raises:
        PairingCodeCooldown: when the device's last code is younger than the cooldown.
        RuntimeError: when no unused code was found in a few tries (a full code space).
    """
    async with sessions() as session:
        issued_at = await session.scalar(
            select(PairingCode.issued_at).where(PairingCode.device_id == device_id)
        )
        if issued_at is not None and now - issued_at < timedelta(seconds=REISSUE_COOLDOWN_S):
            raise PairingCodeCooldown(device_id)
        await session.execute(
            delete(PairingCode).where(
                (PairingCode.expires_at <= now) | (PairingCode.device_id == device_id)
            )
        )
        await session.commit()
    for _ in range(_ISSUE_ATTEMPTS):
        code = new_code()
        async with sessions() as session:
            session.add(
                PairingCode(
                    code_digest=code_digest(key, code),
                    device_id=device_id,
                    issued_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if await session.scalar(
                    select(PairingCode.device_id).where(PairingCode.device_id == device_id)
                ):
                    raise PairingCodeCooldown(device_id) from None  # a concurrent request won
                continue  # another device holds this code
        return code
    raise RuntimeError("no free pairing code; too many live codes")


async def redeem_code(session: AsyncSession, key: bytes, code: str, *, now: datetime) -> str | None:
    """Spend a live code in ``session``'s transaction; the device id it named, or None.

    The caller commits. The API commits the spend before it binds the device, so a code that
    named a revoked or someone else's toy is used up all the same (and the refusal audited).
    """
    digest = code_digest(key, code)
    device_id: str | None = await session.scalar(
        delete(PairingCode)
        .where(PairingCode.code_digest == digest, PairingCode.expires_at > now)
        .returning(PairingCode.device_id)
    )
    return device_id
