"""Passwords, access tokens and refresh tokens (api.security, api.tokens), without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.low_level import Type
from argon2.profiles import CHEAPEST
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from api.security import (
    COMMON_PASSWORDS,
    DEFAULT_HASHER,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordProblem,
    WeakPasswordError,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_against_dummy,
    verify_password,
)
from api.tokens import (
    ACCESS_TOKEN_LIFETIME,
    REFRESH_TOKEN_LIFETIME,
    REQUIRED_CLAIMS,
    AccessClaims,
    InvalidTokenError,
    RefreshAction,
    RefreshOutcome,
    TokenRejectReason,
    decide_refresh,
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from hub.db.models import ParentRole, RefreshToken
from hub.errors import ConfigError, TeddyError

CHEAP = PasswordHasher.from_parameters(CHEAPEST)
SECRET = "s" * 24 + "-jwt-test-secret-0123456789"
ISSUER = "https://api.teddy.test"
AUDIENCE = "teddy-parent-app"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SUBJECT = uuid.UUID("6f1c1f0e-4d0a-4c54-9a8e-3f4c0b2b8b11")
EMAIL = "alice.smith@example.com"
GOOD_PASSWORD = "correct horse battery staple"
NO_LEEWAY = timedelta(0)


# Passwords: hashing


def test_default_hasher_is_argon2id_rfc9106_low_memory() -> None:
    assert DEFAULT_HASHER.type is Type.ID
    assert (DEFAULT_HASHER.time_cost, DEFAULT_HASHER.memory_cost) == (3, 64 * 1024)
    assert (DEFAULT_HASHER.parallelism, DEFAULT_HASHER.salt_len) == (4, 16)


def test_default_hash_is_an_argon2id_phc_string_with_the_stated_parameters() -> None:
    stored = hash_password(GOOD_PASSWORD)  # the one test that pays for the real parameters
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(stored, GOOD_PASSWORD)
    assert not needs_rehash(stored)


def test_hash_round_trip_and_wrong_password() -> None:
    stored = hash_password(GOOD_PASSWORD, hasher=CHEAP)
    assert GOOD_PASSWORD not in stored
    assert verify_password(stored, GOOD_PASSWORD, hasher=CHEAP) is True
    assert verify_password(stored, GOOD_PASSWORD + "!", hasher=CHEAP) is False
    assert verify_password(stored, "", hasher=CHEAP) is False


def test_hashes_are_salted() -> None:
    assert hash_password(GOOD_PASSWORD, hasher=CHEAP) != hash_password(GOOD_PASSWORD, hasher=CHEAP)


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken"])
def test_an_unreadable_stored_hash_verifies_false(stored: str) -> None:
    assert verify_password(stored, GOOD_PASSWORD, hasher=CHEAP) is False


def test_needs_rehash_when_the_parameters_changed() -> None:
    stored = hash_password(GOOD_PASSWORD, hasher=CHEAP)
    assert not needs_rehash(stored, hasher=CHEAP)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1, hash_len=16)
    assert needs_rehash(stored, hasher=stronger)


def test_passwords_are_nfkc_normalised_before_hashing() -> None:
    composed = "caf\u00e9 au lait s'il vous pla\u00eet"
    decomposed = "cafe\u0301 au lait s'il vous plai\u0302t"
    stored = hash_password(composed, hasher=CHEAP)
    assert verify_password(stored, decomposed, hasher=CHEAP)


class CountingHasher(PasswordHasher):
    """The cheap parameters, counting calls, to show what the dummy verification spends."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
        self.hashes = 0
        self.verifies: list[str] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
        self.verifies.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


def test_dummy_verification_costs_one_real_verification_and_answers_false() -> None:
    hasher = CountingHasher()
    assert verify_against_dummy(GOOD_PASSWORD, hasher=hasher) is False
    assert verify_against_dummy("anything else at all", hasher=hasher) is False
    # A real Argon2 verification each time, against a hash made with the hasher's parameters.
    assert len(hasher.verifies) == 2
    dummy = extract_parameters(hasher.verifies[0])
    real = extract_parameters(hash_password(GOOD_PASSWORD, hasher=hasher))
    assert dummy == real
    # The dummy hash is computed once per hasher, not per login.
    assert hasher.hashes == 2  # the dummy and the one real hash above


