"""Claim proofs (docs/protocol.md, "Claim proof"): round trip, tampering, window, shape."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import pytest

from hub.errors import ProtocolError
from hub.protocol.claims import (
    CLAIM_WINDOW_S,
    ClaimRejected,
    ClaimRejectReason,
    make_claim_proof,
    verify_claim_proof,
)
from hub.protocol.keys import derive_device_key

FLEET = b"unit-fleet-secret-0123456789-abcdefghijkl"
ACCOUNT = uuid.UUID("7f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f")
OTHER_ACCOUNT = uuid.UUID("00000000-0000-4000-8000-000000000001")
DEVICE = "toy-0001"
NOW = 1_700_000_000
NONCE = bytes(range(16))


def key_for(device_id: str) -> bytes:
    return derive_device_key(FLEET, device_id)


def proof(**changes: Any) -> dict[str, Any]:
    made: dict[str, Any] = make_claim_proof(key_for(DEVICE), DEVICE, ACCOUNT, NOW, NONCE)
    made.update(changes)
    return made


def reason_of(candidate: Any, account: Any = ACCOUNT, now: int = NOW) -> ClaimRejectReason:
    with pytest.raises(ClaimRejected) as caught:
        verify_claim_proof(key_for, candidate, account, now)
    return caught.value.reason


def test_round_trip() -> None:
    made = proof()
    assert set(made) == {"device_id", "nonce", "timestamp", "hmac"}
    assert made["nonce"] == NONCE.hex()
    assert made["timestamp"] == NOW
    parsed = verify_claim_proof(key_for, made, ACCOUNT, NOW)
    assert (parsed.device_id, parsed.nonce_hex, parsed.timestamp_s) == (DEVICE, NONCE.hex(), NOW)


def test_the_mac_covers_the_documented_message() -> None:
    message = f"teddy/v1/claim\n{DEVICE}\n{ACCOUNT}\n{NOW}\n{NONCE.hex()}".encode()
    expected = hmac.new(key_for(DEVICE), message, hashlib.sha256).hexdigest()
    assert proof()["hmac"] == expected


def test_account_id_as_text_is_canonicalised() -> None:
    upper = str(ACCOUNT).upper()
    assert make_claim_proof(key_for(DEVICE), DEVICE, upper, NOW, NONCE) == proof()
    verify_claim_proof(key_for, proof(), upper, NOW)


def test_another_account_fails() -> None:
    assert reason_of(proof(), account=OTHER_ACCOUNT) is ClaimRejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "changes",
    [
        {"device_id": "toy-0002"},
        {"timestamp": NOW + 1},
        {"nonce": "ff" + NONCE.hex()[2:]},
        {"hmac": "0" * 64},
    ],
    ids=["device_id", "timestamp", "nonce", "hmac"],
)
def test_any_changed_field_fails(changes: dict[str, Any]) -> None:
    assert reason_of(proof(**changes)) is ClaimRejectReason.BAD_SIGNATURE


def test_every_flipped_hmac_bit_fails() -> None:
    tag = bytes.fromhex(proof()["hmac"])
    for index in range(len(tag)):
        flipped = bytearray(tag)
        flipped[index] ^= 0x01
        assert reason_of(proof(hmac=flipped.hex())) is ClaimRejectReason.BAD_SIGNATURE


def test_another_devices_key_fails() -> None:
    made = make_claim_proof(key_for("toy-0002"), DEVICE, ACCOUNT, NOW, NONCE)
    assert reason_of(made) is ClaimRejectReason.BAD_SIGNATURE


def test_window_edges() -> None:
    verify_claim_proof(key_for, proof(), ACCOUNT, NOW + CLAIM_WINDOW_S)
    verify_claim_proof(key_for, proof(), ACCOUNT, NOW - CLAIM_WINDOW_S)
    assert reason_of(proof(), now=NOW + CLAIM_WINDOW_S + 1) is ClaimRejectReason.STALE
    assert reason_of(proof(), now=NOW - CLAIM_WINDOW_S - 1) is ClaimRejectReason.FUTURE


def test_signature_is_checked_before_the_clock() -> None:
    stale_and_forged = proof(hmac="0" * 64)
    assert reason_of(stale_and_forged, now=NOW + 10 * CLAIM_WINDOW_S) is (
        ClaimRejectReason.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    "candidate",
    [
        {},
        [],
        "not a proof",
        {"device_id": DEVICE, "nonce": NONCE.hex(), "timestamp": NOW},
        {**proof(), "extra": 1},
        proof(device_id="Toy-0001"),
        proof(device_id="to"),
        proof(device_id="toy/0001"),
        proof(device_id=1),
        proof(nonce=NONCE.hex().upper()),
        proof(nonce=NONCE.hex()[:-2]),
        proof(nonce=None),
        proof(timestamp=str(NOW)),
        proof(timestamp=float(NOW)),
        proof(timestamp=True),
        proof(timestamp=-1),
        proof(timestamp=10**11),
        proof(hmac=proof()["hmac"].upper()),
        proof(hmac=proof()["hmac"][:-1]),
        proof(hmac="zz" * 32),
    ],
)
def test_malformed(candidate: Any) -> None:
    assert reason_of(candidate) is ClaimRejectReason.MALFORMED


def test_malformed_account() -> None:
    assert reason_of(proof(), account="not-a-uuid") is ClaimRejectReason.MALFORMED


def test_key_is_not_asked_for_a_malformed_device_id() -> None:
    asked: list[str] = []

    def recording(device_id: str) -> bytes:
        asked.append(device_id)
        return key_for(device_id)

    with pytest.raises(ClaimRejected):
        verify_claim_proof(recording, proof(device_id="+/#"), ACCOUNT, NOW)
    assert asked == []


@pytest.mark.parametrize(
    ("device_id", "timestamp", "nonce"),
    [("+bad", NOW, NONCE), (DEVICE, -1, NONCE), (DEVICE, NOW, b"short")],
)
def test_make_refuses_bad_input(device_id: str, timestamp: int, nonce: bytes) -> None:
    with pytest.raises((ValueError, ProtocolError)):
        make_claim_proof(key_for(DEVICE), device_id, ACCOUNT, timestamp, nonce)
