"""hub.protocol's connect tokens and service logins against the shared vector file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.errors import ConnectRefused
from hub.protocol.keys import (
    CONNECT_KEY_INFO_PREFIX,
    CONNECT_ROOT_INFO,
    derive_connect_key,
    derive_connect_root,
    derive_device_key,
)
from hub.protocol.tokens import (
    MAX_TOKEN_LENGTH,
    TOKEN_FUTURE_SKEW_S,
    TOKEN_LIFETIME_S,
    TOKEN_REPLAY_TTL_S,
    make_connect_token,
    service_password,
    service_username,
    verify_connect_token,
    verify_service_login,
)

VECTOR_FILE = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "protocol-vectors.json"
CONNECT: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))["connect"]


def named(section: str) -> pytest.MarkDecorator:
    vectors = CONNECT[section]
    return pytest.mark.parametrize("vector", vectors, ids=[v["name"] for v in vectors])


def test_constants_match() -> None:
    constants = CONNECT["constants"]
    assert constants["connect_root_info"] == CONNECT_ROOT_INFO.decode()
    assert constants["connect_key_info_prefix"] == CONNECT_KEY_INFO_PREFIX.decode()
    assert constants["token_lifetime_s"] == TOKEN_LIFETIME_S
    assert constants["token_future_skew_s"] == TOKEN_FUTURE_SKEW_S
    assert constants["token_replay_ttl_s"] == TOKEN_REPLAY_TTL_S
    assert constants["max_token_length"] == MAX_TOKEN_LENGTH


@pytest.mark.parametrize("vector", CONNECT["roots"])
def test_connect_roots(vector: dict[str, Any]) -> None:
    root = derive_connect_root(vector["fleet_secret"].encode())
    assert root.hex() == vector["connect_root_hex"]


@pytest.mark.parametrize("vector", CONNECT["keys"], ids=lambda v: v["device_id"])
def test_connect_keys(vector: dict[str, Any]) -> None:
    fleet = vector["fleet_secret"].encode()
    key = derive_connect_key(derive_connect_root(fleet), vector["device_id"])
    assert key.hex() == vector["connect_key_hex"]
    assert key != derive_device_key(fleet, vector["device_id"]), "connect and frame keys differ"


@named("valid_tokens")
def test_valid_tokens(vector: dict[str, Any]) -> None:
    key = bytes.fromhex(vector["connect_key_hex"])
    token = make_connect_token(
        key, vector["device_id"], vector["timestamp_s"], bytes.fromhex(vector["nonce_hex"])
    )
    assert token == vector["token"]
    parsed = verify_connect_token(
        key, vector["device_id"], vector["client_id"], vector["token"], vector["now_s"]
    )
    assert parsed.timestamp_s == vector["timestamp_s"]
    assert parsed.nonce_hex == vector["nonce_hex"]


@named("invalid_tokens")
def test_invalid_tokens(vector: dict[str, Any]) -> None:
    with pytest.raises(ConnectRefused) as caught:
        verify_connect_token(
            bytes.fromhex(vector["connect_key_hex"]),
            vector["username"],
            vector["client_id"],
            vector["password"],
            vector["now_s"],
        )
    assert caught.value.reason.value == vector["reason"]


@pytest.mark.parametrize("vector", CONNECT["services"], ids=lambda v: v["name"])
def test_service_passwords(vector: dict[str, Any]) -> None:
    root = derive_connect_root(vector["fleet_secret"].encode())
    assert service_username(vector["name"]) == vector["username"]
    assert service_password(root, vector["name"]) == vector["password"]
    assert verify_service_login(root, vector["username"], vector["password"]) == vector["name"]


@pytest.mark.parametrize("vector", CONNECT["invalid_services"], ids=lambda v: v["username"])
def test_invalid_service_logins(vector: dict[str, Any]) -> None:
    root = derive_connect_root(CONNECT["services"][0]["fleet_secret"].encode())
    with pytest.raises(ConnectRefused) as caught:
        verify_service_login(root, vector["username"], vector["password"])
    assert caught.value.reason.value == vector["reason"]
