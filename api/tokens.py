"""Access tokens (JWT, HS256) and refresh tokens (opaque, stored hashed, rotated).

Pure functions over strings and a ``now`` argument: the issuer, audience, secret and lifetimes
are parameters, so the app wires them from settings and the tests pass their own.

Access tokens are short-lived JWTs carrying ``exp``, ``iat``, ``nbf``, ``iss``, ``aud``,
``sub`` (the parent's id), ``jti`` and ``role``; every one is required on the way in. The
algorithm is pinned to HS256, so ``alg: none``, RS256/HS512 tokens and "algorithm confusion"
(an HS256 token keyed with someone's public key) are all refused. Every rejection is an
:class:`InvalidTokenError` with a stable :class:`TokenRejectReason`; PyJWT's exceptions never
leave this module.

Refresh tokens are 256 random bits; only their SHA-256 is stored. :func:`decide_refresh` is the
rotation policy as data in, decision out (see its docstring); the route applies the decision in
one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Final, Protocol

import jwt
from pydantic import SecretStr

from hub.db.models import ParentRole
from hub.errors import ConfigError, TeddyError
from hub.settings import MIN_SECRET_LENGTH

ALGORITHM: Final = "HS256"
ACCESS_TOKEN_LIFETIME: Final = timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME: Final = timedelta(days=30)
# Clocks of two API replicas may differ by a few seconds; more than this is a broken host.
DEFAULT_LEEWAY: Final = timedelta(seconds=30)
REQUIRED_CLAIMS: Final = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "role")
# Ours are about 300 bytes; refusing anything large bounds the work an attacker can cause.
MAX_TOKEN_LENGTH: Final = 4096
REFRESH_TOKEN_BYTES: Final = 32


class TokenRejectReason(StrEnum):
    """Why an access token was refused; the values are metric labels and log fields."""

    MALFORMED = "malformed"
    BAD_ALGORITHM = "bad_algorithm"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BAD_ISSUER = "bad_issuer"
    BAD_AUDIENCE = "bad_audience"
    MISSING_CLAIM = "missing_claim"
    BAD_CLAIM = "bad_claim"


class InvalidTokenError(TeddyError):
    """An access token that must not be accepted; the API answers 401 for every reason."""

    code: ClassVar[str] = "invalid_token"

    def __init__(self, reason: TokenRejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The checked content of an access token."""

    subject: uuid.UUID
    role: ParentRole
    token_id: uuid.UUID
    issuer: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime


def _key(secret: SecretStr | str | bytes) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_LENGTH:
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
        raise ConfigError(f"JWT_SECRET_KEY must be at least {MIN_SECRET_LENGTH} bytes")
    return key


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime; pass a timezone-aware one (UTC)")
    return now


def issue_access_token(
    subject: uuid.UUID,
    role: ParentRole,
    *,
    secret: SecretStr | str | bytes,
    issuer: str,
    audience: str,
    lifetime: timedelta = ACCESS_TOKEN_LIFETIME,
    now: datetime | None = None,
) -> str:
    """A signed HS256 access token for ``subject`` with a fresh random ``jti``.

    Raises:
        ConfigError: when ``secret`` is shorter than 32 bytes.
        ValueError: when ``now`` is naive or ``lifetime`` is not positive.
    """
    if lifetime <= timedelta(0):
        raise ValueError("lifetime must be positive")
    issued = int(_aware(now).timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": str(subject),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": str(uuid.uuid4()),
        "role": role.value,
    }
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def _reason_for(error: jwt.PyJWTError) -> TokenRejectReason:
    # Order matters: InvalidSignatureError is a DecodeError, the others are InvalidTokenErrors.
    mapping: tuple[tuple[type[jwt.PyJWTError], TokenRejectReason], ...] = (
        (jwt.InvalidSignatureError, TokenRejectReason.BAD_SIGNATURE),
        (jwt.InvalidAlgorithmError, TokenRejectReason.BAD_ALGORITHM),
        (jwt.MissingRequiredClaimError, TokenRejectReason.MISSING_CLAIM),
        (jwt.InvalidIssuerError, TokenRejectReason.BAD_ISSUER),
        (jwt.InvalidAudienceError, TokenRejectReason.BAD_AUDIENCE),
        (jwt.exceptions.InvalidSubjectError, TokenRejectReason.BAD_CLAIM),
        (jwt.exceptions.InvalidJTIError, TokenRejectReason.BAD_CLAIM),
    )
    for kind, reason in mapping:
        if isinstance(error, kind):
            return reason
    return TokenRejectReason.MALFORMED


def _timestamp(claims: dict[str, Any], name: str) -> datetime:
    value = claims[name]
    # bool is an int in Python; a JSON `true` is no date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(TokenRejectReason.BAD_CLAIM, f"{name} is not a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidTokenError(TokenRejectReason.BAD_CLAIM, f"{name} is out of range") from None


def _uuid(claims: dict[str, Any], name: str) -> uuid.UUID:
    try:
        return uuid.UUID(claims[name])
    except (ValueError, TypeError, AttributeError):
        raise InvalidTokenError(TokenRejectReason.BAD_CLAIM, f"{name} is not a UUID") from None