# Passwords: strength


def test_a_good_password_passes() -> None:
    check_password_strength(GOOD_PASSWORD, EMAIL)


def test_length_boundary() -> None:
    check_password_strength("x7#kq2mv9wlp", EMAIL)  # exactly 12
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength("x7#kq2mv9wl", EMAIL)  # 11
    assert caught.value.problems == (PasswordProblem.TOO_SHORT,)
    assert str(MIN_PASSWORD_LENGTH) in str(caught.value)


def test_length_counts_characters_after_normalisation() -> None:
    # Eleven "é" written as e + combining accent: 22 code points, 11 characters.
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength("e\u0301" * 11, EMAIL)
    assert caught.value.problems == (PasswordProblem.TOO_SHORT,)


def test_too_long() -> None:
    check_password_strength("ab9" * (MAX_PASSWORD_LENGTH // 3), EMAIL)
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength("z" * (MAX_PASSWORD_LENGTH + 1), EMAIL)
    assert caught.value.problems == (PasswordProblem.TOO_LONG,)


@pytest.mark.parametrize("password", ["password1234", "PassWord1234", " qwerty123456 "])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength(password, EMAIL)
    assert caught.value.problems == (PasswordProblem.COMMON,)


def test_the_built_in_list_is_about_a_hundred_lowercase_entries() -> None:
    assert len(COMMON_PASSWORDS) >= 100
    assert all(entry == entry.casefold().strip() and entry for entry in COMMON_PASSWORDS)
    assert {"123456", "password", "qwerty", "iloveyou"} <= COMMON_PASSWORDS


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength("password", "password@example.com")
    error = caught.value
    assert error.problems == (
        PasswordProblem.TOO_SHORT,
        PasswordProblem.COMMON,
        PasswordProblem.CONTAINS_EMAIL,
    )
    assert isinstance(error, TeddyError)
    assert error.code == "weak_password"
    message = str(error)
    assert "at least 12 characters" in message
    assert "most commonly used" in message
    assert "e-mail" in message


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("my name is alice.smith ok", EMAIL),
        ("My Name Is ALICE.SMITH ok", EMAIL),
        ("teddy-for-alice-and-bob", "alice+teddy@example.com"),
        ("teddy-alice+teddy-bob", "alice+teddy@example.com"),
        ("it is bob the builder", "Bob@Example.com"),
    ],
)
def test_the_email_local_part_is_refused(password: str, email: str) -> None:
    with pytest.raises(WeakPasswordError) as caught:
        check_password_strength(password, email)
    assert caught.value.problems == (PasswordProblem.CONTAINS_EMAIL,)


def test_a_very_short_local_part_is_not_checked() -> None:
    check_password_strength("algebra is lovely", "al@example.com")


def test_other_parts_of_the_email_are_allowed() -> None:
    check_password_strength("example.com rocks today", EMAIL)


# Access tokens: issuing and the happy path


def issue(**overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": NOW,
    }
    arguments.update(overrides)
    return issue_access_token(SUBJECT, ParentRole.PARENT, **arguments)


def decode(token: str, **overrides: Any) -> AccessClaims:
    arguments: dict[str, Any] = {
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": NOW,
    }
    arguments.update(overrides)
    return decode_access_token(token, **arguments)


def rejection(token: str, **overrides: Any) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        decode(token, **overrides)
    error = caught.value
    # PyJWT's exceptions never leave the module, not even as the cause.
    assert not isinstance(error, jwt.PyJWTError)
    assert error.__cause__ is None
    assert error.__suppress_context__ or not isinstance(error.__context__, jwt.PyJWTError)
    return error


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def payload(**changes: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(SUBJECT),
        "iat": issued,
        "nbf": issued,
        "exp": issued + 900,
        "jti": str(uuid.uuid4()),
        "role": "parent",
    }
    for name, value in changes.items():
        if value is ...:
            del claims[name]
        else:
            claims[name] = value
    return claims


