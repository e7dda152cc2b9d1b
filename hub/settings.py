"""One settings model for every process (hub, broker, API, CLI), read from the environment.

The earlier product's variable names are accepted as they are (``DATABASE_URL``, ``REDIS_URL``,
``JWT_SECRET_KEY``, ``ESP32_SHARED_SECRET``, ``OPENAI_API_KEY``); everything else starts with
``TEDDY_``. Build it once with :func:`load_settings` and pass it down.

In development, secrets that are not set are generated once and kept in
``TEDDY_DATA_DIR/dev-secrets.json`` (mode 0600), so a newcomer needs no key and the simulated
toy derives the same device keys as the hub. In production a missing, placeholder or short
secret stops the process with an error naming the variable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import ConfigError
from hub.mqtt import BrokerAddress
from hub.protocol.keys import derive_connect_root, derive_dev_transcript_key
from hub.protocol.tokens import service_password, service_username
from hub.protocol.topics import DEFAULT_TOPIC_ROOT, validate_topic_root

MIN_SECRET_LENGTH = 32
DEV_SECRETS_FILE = "dev-secrets.json"
_PLACEHOLDER_MARKERS = (
    "change",
    "placeholder",
    "example",
    "your-",
    "your_",
    "generate",
    "<",
    "xxx",
    "todo",
    "dummy",
    "insecure",
)
# The secrets the development store generates, by field name and environment variable.
_GENERATED_SECRETS = {
    "esp32_shared_secret": "ESP32_SHARED_SECRET",
    "jwt_secret_key": "JWT_SECRET_KEY",
}
TRANSCRIPT_KEY_SIZE = 32


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("teddyhub")


class Settings(BaseSettings):
    """Every setting of every Teddy Hub process; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="TEDDY_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(default_factory=_default_data_dir)

    # URLs may carry passwords: kept out of repr (and so out of logs and tracebacks).
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "TEDDY_DATABASE_URL"),
        repr=False,
    )
    db_pool_size: int = Field(default=20, ge=1)
    # The browser origins the parent app is served from. TEDDY_CORS_ORIGINS is a JSON list,
    # e.g. ["https://aiteddybear.com","https://www.aiteddybear.com"] (see .env.example); "*"
    # is refused at startup because the API allows credentials.
    cors_origins: list[str] = []
    # Per client IP (and per account where a route asks), for register, login, refresh, claim
    # and pairing codes; one limit in the `limits` notation ("60/minute", "10/second").
    rate_limit: str = "60/minute"
    # Read the client address from X-Forwarded-For (its last hop) only behind a proxy that
    # sets it; otherwise any client could pick its own rate-limit bucket.
    trust_proxy_headers: bool = False
    # Pairing-code attempts per account and per client network (IPv4 address, IPv6 /64) in a
    # window: the code space is small (six digits), so guessing is limited far below the
    # general rate limit.
    pair_code_guess_limit: str = "10/hour"
    pair_code_ttl_s: int = Field(default=600, ge=60, le=3600)
    jwt_issuer: str = "teddyhub"
    jwt_audience: str = "teddyhub-app"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TEDDY_REDIS_URL"), repr=False
    )
    jwt_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_SECRET_KEY", "TEDDY_JWT_SECRET_KEY")
    )
    esp32_shared_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ESP32_SHARED_SECRET", "TEDDY_ESP32_SHARED_SECRET"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "TEDDY_OPENAI_API_KEY")
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    broker: Literal["embedded", "external"] = "embedded"
    broker_bind: str = "127.0.0.1"
    mqtt_host: str = "127.0.0.1"
    # 1883 is left to a system broker (developers often run one); the embedded broker's plain
    # listener takes the next port so that `make run` serves beside it.
    mqtt_port: int = Field(default=1884, ge=1, le=65535)
    mqtts_port: int = Field(default=8883, ge=1, le=65535)
    # How the hub, the API and the simulated toy reach the broker: TLS to TEDDY_MQTTS_PORT
    # checked against TEDDY_TLS_CA_FILE, or (false) plain MQTT to TEDDY_MQTT_PORT.
    mqtt_tls: bool = True
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    topic_root: str = DEFAULT_TOPIC_ROOT

    # The broker's only key: set it (hex) where a broker must not hold the fleet secret;
    # otherwise it is derived from ESP32_SHARED_SECRET (development).
    broker_connect_root: SecretStr | None = None
    broker_allow_anonymous: bool = False
    broker_max_connections: int = Field(default=10_000, ge=1)
    broker_max_packet_size: int = Field(default=20_480, ge=1024)
    broker_max_queued_messages: int = Field(default=1_000, ge=1)
    broker_max_inflight_messages: int = Field(default=20, ge=1)
    revocation_file: Path | None = None

    # The `svc:` prefix is outside the device-id alphabet, so no toy can take this session over.
    hub_client_id: str = "svc:hub"
    hub_share_group: str | None = None
    hub_status_host: str = "127.0.0.1"
    hub_status_port: int = Field(default=8001, ge=1, le=65535)
    handler_timeout_s: float = Field(default=15.0, gt=0)
    device_concurrency: int = Field(default=4, ge=1, le=64)
    device_backlog: int = Field(default=64, ge=1)
    max_pending_messages: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=256, ge=1, le=4096)
    # Messages read from the broker and not yet verified; past this the hub stops reading its
    # socket and the broker holds the rest, so a long outage costs no memory and loses nothing.
    hub_inbox_limit: int = Field(default=1_024, ge=2)
    revocation_refresh_s: float = Field(default=2.0, gt=0, le=5.0)
    nonce_memory_capacity: int = Field(default=1_000_000, ge=1_000)
    redis_key_prefix: str = "teddy:"

    # What GET /api/v1/esp32/config tells toys. Broker URLs default to the TLS listener on
    # TEDDY_MQTT_HOST; set them to the public names toys resolve (JSON list of mqtts:// URLs).
    device_broker_urls: list[str] = []
    firmware_version: str | None = None
    firmware_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    firmware_url: str | None = None

    # Conversation. Providers: "offline" (local, the embedded default), "openai" (any
    # OpenAI-compatible server), or "auto": openai when OPENAI_API_KEY or OPENAI_BASE_URL is set.
    voice_provider: Literal["auto", "offline", "openai"] = "auto"
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "TEDDY_OPENAI_BASE_URL")
    )
    openai_chat_model: str = "gpt-4o-mini"
    openai_stt_model: str = "gpt-4o-mini-transcribe"
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "coral"
    openai_moderation_model: str | None = "omni-moderation-latest"
    # Each wait of a turn has its own bound, so a long question or a long story never fails
    # for its length. Cloud: one provider call's timeout (to the first token of a streamed
    # reply, and between its tokens) and retries (429, 5xx, timeouts); a transcription's
    # timeout grows with the audio like the offline one's.
    provider_timeout_s: float = Field(default=10.0, gt=0)
    provider_retries: int = Field(default=2, ge=0, le=10)
    moderation_timeout_s: float = Field(default=3.0, gt=0)
    # Speech to text: this, plus stt_timeout_per_audio_s for every second of audio. Offline,
    # the bound counts computing only, never the wait for a worker.
    stt_timeout_s: float = Field(default=10.0, gt=0)
    stt_timeout_per_audio_s: float = Field(default=2.0, ge=0)
    # Speech for one reply sentence.
    tts_sentence_timeout_s: float = Field(default=15.0, gt=0)
    # The whole turn: a cap for a stuck turn only, far above any turn the bounds above allow.
    turn_deadline_s: float = Field(default=300.0, gt=0)
    # Where the offline voice models come from: default, the packages' own files.
    offline_stt_model: str | None = None
    offline_tts_voice: Path | None = None
    # Offline speech jobs computed at once (each model spreads one job over several cores);
    # more wait in a queue that /metrics shows. Default: half the cores, at least one.
    offline_voice_workers: int | None = Field(default=None, ge=1, le=64)
    # Utterances: longest accepted, and how long an unfinished one may wait for its chunks.
    max_utterance_s: float = Field(default=15.0, gt=0, le=60)
    utterance_timeout_s: float = Field(default=4.0, gt=0)
    # Unfinished utterances one hub follows at once, per toy and in all: a toy opening
    # utterances it never ends is refused past these, and costs no more memory.
    max_open_utterances_per_device: int = Field(default=4, ge=1, le=64)
    max_open_utterances: int = Field(default=1_000, ge=1)
    reply_max_chars: int = Field(default=400, ge=40, le=4000)
    session_max_turns: int = Field(default=30, ge=1)
    context_turns: int = Field(default=6, ge=0, le=50)
    # Transcripts are encrypted with AES-256-GCM. A JSON list of base64 32-byte keys, oldest
    # first: the newest encrypts, every one decrypts (rotation). Generated in development.
    transcript_keys: list[SecretStr] = []
    retention_days: int = Field(default=30, ge=1)

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("topic_root")
    @classmethod
    def _check_topic_root(cls, value: str) -> str:
        return validate_topic_root(value)

    @property
    def is_production(self) -> bool:
        """True when every development convenience must be off."""
        return self.env == "production"

    @property
    def certs_dir(self) -> Path:
        """Where ``teddyhub certs`` writes the development CA and server certificate."""
        return self.data_dir / "certs"

    @property
    def ca_file(self) -> Path:
        """The CA bundle clients check the broker's certificate against."""
        return self.tls_ca_file or self.certs_dir / "ca.pem"

    @property
    def cert_file(self) -> Path:
        """The broker's certificate chain."""
        return self.tls_cert_file or self.certs_dir / "server.pem"

    @property
    def key_file(self) -> Path:
        """The broker's private key."""
        return self.tls_key_file or self.certs_dir / "server-key.pem"

    @property
    def revoked_devices_file(self) -> Path:
        """The revocation list brokers and hubs read (one device id a line)."""
        return self.revocation_file or self.data_dir / "revoked-devices.txt"

    def toy_broker_urls(self) -> list[str]:
        """The broker URLs toys are told to use (TLS only in production)."""
        if self.device_broker_urls:
            return list(self.device_broker_urls)
        return [f"mqtts://{self.mqtt_host}:{self.mqtts_port}"]

    def broker_listeners(self) -> list[tuple[int, str]]:
        """The embedded broker's ports, each with the setting that moves it (plain: dev only)."""
        ports = [(self.mqtts_port, "TEDDY_MQTTS_PORT")]
        if not self.is_production:
            ports.append((self.mqtt_port, "TEDDY_MQTT_PORT"))
        return ports

    def connect_root(self) -> bytes:
        """The key brokers check connect tokens with (docs/protocol.md, "Key hierarchy")."""
        if self.broker_connect_root is not None:
            root = bytes.fromhex(self.broker_connect_root.get_secret_value())
            if len(root) != 32:
                raise ConfigError("TEDDY_BROKER_CONNECT_ROOT must be 64 hex characters")
            return root
        return derive_connect_root(self.fleet_secret())

    def broker_address(
        self, *, username: str | None = None, password: str | None = None
    ) -> BrokerAddress:
        """Where the hub, the API and the simulated toy connect, and how."""
        if self.mqtt_tls:
            return BrokerAddress(self.mqtt_host, self.mqtts_port, username, password, self.ca_file)
        return BrokerAddress(self.mqtt_host, self.mqtt_port, username, password)

    def service_address(self, name: str) -> BrokerAddress:
        """The broker address logged in as service ``name`` (``hub`` or ``api``)."""
        return self.broker_address(
            username=service_username(name), password=service_password(self.connect_root(), name)
        )

    def transcript_key_list(self) -> list[bytes]:
        """The transcript keys, oldest first (the last encrypts).

        In development without ``TEDDY_TRANSCRIPT_KEYS``, one key derived from the fleet
        secret (production refuses to start without the setting).

        Raises:
            ConfigError: for a key that is not base64 of 32 bytes.
        """
        if not self.transcript_keys:
            if self.is_production:
                raise ConfigError("TEDDY_TRANSCRIPT_KEYS must be set in production")
            return [derive_dev_transcript_key(self.fleet_secret())]
        keys = []
        for position, key in enumerate(self.transcript_keys):
            try:
                raw = base64.b64decode(key.get_secret_value(), validate=True)
            except ValueError as error:
                raise ConfigError(f"TEDDY_TRANSCRIPT_KEYS[{position}] is not base64") from error
            if len(raw) != TRANSCRIPT_KEY_SIZE:
                raise ConfigError(
                    f"TEDDY_TRANSCRIPT_KEYS[{position}] must be {TRANSCRIPT_KEY_SIZE} bytes"
                )
            keys.append(raw)
        return keys

    def uses_openai(self) -> bool:
        """True when the OpenAI-compatible providers are configured for cloud-consented children."""
        if self.voice_provider == "auto":
            return self.openai_api_key is not None or self.openai_base_url is not None
        return self.voice_provider == "openai"

    def fleet_secret(self) -> bytes:
        """The fleet secret as HKDF input keying material.

        Raises:
            ConfigError: when no secret is configured (call :func:`load_settings` first).
        """
        if self.esp32_shared_secret is None:
            raise ConfigError("ESP32_SHARED_SECRET is not set")
        return self.esp32_shared_secret.get_secret_value().encode("utf-8")


