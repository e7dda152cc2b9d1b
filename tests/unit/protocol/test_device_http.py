"""Signed device HTTP requests (hub.protocol.device_http; docs/protocol.md, "Device HTTP
requests")."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from hub.protocol.device_http import (
    HEADER_DEVICE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_BODY_SIZE,
    SIGNED_HEADERS,
    DeviceRequestRejected,
    DeviceRequestRejectReason,
    derive_http_key,
    sign_request,
    verify_request,
)
from hub.protocol.keys import derive_device_key
from hub.protocol.verify import CLOCK_WINDOW_MS

ROOT = Path(__file__).resolve().parents[3]
FLEET = b"teddy-vectors-fleet-secret-A-0123456789abcdef"
DEVICE = "toy-0001"
KEY = derive_device_key(FLEET, DEVICE)
NOW = 1_735_689_600_000
NONCE = bytes(range(16))
PATH = "/api/v1/esp32/private/status?x=1"
BODY = b'{"firmware_version":"1.2.3","uptime_s":42}'
Reason = DeviceRequestRejectReason

# Fixed vectors, also printed in docs/protocol.md: fleet secret A of the protocol vectors.
VECTORS = [
    {
        "device_id": "toy-0001",
        "method": "GET",
        "path": "/api/v1/esp32/private/firmware?current=1.2.3",
        "timestamp_ms": 1735689600000,
        "nonce_hex": "000102030405060708090a0b0c0d0e0f",
        "body": b"",
        "http_key_hex": "c90d9bacc5fa09c2b42a02033fa07f27f590814c80ef77faf7762ad2e0b2ee61",
        "signature_hex": "a744cea26029fb6a46b0d4b0d0a76434cdfadbec7eb1b81e98815545e280d616",
    },
    {
        "device_id": "toy-0001",
        "method": "POST",
        "path": "/api/v1/esp32/private/status",
        "timestamp_ms": 1735689600123,
        "nonce_hex": "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "body": b'{"firmware_version":"1.2.3","uptime_s":42}',
        "http_key_hex": "c90d9bacc5fa09c2b42a02033fa07f27f590814c80ef77faf7762ad2e0b2ee61",
        "signature_hex": "c36f8145b967963b14f74d2cb30b633859e8ed07c96e23d2726fe41118bd3c0a",
    },
    {
        "device_id": "esp32-a1b2c3d4e5f6",
        "method": "POST",
        "path": "/api/v1/esp32/private/status",
        "timestamp_ms": 1767225600000,
        "nonce_hex": "ffffffffffffffffffffffffffffffff",
        "body": (
            b'{"firmware_version":"2.0.0-rc.1","uptime_s":0,"free_heap":81920,'
            b'"rssi_dbm":-61,"battery_pct":100}'
        ),
        "http_key_hex": "1f71513a099bb293ea82ea501e7b14e1d2ca21dc72260daebdceef532f5a7018",
        "signature_hex": "ae98504fa3a532b942b5de0fb0514dd287ef2f86e8b721df24656f49eb371277",
    },
]


def key_for(device_id: str) -> bytes:
    return derive_device_key(FLEET, device_id)


def signed(
    *,
    method: str = "POST",
    path: str = PATH,
    device_id: str = DEVICE,
    timestamp_ms: int = NOW,
    nonce: bytes = NONCE,
    body: bytes = BODY,
) -> dict[str, str]:
    return sign_request(key_for(device_id), method, path, device_id, timestamp_ms, nonce, body)


def rejection(
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now_ms: int = NOW,
) -> Reason:
    with pytest.raises(DeviceRequestRejected) as caught:
        verify_request(key_for, method, path, headers, body, now_ms)
    return caught.value.reason


def test_a_signed_request_verifies() -> None:
    headers = signed()
    verified = verify_request(key_for, "POST", PATH, headers, BODY, NOW)
    assert (verified.device_id, verified.timestamp_ms) == (DEVICE, NOW)
    assert (verified.nonce_hex, verified.body) == (NONCE.hex(), BODY)
    assert set(headers) == set(SIGNED_HEADERS)
    assert headers[HEADER_TIMESTAMP] == str(NOW)
    assert len(headers[HEADER_SIGNATURE]) == 64


def test_header_names_are_case_insensitive_and_the_method_is_upper_cased() -> None:
    headers = {name.lower(): value for name, value in signed(method="get", body=b"").items()}
    assert verify_request(key_for, "GET", PATH, headers, b"", NOW).device_id == DEVICE


def test_an_empty_body_is_signed_as_the_hash_of_no_bytes() -> None:
    headers = signed(method="GET", body=b"")
    assert verify_request(key_for, "GET", PATH, headers, b"", NOW).body == b""
    assert rejection(headers, method="GET", body=b"\x00") is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: str(vector["signature_hex"])[:8])
def test_fixed_vectors(vector: dict[str, object]) -> None:
    device_id, method, path = str(vector["device_id"]), str(vector["method"]), str(vector["path"])
    timestamp_ms, nonce_hex = vector["timestamp_ms"], str(vector["nonce_hex"])
    body = vector["body"]
    assert isinstance(timestamp_ms, int)
    assert isinstance(body, bytes)
    device_key = derive_device_key(FLEET, device_id)
    assert derive_http_key(device_key).hex() == vector["http_key_hex"]
    headers = sign_request(
        device_key, method, path, device_id, timestamp_ms, bytes.fromhex(nonce_hex), body
    )
    assert headers == {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_NONCE: nonce_hex,
        HEADER_SIGNATURE: vector["signature_hex"],
    }
    # The definition, with nothing but the standard library and the HTTP key.
    canonical = "\n".join(
        (
            "TEDDY-HTTP-V1",
            method,
            path,
            device_id,
            str(timestamp_ms),
            nonce_hex,
            hashlib.sha256(body).hexdigest(),
        )
    )
    http_key = bytes.fromhex(str(vector["http_key_hex"]))
    assert hmac.new(http_key, canonical.encode(), "sha256").hexdigest() == vector["signature_hex"]
    assert verify_request(key_for, method, path, headers, body, timestamp_ms).device_id == device_id


def test_the_vectors_are_the_ones_in_the_protocol_document() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text[text.index("## Device HTTP requests") : text.index("## Test vectors")]
    for vector in VECTORS:
        for field in ("path", "nonce_hex", "http_key_hex", "signature_hex"):
            assert str(vector[field]) in section, (field, vector[field])
        assert str(vector["timestamp_ms"]) in section
        assert bytes(vector["body"]).decode() in section  # type: ignore[call-overload]


def test_the_http_key_is_not_the_frame_key() -> None:
    assert derive_http_key(KEY) != KEY
    assert len(derive_http_key(KEY)) == 32


@pytest.mark.parametrize("missing", SIGNED_HEADERS)
def test_each_header_is_required(missing: str) -> None:
    headers = {name: value for name, value in signed().items() if name != missing}
    assert rejection(headers) is Reason.MISSING_HEADER


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_DEVICE, "Toy-0001"),
        (HEADER_DEVICE, "toy/0001"),
        (HEADER_DEVICE, ""),
        (HEADER_TIMESTAMP, "-1"),
        (HEADER_TIMESTAMP, "01735689600000"),
        (HEADER_TIMESTAMP, "1735689600000.0"),
        (HEADER_TIMESTAMP, "12345678901234567"),
        (HEADER_TIMESTAMP, ""),
        (HEADER_NONCE, NONCE.hex().upper()),
        (HEADER_NONCE, NONCE.hex()[:-2]),
        (HEADER_SIGNATURE, "A" * 64),
        (HEADER_SIGNATURE, "0" * 63),
        (HEADER_SIGNATURE, "0" * 65),
    ],
)
def test_malformed_headers(header: str, value: str) -> None:
    assert rejection({**signed(), header: value}) is Reason.MALFORMED


def test_a_repeated_header_is_malformed() -> None:
    # Starlette's Headers list every occurrence in items(): two ids cannot both be read.
    raw = [(name.lower().encode(), value.encode()) for name, value in signed().items()]
    headers = Headers(raw=[*raw, (b"x-teddy-device", b"toy-0002")])
    assert rejection(headers) is Reason.MALFORMED  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["api/v1", "/with space", "/caf\u00e9", "/a\nb", ""])
def test_a_path_outside_visible_ascii_is_malformed(path: str) -> None:
    assert rejection(signed(), path=path) is Reason.MALFORMED


def test_a_method_that_is_not_letters_is_malformed() -> None:
    assert rejection(signed(), method="PO ST") is Reason.MALFORMED


def test_a_body_over_the_cap_is_too_large_even_when_signed() -> None:
    body = b"x" * (MAX_BODY_SIZE + 1)
    assert rejection(signed(body=body), body=body) is Reason.TOO_LARGE
    body = b"x" * MAX_BODY_SIZE
    assert verify_request(key_for, "POST", PATH, signed(body=body), body, NOW).body == body


def test_another_fleets_key_is_a_bad_signature() -> None:
    other = derive_device_key(b"another-fleet-secret-0123456789abcdef", DEVICE)
    headers = sign_request(other, "POST", PATH, DEVICE, NOW, NONCE, BODY)
    assert rejection(headers) is Reason.BAD_SIGNATURE


def test_the_frame_key_itself_does_not_sign_requests() -> None:
    # A request signed directly with the frame key (no HTTP key derivation) must fail.
    canonical = "\n".join(
        (
            "TEDDY-HTTP-V1",
            "POST",
            PATH,
            DEVICE,
            str(NOW),
            NONCE.hex(),
            hashlib.sha256(BODY).hexdigest(),
        )
    )
    tag = hmac.new(KEY, canonical.encode(), "sha256").hexdigest()
    assert rejection({**signed(), HEADER_SIGNATURE: tag}) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PUT"),
        ("path", "/api/v1/esp32/private/status?x=2"),
        ("path", "/api/v1/esp32/private/status"),
        ("path", "/api/v1/esp32/private/firmware?x=1"),
        ("body", BODY + b" "),
        ("body", b""),
    ],
)
def test_any_change_to_the_request_fails(field: str, value: str | bytes) -> None:
    changed: dict[str, object] = {"method": "POST", "path": PATH, "body": BODY, field: value}
    assert rejection(signed(), **changed) is Reason.BAD_SIGNATURE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_DEVICE, "toy-0002"),
        (HEADER_TIMESTAMP, str(NOW + 1)),
        (HEADER_NONCE, bytes(range(1, 17)).hex()),
    ],
)
def test_any_change_to_a_signed_header_fails(header: str, value: str) -> None:
    assert rejection({**signed(), header: value}) is Reason.BAD_SIGNATURE


def test_the_clock_window_is_inclusive_at_both_edges() -> None:
    for stamp in (NOW - CLOCK_WINDOW_MS, NOW + CLOCK_WINDOW_MS):
        headers = signed(timestamp_ms=stamp)
        assert verify_request(key_for, "POST", PATH, headers, BODY, NOW).timestamp_ms == stamp
    assert rejection(signed(timestamp_ms=NOW - CLOCK_WINDOW_MS - 1)) is Reason.STALE
    assert rejection(signed(timestamp_ms=NOW + CLOCK_WINDOW_MS + 1)) is Reason.FUTURE


def test_a_forged_request_is_a_bad_signature_not_stale() -> None:
    # Signature before clock: an unauthenticated sender learns nothing about the window.
    headers = {**signed(timestamp_ms=0), HEADER_SIGNATURE: "0" * 64}
    assert rejection(headers) is Reason.BAD_SIGNATURE


def test_the_key_is_not_derived_for_a_malformed_request() -> None:
    def no_key(_device_id: str) -> bytes:
        raise AssertionError("key derived")

    with pytest.raises(DeviceRequestRejected):
        verify_request(no_key, "POST", PATH, {**signed(), HEADER_NONCE: "x"}, BODY, NOW)


def test_a_rejection_names_the_device_once_its_id_is_valid() -> None:
    with pytest.raises(DeviceRequestRejected) as caught:
        verify_request(key_for, "POST", PATH, signed(), BODY + b"!", NOW)
    assert caught.value.device_id == DEVICE
    with pytest.raises(DeviceRequestRejected) as caught:
        verify_request(key_for, "POST", PATH, {**signed(), HEADER_DEVICE: "#"}, BODY, NOW)
    assert caught.value.device_id is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"nonce": b"short"}, ValueError),
        ({"timestamp_ms": -1}, ValueError),
        ({"timestamp_ms": 10**16}, ValueError),
        ({"path": "no-slash"}, ValueError),
    ],
)
def test_signing_refuses_what_could_not_verify(
    changes: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        signed(**changes)  # type: ignore[arg-type]


# No deadline or too-slow check: Hypothesis would time each example by the wall clock, so a
# busy machine would fail it for its own slowness (as the CI profile Hypothesis loads does).
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_a_bit_flip_anywhere_in_the_body_fails(body: bytes, data: st.DataObject) -> None:
    headers = signed(body=body)
    bit = data.draw(st.integers(0, len(body) * 8 - 1))
    flipped = bytearray(body)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert rejection(headers, body=bytes(flipped)) is Reason.BAD_SIGNATURE