def hs256(claims: dict[str, Any], key: str | bytes = SECRET, header: Any = None) -> str:
    """An HS256 JWT assembled by hand, so that any header and any key can be used."""
    key_bytes = key.encode() if isinstance(key, str) else key
    signing_input = f"{segment(header or {'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}"
    signature = hmac.new(key_bytes, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_round_trip() -> None:
    token = issue_access_token(
        SUBJECT, ParentRole.ADMIN, secret=SECRET, issuer=ISSUER, audience=AUDIENCE, now=NOW
    )
    claims = decode(token)
    assert claims.subject == SUBJECT
    assert claims.role is ParentRole.ADMIN
    assert claims.issuer == ISSUER
    assert claims.issued_at == claims.not_before == NOW.replace(microsecond=0)
    assert claims.expires_at == NOW + ACCESS_TOKEN_LIFETIME
    assert claims.token_id.version == 4


def test_the_token_carries_every_claim_and_the_pinned_header() -> None:
    token = issue()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    body = jwt.decode(token, options={"verify_signature": False})
    assert set(body) == set(REQUIRED_CLAIMS)
    assert body["exp"] - body["iat"] == 15 * 60
    assert body["sub"] == str(SUBJECT)
    assert body["role"] == "parent"


def test_every_token_has_its_own_jti() -> None:
    assert decode(issue()).token_id != decode(issue()).token_id


def test_a_hand_made_hs256_token_is_accepted() -> None:
    assert decode(hs256(payload())).subject == SUBJECT


def test_a_secret_str_is_accepted() -> None:
    token = issue(secret=SecretStr(SECRET))
    assert decode(token, secret=SecretStr(SECRET)).subject == SUBJECT
    assert decode(token, secret=SECRET.encode()).subject == SUBJECT


def test_a_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        issue(secret="too-short")
    with pytest.raises(ConfigError):
        decode(issue(), secret="too-short")


def test_naive_times_and_empty_lifetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        issue(now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        decode(issue(), now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="lifetime"):
        issue(lifetime=timedelta(0))


def test_a_custom_lifetime() -> None:
    claims = decode(issue(lifetime=timedelta(minutes=5)))
    assert claims.expires_at - claims.issued_at == timedelta(minutes=5)


# Access tokens: the algorithm is pinned


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(alg: str) -> None:
    unsigned = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(payload())}."
    assert rejection(unsigned).reason is TokenRejectReason.BAD_ALGORITHM


def test_an_hs256_header_without_a_signature_is_refused() -> None:
    unsigned = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload())}."
    assert rejection(unsigned).reason is TokenRejectReason.BAD_SIGNATURE


def test_hs512_with_the_right_secret_is_refused() -> None:
    token = jwt.encode(payload(), SECRET + SECRET, algorithm="HS512")
    assert rejection(token, secret=SECRET + SECRET).reason is TokenRejectReason.BAD_ALGORITHM


def test_hs384_by_hand_is_refused() -> None:
    signing_input = f"{segment({'alg': 'HS384', 'typ': 'JWT'})}.{segment(payload())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha384).digest()
    token = f"{signing_input}.{b64(signature)}"
    assert rejection(token).reason is TokenRejectReason.BAD_ALGORITHM


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rs256_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(payload(), rsa_key, algorithm="RS256")
    assert rejection(token).reason is TokenRejectReason.BAD_ALGORITHM


def test_algorithm_confusion_with_a_public_key_as_hmac_secret_is_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    public_pem = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    # The classic attack: sign HS256 with the (public) verification key. PyJWT will not sign
    # with a PEM as an HMAC key, so the token is made by hand.
    forged = hs256(payload(role="admin"), key=public_pem)
    assert rejection(forged).reason is TokenRejectReason.BAD_SIGNATURE
    # Even a server misconfigured with that PEM as its secret would not use it as an HMAC key.
    error = rejection(forged, secret=public_pem)
    assert error.reason is TokenRejectReason.MALFORMED


# Access tokens: signatures


def test_a_tampered_signature_is_refused() -> None:
    header, body, signature = issue().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert rejection(f"{header}.{body}.{flipped}").reason is TokenRejectReason.BAD_SIGNATURE


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = issue().split(".")
    forged_body = segment(payload(role="admin"))
    assert rejection(f"{header}.{forged_body}.{signature}").reason is (
        TokenRejectReason.BAD_SIGNATURE
    )