def variable_name(field_name: str) -> str:
    """The environment variable that sets ``field_name`` (the seed's name where it has one)."""
    if field_name.isupper():  # pydantic reports aliased fields by their variable already
        return field_name
    field = Settings.model_fields.get(field_name)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        first = field.validation_alias.choices[0]
        return first if isinstance(first, str) else field_name
    return f"TEDDY_{field_name.upper()}"


def describe_settings_error(error: Exception) -> str:
    """One line for a bad setting, naming the variable rather than the field."""
    if isinstance(error, ValidationError):
        problems = []
        for item in error.errors():
            location = str(item["loc"][0]) if item["loc"] else ""
            problems.append(f"{variable_name(location)}: {item['msg']}")
        return "; ".join(problems)
    return str(error)


def load_settings(
    *, role: Literal["service", "broker"] = "service", **overrides: object
) -> Settings:
    """Read the environment, check it for the chosen mode and fill development secrets.

    ``role="broker"`` is a broker's least privilege: it needs the connect root and nothing
    else; in production it refuses to run with the fleet secret or any other service secret
    in its environment.

    Raises:
        ConfigError: in production, naming the first variable that is missing or unsafe.
    """
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if role == "broker":
        return _broker_settings(settings)
    if settings.is_production:
        check_production(settings)
        return settings
    return _with_development_secrets(settings)