def decode_access_token(
    token: str,
    *,
    secret: SecretStr | str | bytes,
    issuer: str,
    audience: str,
    now: datetime | None = None,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> AccessClaims:
    """Check an access token completely and return its claims.

    The signature, algorithm (HS256 only), issuer, audience and the presence of every claim in
    :data:`REQUIRED_CLAIMS` are checked by PyJWT; the times are checked here against ``now``
    (PyJWT only knows the wall clock), allowing ``leeway`` either way: refused when
    ``now >= exp + leeway``, when ``nbf > now + leeway`` or when ``iat > now + leeway``.

    Whether the token was issued before the parent's last password change is the caller's
    question (``issued_at`` is whole seconds, so compare against the change time floored).

    Raises:
        InvalidTokenError: for any token that must not be accepted, with its reason.
        ConfigError: when ``secret`` is shorter than 32 bytes.
        ValueError: when ``now`` is naive.
    """
    key = _key(secret)
    moment = _aware(now)
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(TokenRejectReason.MALFORMED, "token too long")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_signature": True,
                "verify_iss": True,
                "verify_aud": True,
                "strict_aud": True,
                "verify_sub": True,
                "verify_jti": True,
                # Checked below against `now`, which PyJWT cannot take.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as error:
        raise InvalidTokenError(_reason_for(error), str(error)) from None

    issued_at = _timestamp(claims, "iat")
    not_before = _timestamp(claims, "nbf")
    expires_at = _timestamp(claims, "exp")
    if moment >= expires_at + leeway:
        raise InvalidTokenError(TokenRejectReason.EXPIRED, "the token has expired")
    if not_before > moment + leeway:
        raise InvalidTokenError(TokenRejectReason.NOT_YET_VALID, "the token is not valid yet")
    if issued_at > moment + leeway:
        raise InvalidTokenError(TokenRejectReason.NOT_YET_VALID, "the token is issued later")

    try:
        role = ParentRole(claims["role"])
    except ValueError:
        raise InvalidTokenError(TokenRejectReason.BAD_CLAIM, "unknown role") from None
    return AccessClaims(
        subject=_uuid(claims, "sub"),
        role=role,
        token_id=_uuid(claims, "jti"),
        issuer=claims["iss"],
        issued_at=issued_at,
        not_before=not_before,
        expires_at=expires_at,
    )


# Refresh tokens


def hash_refresh_token(token: str) -> str:
    """The SHA-256 (hex) under which a refresh token is stored and looked up.

    A plain hash suffices: the token is 256 random bits, so there is nothing to guess, and a
    deterministic hash is what a unique index can find.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and its hash: give the token to the client, store only the hash."""
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, hash_refresh_token(token)


class RefreshTokenState(Protocol):
    """What the policy reads of a stored refresh token (``hub.db.models.RefreshToken`` fits)."""

    @property
    def expires_at(self) -> datetime: ...

    @property
    def used_at(self) -> datetime | None: ...

    @property
    def revoked_at(self) -> datetime | None: ...


class RefreshAction(StrEnum):
    """What the refresh route must do, in one transaction."""

    ROTATE = "rotate"  # set used_at = now on this row; insert a new token in the same family
    REVOKE_FAMILY = "revoke_family"  # set revoked_at = now on every row of the family; 401
    REFUSE = "refuse"  # change nothing; 401


class RefreshOutcome(StrEnum):
    """Why, as a stable log field and metric label."""

    VALID = "valid"
    UNKNOWN = "unknown"
    REUSED = "reused"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class RefreshDecision:
    """The policy's answer; ``new_expires_at`` is set only when the action is ``ROTATE``."""

    action: RefreshAction
    outcome: RefreshOutcome
    new_expires_at: datetime | None = None


def decide_refresh(
    state: RefreshTokenState | None,
    now: datetime,
    *,
    lifetime: timedelta = REFRESH_TOKEN_LIFETIME,
) -> RefreshDecision:
    """The rotation policy for one presented refresh token (``None``: no row has its hash).

    In order: unknown → refuse; revoked → refuse (its family is already ended); already used →
    reuse detected, revoke the whole family (a used token comes back only if it was copied,
    and we cannot tell the thief from the owner, so both lose the session; this holds even
    when the used token has since expired); expired → refuse; otherwise rotate, the new token
    living ``lifetime`` from ``now``.

    The route must read the row with ``SELECT ... FOR UPDATE`` (or mark it used with
    ``UPDATE ... WHERE used_at IS NULL`` and check the row count) in the same transaction that
    applies the decision, or two concurrent refreshes could both rotate.

    Raises:
        ValueError: when ``now`` is naive.
    """
    moment = _aware(now)
    if state is None:
        return RefreshDecision(RefreshAction.REFUSE, RefreshOutcome.UNKNOWN)
    if state.revoked_at is not None:
        return RefreshDecision(RefreshAction.REFUSE, RefreshOutcome.REVOKED)
    if state.used_at is not None:
        return RefreshDecision(RefreshAction.REVOKE_FAMILY, RefreshOutcome.REUSED)
    if moment >= state.expires_at:
        return RefreshDecision(RefreshAction.REFUSE, RefreshOutcome.EXPIRED)
    return RefreshDecision(RefreshAction.ROTATE, RefreshOutcome.VALID, moment + lifetime)
