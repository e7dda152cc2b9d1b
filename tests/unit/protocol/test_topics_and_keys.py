"""Topics, device ids and key derivation."""

from __future__ import annotations

import pytest

from hub.errors import ProtocolError, RejectReason
from hub.protocol import (
    DeviceKeyring,
    Direction,
    Kind,
    derive_device_key,
    parse_topic,
    uplink_filter,
    uplink_topic,
    validate_device_id,
)
from hub.protocol.topics import downlink_filter, validate_topic_root


@pytest.mark.parametrize("device_id", ["toy-0001", "abc", "a_b-c", "0" * 32, "esp32-a1b2c3d4e5f6"])
def test_safe_device_ids_pass(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id


@pytest.mark.parametrize(
    "device_id",
    [
        "",
        "ab",
        "a" * 33,
        "toy+1",
        "toy#1",
        "toy/1",
        "Toy-1",
        "-toy",
        "_toy",
        "toy 1",
        "toÿ1",
        "toy\x00",
        "+",
        "#",
    ],
)
def test_unsafe_device_ids_are_malformed(device_id: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_device_id(device_id)
    assert caught.value.reason is RejectReason.MALFORMED


def test_topic_round_trip() -> None:
    parts = parse_topic(uplink_topic("teddy", "toy-0001", Kind.LISTEN_END))
    assert (parts.root, parts.device_id, parts.direction, parts.kind) == (
        "teddy",
        "toy-0001",
        Direction.UP,
        Kind.LISTEN_END,
    )


@pytest.mark.parametrize(
    "topic",
    [
        "teddy/v1/toy-0001/up",
        "teddy/v2/toy-0001/up/ping",
        "teddy/v1/toy-0001/sideways/ping",
        "teddy/v1/toy-0001/up/nonsense",
        "teddy/v1/+/up/ping",
        "teddy/v1/toy-0001/up/ping/extra",
        "",
        "////",
    ],
)
def test_bad_topics_are_malformed(topic: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_topic(topic)
    assert caught.value.reason is RejectReason.MALFORMED


def test_filters() -> None:
    assert uplink_filter("teddy") == "teddy/v1/+/up/+"
    assert uplink_filter("teddy", "hubs") == "$share/hubs/teddy/v1/+/up/+"
    assert downlink_filter("teddy", "toy-0001") == "teddy/v1/toy-0001/down/+"


@pytest.mark.parametrize("root", ["", "a/b", "+", "#", "A", "x" * 33])
def test_bad_topic_roots_are_refused(root: str) -> None:
    with pytest.raises(ValueError, match="topic root"):
        validate_topic_root(root)


def test_kinds_know_their_direction() -> None:
    assert {kind.direction for kind in Kind if kind.value < 0x80} == {Direction.UP}
    assert {kind.direction for kind in Kind if kind.value >= 0x80} == {Direction.DOWN}


def test_each_device_gets_its_own_key() -> None:
    secret = b"fleet-secret-for-key-tests-0123456789"
    keys = {derive_device_key(secret, f"toy-{n:04d}") for n in range(200)}
    assert len(keys) == 200
    assert all(len(key) == 32 for key in keys)
    assert derive_device_key(secret, "toy-0001") != derive_device_key(secret + b"x", "toy-0001")


def test_keyring_caches_and_stays_bounded() -> None:
    secret = b"fleet-secret-for-key-tests-0123456789"
    keyring = DeviceKeyring(secret, capacity=2)
    first = keyring.key_for("toy-0001")
    assert keyring.key_for("toy-0001") is first
    keyring.key_for("toy-0002")
    keyring.key_for("toy-0003")  # evicts toy-0001, the least recently used
    again = keyring.key_for("toy-0001")
    assert again == first
    assert again is not first