def _broker_settings(settings: Settings) -> Settings:
    if settings.broker_connect_root is not None:
        settings.connect_root()  # validates its form
        if settings.is_production:
            for field_name, variable in {
                **_GENERATED_SECRETS,
                "openai_api_key": "OPENAI_API_KEY",
            }.items():
                if getattr(settings, field_name) is not None:
                    raise ConfigError(f"{variable} must not be given to a broker in production")
            if settings.tls_cert_file is None or settings.tls_key_file is None:
                raise ConfigError(
                    "TEDDY_TLS_CERT_FILE and TEDDY_TLS_KEY_FILE must be set in production"
                )
        return settings
    if settings.is_production:
        raise ConfigError(
            "TEDDY_BROKER_CONNECT_ROOT must be set for a broker in production "
            "(`teddyhub keys connect-root` prints it)"
        )
    return _with_development_secrets(settings)


def check_production(settings: Settings) -> None:
    """Refuse secrets that are missing, placeholders or shorter than 32 characters."""
    for field_name, variable in _GENERATED_SECRETS.items():
        value: SecretStr | None = getattr(settings, field_name)
        _check_secret(variable, None if value is None else value.get_secret_value())
    if settings.redis_url is None:
        raise ConfigError(
            "REDIS_URL must be set in production: replicas share the nonce store there"
        )
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL must be set in production")
    if settings.broker_allow_anonymous:
        raise ConfigError("TEDDY_BROKER_ALLOW_ANONYMOUS must not be set in production")
    if not settings.mqtt_tls:
        raise ConfigError("TEDDY_MQTT_TLS must stay on in production")
    settings.transcript_key_list()  # present and well formed