def test_another_secret_is_refused() -> None:
    token = issue(secret="another-secret-that-is-long-enough-0123456789")
    assert rejection(token).reason is TokenRejectReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        f"{segment({'alg': 'HS256'})}.not-base64!.abc",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert rejection(token).reason is TokenRejectReason.MALFORMED


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{b64(b'[1, 2]')}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert rejection(f"{signing_input}.{b64(signature)}").reason is TokenRejectReason.MALFORMED


def test_an_oversized_token_is_refused_before_parsing() -> None:
    assert rejection(hs256(payload(pad="x" * 5000))).reason is TokenRejectReason.MALFORMED


# Access tokens: issuer, audience, claims


def test_a_wrong_issuer_is_refused() -> None:
    assert rejection(hs256(payload(iss="https://evil.test"))).reason is (
        TokenRejectReason.BAD_ISSUER
    )
    assert rejection(issue(), issuer="https://other.test").reason is TokenRejectReason.BAD_ISSUER


def test_a_wrong_audience_is_refused() -> None:
    assert rejection(hs256(payload(aud="another-app"))).reason is TokenRejectReason.BAD_AUDIENCE
    assert rejection(issue(), audience="another-app").reason is TokenRejectReason.BAD_AUDIENCE


def test_an_audience_list_is_refused() -> None:
    token = hs256(payload(aud=[AUDIENCE, "another-app"]))
    assert rejection(token).reason is TokenRejectReason.BAD_AUDIENCE


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_every_claim_is_required(claim: str) -> None:
    error = rejection(hs256(payload(**{claim: ...})))
    assert error.reason is TokenRejectReason.MISSING_CLAIM
    assert claim in error.detail


@pytest.mark.parametrize("claim", ["jti", "sub", "role", "exp"])
def test_a_null_claim_counts_as_missing(claim: str) -> None:
    assert rejection(hs256(payload(**{claim: None}))).reason is TokenRejectReason.MISSING_CLAIM


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "not-a-uuid"},
        {"sub": 42},
        {"jti": "not-a-uuid"},
        {"jti": 7},
        {"role": "superuser"},
        {"exp": "tomorrow"},
        {"exp": True},
        {"nbf": "now"},
        {"iat": [1]},
        {"exp": 10**20},
    ],
)
def test_malformed_claims_are_refused(changes: dict[str, Any]) -> None:
    assert rejection(hs256(payload(**changes))).reason is TokenRejectReason.BAD_CLAIM


# Access tokens: clock edges


def test_expiry_edge_without_leeway() -> None:
    token = issue()
    expiry = NOW.replace(microsecond=0) + ACCESS_TOKEN_LIFETIME
    assert decode(token, now=expiry - timedelta(microseconds=1), leeway=NO_LEEWAY)
    assert rejection(token, now=expiry, leeway=NO_LEEWAY).reason is TokenRejectReason.EXPIRED


def test_expiry_edge_with_the_default_leeway() -> None:
    token = issue()
    expiry = NOW.replace(microsecond=0) + ACCESS_TOKEN_LIFETIME
    assert decode(token, now=expiry + timedelta(seconds=29))
    assert rejection(token, now=expiry + timedelta(seconds=30)).reason is (
        TokenRejectReason.EXPIRED
    )


def test_not_before_edge() -> None:
    token = issue()
    start = NOW.replace(microsecond=0)
    assert decode(token, now=start, leeway=NO_LEEWAY)
    assert rejection(token, now=start - timedelta(seconds=1), leeway=NO_LEEWAY).reason is (
        TokenRejectReason.NOT_YET_VALID
    )
    assert decode(token, now=start - timedelta(seconds=30))
    assert rejection(token, now=start - timedelta(seconds=31)).reason is (
        TokenRejectReason.NOT_YET_VALID
    )


def test_a_token_issued_in_the_future_is_refused() -> None:
    later = int(NOW.timestamp()) + 3600
    token = hs256(payload(iat=later))  # nbf is now, only iat lies
    assert rejection(token).reason is TokenRejectReason.NOT_YET_VALID


