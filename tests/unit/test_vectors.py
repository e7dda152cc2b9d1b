"""hub.protocol against docs/vectors/protocol-vectors.json, the vectors the C core shares.

The vectors come from scripts/generate_vectors.py, an independent standard-library
implementation, so agreement here is evidence and not a tautology.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hub.errors import ProtocolError, RejectReason
from hub.gate import Gate
from hub.metrics import HubMetrics
from hub.nonces import MemoryNonceStore
from hub.protocol import (
    CLOCK_WINDOW_MS,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_SIZE,
    NONCE_SIZE,
    NONCE_TTL_MS,
    PROTOCOL_VERSION,
    TAG_SIZE,
    TOPIC_VERSION,
    DeviceKeyring,
    Direction,
    Kind,
    derive_device_key,
    encode_frame,
    verify_frame,
)
from hub.protocol.frames import MAX_TOPIC_SIZE
from hub.protocol.keys import DEVICE_KEY_SIZE, FRAME_KEY_INFO_PREFIX, KEY_SALT
from hub.protocol.topics import DEVICE_ID_MAX_LENGTH, DEVICE_ID_MIN_LENGTH
from hub.revocation import InMemoryRevocations, RevocationList

ROOT = Path(__file__).resolve().parents[2]
VECTOR_FILE = ROOT / "docs" / "vectors" / "protocol-vectors.json"
GENERATOR = ROOT / "scripts" / "generate_vectors.py"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
DIRECTIONS = {"up": Direction.UP, "down": Direction.DOWN}


def by_name(section: str) -> pytest.MarkDecorator:
    """Parametrize over one section of the file, each case named after its vector."""
    vectors = VECTORS[section]
    return pytest.mark.parametrize("vector", vectors, ids=[v["name"] for v in vectors])


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_vectors", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_vector_file_is_what_the_generator_writes() -> None:
    generator = load_generator()
    assert generator.render() == VECTOR_FILE.read_text(encoding="utf-8"), (
        "docs/vectors/protocol-vectors.json is stale: run scripts/generate_vectors.py"
    )
    assert generator.main(["--check"]) == 0


def test_generator_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "vectors.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert load_generator().main(["--check", "--output", str(stale)]) == 1


def test_constants_match_the_code() -> None:
    assert VECTORS["meta"]["constants"] == {
        "protocol_version": PROTOCOL_VERSION,
        "topic_version": TOPIC_VERSION,
        "clock_window_ms": CLOCK_WINDOW_MS,
        "nonce_ttl_ms": NONCE_TTL_MS,
        "max_payload": MAX_PAYLOAD_SIZE,
        "min_frame_size": MIN_FRAME_SIZE,
        "max_frame_size": MAX_FRAME_SIZE,
        "max_topic_size": MAX_TOPIC_SIZE,
        "nonce_size": NONCE_SIZE,
        "tag_size": TAG_SIZE,
        "device_key_size": DEVICE_KEY_SIZE,
        "device_id_min_length": DEVICE_ID_MIN_LENGTH,
        "device_id_max_length": DEVICE_ID_MAX_LENGTH,
        "key_salt": KEY_SALT.decode(),
        "frame_key_info_prefix": FRAME_KEY_INFO_PREFIX.decode(),
    }


def test_kinds_match_the_code() -> None:
    expected = [
        {"name": kind.topic_name, "code": kind.value, "direction": kind.direction.segment}
        for kind in Kind
    ]
    assert VECTORS["meta"]["kinds"] == expected


def test_every_category_is_present() -> None:
    reasons = {vector["reason"] for vector in VECTORS["invalid"]}
    assert reasons == {
        "malformed",
        "topic_mismatch",
        "oversized",
        "bad_signature",
        "stale",
        "future",
    }
    assert {vector["direction"] for vector in VECTORS["valid"]} == {"up", "down"}
    sizes = {len(bytes.fromhex(vector["frame_hex"])) for vector in VECTORS["valid"]}
    assert {MIN_FRAME_SIZE, MAX_FRAME_SIZE} <= sizes


@pytest.mark.parametrize(
    "vector",
    VECTORS["keys"],
    ids=[f"{v['device_id']}@{v['fleet_secret_hex'][:8]}" for v in VECTORS["keys"]],
)
def test_derive_device_key(vector: dict[str, Any]) -> None:
    secret = vector["fleet_secret"].encode("utf-8")
    assert secret.hex() == vector["fleet_secret_hex"]
    key = derive_device_key(secret, vector["device_id"])
    assert key.hex() == vector["device_key_hex"]
    assert DeviceKeyring(secret).key_for(vector["device_id"]) == key


@by_name("valid")
def test_encode_reproduces_valid_frame(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    kind = Kind(fields["kind_code"])
    assert kind.topic_name == fields["kind"]
    frame = encode_frame(
        key=bytes.fromhex(vector["device_key_hex"]),
        topic=vector["topic"],
        kind=kind,
        device_id=fields["device_id"],
        timestamp_ms=fields["timestamp_ms"],
        nonce=bytes.fromhex(fields["nonce_hex"]),
        seq=fields["seq"],
        payload=bytes.fromhex(fields["payload_hex"]),
    )
    assert frame.hex() == vector["frame_hex"]
    assert frame[-TAG_SIZE:].hex() == vector["tag_hex"]


@by_name("valid")
def test_verify_accepts_valid_frame(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["device_key_hex"])
    fields = vector["fields"]
    asked: list[str] = []

    def key_for(device_id: str) -> bytes:
        asked.append(device_id)
        return key

    data = bytes.fromhex(vector["frame_hex"])
    direction = DIRECTIONS[vector["direction"]]
    frame = verify_frame(vector["topic"], data, key_for, vector["now_ms"], direction=direction)
    assert asked == [fields["device_id"]]
    assert frame.direction is direction
    assert {
        "kind": frame.kind.topic_name,
        "kind_code": frame.kind.value,
        "device_id": frame.device_id,
        "timestamp_ms": frame.timestamp_ms,
        "nonce_hex": frame.nonce.hex(),
        "seq": frame.seq,
        "payload_hex": frame.payload.hex(),
    } == fields
    assert frame.tag.hex() == vector["tag_hex"]
    assert frame.signed + frame.tag == data


@by_name("invalid")
def test_verify_rejects_invalid_frame(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["device_key_hex"])
    with pytest.raises(ProtocolError) as caught:
        verify_frame(
            vector["topic"],
            bytes.fromhex(vector["frame_hex"]),
            lambda _: key,
            vector["now_ms"],
            direction=DIRECTIONS[vector["direction"]],
        )
    assert caught.value.reason.value == vector["reason"], caught.value.detail


class StepClock:
    """The gate's and the nonce store's clock, moved by each step."""

    def __init__(self) -> None:
        self.now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


def rejections(metrics: HubMetrics) -> dict[str, float]:
    counts: dict[str, float] = {}
    for reason in RejectReason:
        value = metrics.registry.get_sample_value(
            "teddy_hub_frames_rejected_total", {"reason": reason.value}
        )
        counts[reason.value] = value or 0.0
    return counts


@by_name("stateful")
async def test_stateful_scenario_through_the_gate(vector: dict[str, Any]) -> None:
    clock = StepClock()
    metrics = HubMetrics()
    source = InMemoryRevocations()
    revocations = RevocationList(source, metrics)
    gate = Gate(
        DeviceKeyring(vector["fleet_secret"].encode("utf-8")),
        revocations,
        MemoryNonceStore(clock_ms=clock),
        metrics,
        clock_ms=clock,
    )
    for number, step in enumerate(vector["steps"]):
        clock.now_ms = step["now_ms"]
        for device_id in await source.revoked_device_ids():
            source.restore(device_id)
        for device_id in step["revoked"]:
            source.revoke(device_id)
        await revocations.refresh()
        before = rejections(metrics)

        frame = gate.screen(step["topic"], bytes.fromhex(step["frame_hex"]), gate.now_ms())
        if frame is not None:
            await gate.admit([frame])

        after = rejections(metrics)
        changed = {reason: after[reason] - before[reason] for reason in after}
        outcome = [reason for reason, delta in changed.items() if delta]
        expected = [] if step["expect"] == "accepted" else [step["expect"]]
        assert outcome == expected, f"step {number}"
        assert sum(changed.values()) == len(expected), f"step {number}"
        assert (frame is not None) == (step["expect"] in ("accepted", "replay")), f"step {number}"