def _check_secret(variable: str, value: str | None) -> None:
    if not value:
        raise ConfigError(f"{variable} must be set in production")
    lowered = value.lower()
    if any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        raise ConfigError(f"{variable} looks like a placeholder; generate a random secret")
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{variable} must be at least {MIN_SECRET_LENGTH} characters")


def _with_development_secrets(settings: Settings) -> Settings:
    missing = [name for name in _GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    stored = load_dev_secrets(settings.data_dir)
    return settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})


def load_dev_secrets(data_dir: Path) -> dict[str, str]:
    """Read the development secrets, creating them (owner-only) on first use.

    Creation publishes the file with a hard link, which fails if another process won the race;
    the loser then reads the winner's secrets, so every process of one run agrees.
    """
    path = data_dir / DEV_SECRETS_FILE
    try:
        return _read_dev_secrets(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    generated = {name: secrets.token_urlsafe(48) for name in _GENERATED_SECRETS}
    temporary = data_dir / f".{DEV_SECRETS_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(generated, handle)
        os.link(temporary, path)
    except FileExistsError:
        return _read_dev_secrets(path)
    finally:
        temporary.unlink(missing_ok=True)
    return generated


def _read_dev_secrets(path: Path) -> dict[str, str]:
    stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    missing = [name for name in _GENERATED_SECRETS if not stored.get(name)]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}; delete it to regenerate")
    return stored
