"""Claim proofs: how a toy vouches, for one parent's account, that it is in that parent's hands
(docs/protocol.md, "Claim proof").

A proof is the JSON object ``{device_id, nonce, timestamp, hmac}``::

    nonce     = 16 random bytes as 32 lowercase hex characters
    timestamp = Unix time in seconds (an integer)
    hmac      = lowercase hex of HMAC-SHA256(frame_key(device_id),
                    "teddy/v1/claim\\n" + device_id + "\\n" + account_id + "\\n"
                    + timestamp + "\\n" + nonce)

where ``account_id`` is the claiming parent's UUID in its lowercase canonical form. Naming the
account means a captured proof is useless to anyone else. A proof is good while
``|now - timestamp| <= CLAIM_WINDOW_S``; the API remembers its nonce for
``CLAIM_REPLAY_TTL_S``, so it is good once.

Pure functions only: no clock, no randomness, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.errors import ProtocolError, TeddyError
from hub.protocol.topics import validate_device_id

CLAIM_NONCE_SIZE = 16
CLAIM_WINDOW_S = 300
# Accepted from ``timestamp - window`` to ``timestamp + window``: a nonce must be remembered for
# the whole span (plus a second for rounding) to refuse every replay.
CLAIM_REPLAY_TTL_S = 2 * CLAIM_WINDOW_S + 1
MAX_TIMESTAMP = 10**11 - 1  # at most 11 decimal digits, as in connect tokens
CLAIM_FIELDS = frozenset({"device_id", "nonce", "timestamp", "hmac"})
_DOMAIN = b"teddy/v1/claim\n"
_NONCE_PATTERN = re.compile(r"[0-9a-f]{32}")
_TAG_PATTERN = re.compile(r"[0-9a-f]{64}")


class ClaimRejectReason(StrEnum):
    """Why a claim proof was refused; the values are stable (API codes, logs)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"


class ClaimRejected(TeddyError):
    """A claim proof that must not be honoured; ``reason`` says which check failed."""

    def __init__(self, reason: ClaimRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ClaimProof:
    """A parsed (not yet verified) claim proof."""

    device_id: str
    nonce_hex: str
    timestamp_s: int
    tag: bytes


def canonical_account_id(account_id: uuid.UUID | str) -> str:
    """The account's UUID as the proof names it: lowercase, hyphenated, 36 characters.

    Raises:
        ValueError: when ``account_id`` is not a UUID.
    """
    if isinstance(account_id, uuid.UUID):
        return str(account_id)
    return str(uuid.UUID(account_id))


def claim_mac_input(
    device_id: str, account_id: uuid.UUID | str, timestamp_s: int, nonce_hex: str
) -> bytes:
    """The bytes a claim proof's HMAC covers."""
    return b"".join(
        (
            _DOMAIN,
            device_id.encode("ascii"),
            b"\n",
            canonical_account_id(account_id).encode("ascii"),
            b"\n",
            str(timestamp_s).encode("ascii"),
            b"\n",
            nonce_hex.encode("ascii"),
        )
    )


def make_claim_proof(
    frame_key: bytes,
    device_id: str,
    account_id: uuid.UUID | str,
    timestamp: int,
    nonce: bytes,
) -> dict[str, str | int]:
    """The proof ``device_id`` gives for ``account_id`` at ``timestamp`` (Unix seconds).

    Raises:
        ProtocolError: (malformed) for a device id outside the alphabet.
        ValueError: for a nonce that is not 16 bytes, a timestamp out of range or an account
            id that is not a UUID.
    """
    validate_device_id(device_id)
    if len(nonce) != CLAIM_NONCE_SIZE:
        raise ValueError(f"claim nonce must be {CLAIM_NONCE_SIZE} bytes")
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("timestamp must be 0 to 11 decimal digits")
    nonce_hex = nonce.hex()
    tag = hmac.digest(
        frame_key, claim_mac_input(device_id, account_id, timestamp, nonce_hex), hashlib.sha256
    )
    return {"device_id": device_id, "nonce": nonce_hex, "timestamp": timestamp, "hmac": tag.hex()}


def _malformed(detail: str) -> ClaimRejected:
    return ClaimRejected(ClaimRejectReason.MALFORMED, detail)


def parse_claim_proof(proof: Mapping[str, Any]) -> ClaimProof:
    """Check a proof's shape (exactly the four fields, each in its form).

    Raises:
        ClaimRejected: (malformed) naming the first field that is wrong.
    """
    if not isinstance(proof, Mapping):
        raise _malformed("a claim proof is a JSON object")
    keys = set(proof)
    if keys != CLAIM_FIELDS:
        missing, extra = sorted(CLAIM_FIELDS - keys), sorted(map(str, keys - CLAIM_FIELDS))
        raise _malformed(f"fields missing {missing}, unexpected {extra}")
    device_id, nonce, timestamp, tag = (
        proof["device_id"],
        proof["nonce"],
        proof["timestamp"],
        proof["hmac"],
    )
    if not isinstance(device_id, str):
        raise _malformed("device_id must be a string")
    try:
        validate_device_id(device_id)
    except ProtocolError as error:
        raise _malformed(error.detail) from None
    if not isinstance(nonce, str) or _NONCE_PATTERN.fullmatch(nonce) is None:
        raise _malformed("nonce must be 32 lowercase hex characters")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise _malformed("timestamp must be an integer (Unix seconds)")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise _malformed("timestamp out of range")
    if not isinstance(tag, str) or _TAG_PATTERN.fullmatch(tag) is None:
        raise _malformed("hmac must be 64 lowercase hex characters")
    return ClaimProof(device_id, nonce, timestamp, bytes.fromhex(tag))


def verify_claim_proof(
    key_for: Callable[[str], bytes],
    proof: Mapping[str, Any],
    account_id: uuid.UUID | str,
    now: int,
) -> ClaimProof:
    """Check a proof for ``account_id`` at ``now`` (Unix seconds): shape, HMAC in constant
    time, then the window. Revocation, replay and binding are the caller's stateful checks.

    ``key_for`` answers a device id's frame key (for example
    :meth:`hub.protocol.keys.DeviceKeyring.key_for`); it is called only with a valid id.

    Raises:
        ClaimRejected: with the reason of the first check that failed.
    """
    parsed = parse_claim_proof(proof)
    try:
        account = canonical_account_id(account_id)
    except ValueError:
        raise _malformed("account id must be a UUID") from None
    expected = hmac.digest(
        key_for(parsed.device_id),
        claim_mac_input(parsed.device_id, account, parsed.timestamp_s, parsed.nonce_hex),
        hashlib.sha256,
    )
    if not hmac.compare_digest(expected, parsed.tag):
        raise ClaimRejected(ClaimRejectReason.BAD_SIGNATURE, "claim proof does not verify")
    if parsed.timestamp_s < now - CLAIM_WINDOW_S:
        raise ClaimRejected(ClaimRejectReason.STALE, "claim proof is too old")
    if parsed.timestamp_s > now + CLAIM_WINDOW_S:
        raise ClaimRejected(ClaimRejectReason.FUTURE, "claim proof is from the future")
    return parsed