def test_the_wall_clock_is_used_without_now() -> None:
    token = issue_access_token(
        SUBJECT, ParentRole.PARENT, secret=SECRET, issuer=ISSUER, audience=AUDIENCE
    )
    assert decode_access_token(token, secret=SECRET, issuer=ISSUER, audience=AUDIENCE)
    old = issue(now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(InvalidTokenError) as caught:
        decode_access_token(old, secret=SECRET, issuer=ISSUER, audience=AUDIENCE)
    assert caught.value.reason is TokenRejectReason.EXPIRED


def test_the_error_is_one_domain_type_with_a_stable_reason() -> None:
    error = rejection(issue(), now=NOW + timedelta(days=1))
    assert isinstance(error, TeddyError)
    assert error.code == "invalid_token"
    assert str(error).startswith("expired:")
    assert {reason.value for reason in TokenRejectReason} >= {"expired", "bad_algorithm"}


# Refresh tokens


def test_new_refresh_tokens_are_random_and_only_their_hash_is_kept() -> None:
    token, token_hash = new_refresh_token()
    other, other_hash = new_refresh_token()
    assert token != other
    assert token_hash != other_hash
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes, base64url
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash)
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert hash_refresh_token(token) == token_hash


def row(
    *,
    expires_at: datetime = NOW + timedelta(days=1),
    used_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> RefreshToken:
    # A transient model instance: the policy reads the stored row as it is.
    return RefreshToken(
        parent_id=SUBJECT,
        family_id=uuid.uuid4(),
        token_hash=hash_refresh_token("x"),
        expires_at=expires_at,
        used_at=used_at,
        revoked_at=revoked_at,
    )


def test_a_valid_token_rotates_in_its_family() -> None:
    decision = decide_refresh(row(), NOW)
    assert decision.action is RefreshAction.ROTATE
    assert decision.outcome is RefreshOutcome.VALID
    assert decision.new_expires_at == NOW + REFRESH_TOKEN_LIFETIME
    assert timedelta(days=30) == REFRESH_TOKEN_LIFETIME


def test_rotation_uses_the_given_lifetime() -> None:
    decision = decide_refresh(row(), NOW, lifetime=timedelta(days=7))
    assert decision.new_expires_at == NOW + timedelta(days=7)


def test_an_unknown_token_is_refused() -> None:
    decision = decide_refresh(None, NOW)
    assert (decision.action, decision.outcome) == (RefreshAction.REFUSE, RefreshOutcome.UNKNOWN)
    assert decision.new_expires_at is None


def test_reuse_revokes_the_family() -> None:
    decision = decide_refresh(row(used_at=NOW - timedelta(minutes=1)), NOW)
    assert (decision.action, decision.outcome) == (
        RefreshAction.REVOKE_FAMILY,
        RefreshOutcome.REUSED,
    )
    assert decision.new_expires_at is None


def test_reuse_of_an_expired_token_still_revokes_the_family() -> None:
    stale = row(expires_at=NOW - timedelta(days=1), used_at=NOW - timedelta(days=2))
    assert decide_refresh(stale, NOW).action is RefreshAction.REVOKE_FAMILY


def test_a_revoked_token_is_refused() -> None:
    decision = decide_refresh(row(revoked_at=NOW - timedelta(seconds=1)), NOW)
    assert (decision.action, decision.outcome) == (RefreshAction.REFUSE, RefreshOutcome.REVOKED)
    both = row(used_at=NOW - timedelta(hours=1), revoked_at=NOW - timedelta(minutes=1))
    assert decide_refresh(both, NOW).outcome is RefreshOutcome.REVOKED


def test_expiry_edge() -> None:
    assert decide_refresh(row(expires_at=NOW + timedelta(microseconds=1)), NOW).action is (
        RefreshAction.ROTATE
    )
    decision = decide_refresh(row(expires_at=NOW), NOW)
    assert (decision.action, decision.outcome) == (RefreshAction.REFUSE, RefreshOutcome.EXPIRED)


def test_the_policy_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="naive"):
        decide_refresh(row(), datetime(2026, 1, 1))
