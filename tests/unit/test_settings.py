"""Settings: the seed's variable names, the project's own, production refusals, dev secrets."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.settings import DEV_SECRETS_FILE, Settings, load_dev_secrets, load_settings

STRONG = "k3Yq9v2LwX8pR4tZ7mN1bC6dF0gH5jS2uV9wE3rT"
ALL_VARIABLES = [
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET_KEY",
    "ESP32_SHARED_SECRET",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TEDDY_ENV",
    "TEDDY_DATA_DIR",
    "TEDDY_API_PORT",
    "TEDDY_MQTT_PORT",
    "TEDDY_MQTTS_PORT",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEDDY_DATA_DIR", str(tmp_path / "data"))


def production(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    values = {
        "TEDDY_ENV": "production",
        "ESP32_SHARED_SECRET": STRONG,
        "JWT_SECRET_KEY": STRONG[::-1],
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DATABASE_URL": "postgresql+asyncpg://teddy@127.0.0.1/teddy",
        "TEDDY_TRANSCRIPT_KEYS": json.dumps([base64.b64encode(bytes(range(32))).decode()]),
    } | overrides
    for name, value in values.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert settings.env == "development"
    assert settings.api_port == 8000
    assert settings.mqtts_port == 8883
    assert settings.mqtt_port != 1883, "1883 is left to a system broker"
    assert settings.topic_root == "teddy"


def test_seed_and_project_variable_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/1")
    monkeypatch.setenv("JWT_SECRET_KEY", "jwt")
    monkeypatch.setenv("ESP32_SHARED_SECRET", "fleet")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("TEDDY_API_PORT", "9000")
    monkeypatch.setenv("TEDDY_MQTT_PORT", "11883")
    monkeypatch.setenv("TEDDY_MQTTS_PORT", "18883")
    monkeypatch.setenv("TEDDY_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.redis_url == "redis://h:6379/1"
    assert settings.jwt_secret_key is not None
    assert settings.jwt_secret_key.get_secret_value() == "jwt"
    assert settings.fleet_secret() == b"fleet"
    assert settings.openai_api_key is not None
    assert (settings.api_port, settings.mqtt_port, settings.mqtts_port) == (9000, 11883, 18883)
    assert settings.data_dir == tmp_path / "elsewhere"


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESP32_SHARED_SECRET", STRONG)
    assert STRONG not in repr(Settings())
    assert STRONG not in str(Settings().model_dump())


def test_production_accepts_strong_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
    assert load_settings().is_production


@pytest.mark.parametrize(
    "variable",
    ["ESP32_SHARED_SECRET", "JWT_SECRET_KEY", "REDIS_URL", "DATABASE_URL", "TEDDY_TRANSCRIPT_KEYS"],
)
def test_production_refuses_missing(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    production(monkeypatch, **{variable: ""})
    with pytest.raises(ConfigError, match=variable):
        load_settings()


@pytest.mark.parametrize(
    "value",
    [
        "<generate-secure-key>",
        "<your-esp32-secret>",
        "changeme-changeme-changeme-changeme",
        "placeholder-placeholder-placeholder-1",
        "short-but-random-Q8v2",
    ],
)
@pytest.mark.parametrize("variable", ["ESP32_SHARED_SECRET", "JWT_SECRET_KEY"])
def test_production_refuses_weak_secrets(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    production(monkeypatch, **{variable: value})
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_development_generates_secrets_once(tmp_path: Path) -> None:
    first = load_settings()
    second = load_settings()
    assert first.fleet_secret() == second.fleet_secret()
    assert len(first.fleet_secret()) >= 32
    path = tmp_path / "data" / DEV_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.jwt_secret_key is not None
    assert first.jwt_secret_key.get_secret_value() != first.fleet_secret().decode()


def test_development_keeps_explicit_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESP32_SHARED_SECRET", STRONG)
    assert load_settings().fleet_secret() == STRONG.encode()


def test_a_damaged_secrets_file_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DEV_SECRETS_FILE).write_text('{"jwt_secret_key": "x"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="esp32_shared_secret"):
        load_dev_secrets(data)


def test_bad_topic_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEDDY_TOPIC_ROOT", "a/b")
    with pytest.raises(ValueError, match="topic root"):
        Settings()


def test_a_production_broker_needs_only_the_connect_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEDDY_ENV", "production")
    monkeypatch.setenv("TEDDY_BROKER_CONNECT_ROOT", "ab" * 32)
    monkeypatch.setenv("TEDDY_TLS_CERT_FILE", str(tmp_path / "server.pem"))
    monkeypatch.setenv("TEDDY_TLS_KEY_FILE", str(tmp_path / "server-key.pem"))
    settings = load_settings(role="broker")
    assert settings.connect_root() == bytes.fromhex("ab" * 32)
    assert settings.esp32_shared_secret is None


def test_a_production_broker_refuses_the_fleet_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEDDY_ENV", "production")
    monkeypatch.setenv("TEDDY_BROKER_CONNECT_ROOT", "ab" * 32)
    monkeypatch.setenv("ESP32_SHARED_SECRET", STRONG)
    with pytest.raises(ConfigError, match="ESP32_SHARED_SECRET must not be given to a broker"):
        load_settings(role="broker")


def test_a_production_broker_without_a_connect_root_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEDDY_ENV", "production")
    with pytest.raises(ConfigError, match="TEDDY_BROKER_CONNECT_ROOT"):
        load_settings(role="broker")


@pytest.mark.parametrize("keys", ['["bm90IDMyIGJ5dGVz"]', '["%%%"]'], ids=["short", "not-base64"])
def test_production_refuses_malformed_transcript_keys(
    monkeypatch: pytest.MonkeyPatch, keys: str
) -> None:
    production(monkeypatch, TEDDY_TRANSCRIPT_KEYS=keys)
    with pytest.raises(ConfigError, match="TEDDY_TRANSCRIPT_KEYS"):
        load_settings()


def test_development_derives_a_transcript_key() -> None:
    settings = load_settings()
    (key,) = settings.transcript_key_list()
    assert len(key) == 32
    assert load_settings().transcript_key_list() == [key]  # stable across processes
