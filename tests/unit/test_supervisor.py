"""What ``teddyhub up`` hands each child."""

from __future__ import annotations

from pydantic import SecretStr

from hub.protocol.keys import derive_connect_root
from hub.settings import Settings
from hub.supervisor import broker_env


def test_the_broker_child_gets_the_connect_root_and_no_other_secret(settings: Settings) -> None:
    settings = settings.model_copy(update={"openai_api_key": SecretStr("sk-test")})
    env = {
        "ESP32_SHARED_SECRET": "fleet",
        "JWT_SECRET_KEY": "jwt",
        "OPENAI_API_KEY": "sk-test",
        "DATABASE_URL": "postgresql://u:p@h/db",
        "REDIS_URL": "redis://:p@h/0",
        "TEDDY_DATA_DIR": "/data",
        "PATH": "/usr/bin",
    }
    child = broker_env(env, settings)
    assert child == {
        "TEDDY_DATA_DIR": "/data",
        "PATH": "/usr/bin",
        "TEDDY_BROKER_CONNECT_ROOT": derive_connect_root(settings.fleet_secret()).hex(),
    }
