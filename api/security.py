"""Parent passwords: Argon2id hashing, constant-time verification and a minimum strength.

Pure functions over strings (no I/O, no settings), so the account routes wire them and the
unit tests exercise them directly. Argon2 is deliberately slow (tens of milliseconds and
64 MiB a call with the default parameters): a route calls these through
``asyncio.to_thread``.

Passwords are NFKC-normalised before they are checked or hashed (NIST SP 800-63B 5.1.1.2), so
the same password typed on two keyboards that compose characters differently still matches.

Raises :class:`WeakPasswordError` (a :class:`~hub.errors.TeddyError`) from
:func:`check_password_strength`; the hashing functions raise nothing of their own.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import ClassVar, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from hub.errors import TeddyError

# RFC 9106 section 4, second recommended option ("low memory"): Argon2id, t=3, m=64 MiB,
# p=4, 16-byte salt, 32-byte tag. It is argon2-cffi's own default and well above the OWASP
# Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1); the first RFC option (2 GiB a
# hash) is out of reach for a small server answering many logins at once. It costs roughly
# 50-250 ms of one core per hash, which bounds offline guessing without making login slow.
# Raising these later is safe: `needs_rehash` flags old hashes and login rehashes them.
DEFAULT_HASHER: Final = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)

MIN_PASSWORD_LENGTH: Final = 12
# Generous for passphrases (NIST asks for at least 64), small enough that a request cannot make
# the server hash megabytes.
MAX_PASSWORD_LENGTH: Final = 256
# A local part this short ("al@...") would forbid too many ordinary passwords to be useful.
MIN_LOCAL_PART_CHECKED: Final = 3

# The most common leaked passwords (the top of the public "most common passwords" lists),
# lower-case. Most are already shorter than the minimum length; the list is checked anyway, so
# the rule holds if the length rule ever changes, and it carries the long ones too.
_COMMON_PASSWORDS_TEXT: Final = """
    123456 password 123456789 12345678 12345 qwerty 1234567 111111 1234567890 123123 abc123 1234
    password1 iloveyou 1q2w3e4r 000000 qwerty123 zaq12wsx dragon sunshine princess letmein
    654321 monkey 27653 1qaz2wsx 123321 qwertyuiop superman asdfghjkl football baseball welcome
    admin master shadow michael login starwars trustno1 passw0rd hello freedom whatever qazwsx
    ninja mustang access flower jesus charlie hottie loveme azerty solo batman 666666 121212
    donald 7777777 bailey password123 welcome1 admin123 qwerty1 aa123456 123qwe 1q2w3e 555555
    lovely 888888 123abc michelle jordan23 harley robert matthew daniel andrew joshua pepper
    ginger cookie summer computer internet google secret changeme test1234 teddybear
    qwertyuiop123 password1234 passwordpassword 123456789012 1234567890ab 1q2w3e4r5t6y
    qwerty123456 iloveyou1234 abcdefghijkl abc123abc123 qwertyqwerty asdfghjkl123 123456123456
    111111111111 000000000000 aaaaaaaaaaaa letmein12345 welcome12345 administrator passw0rd1234
    teddybear123
"""
COMMON_PASSWORDS: Final = frozenset(_COMMON_PASSWORDS_TEXT.split())


class PasswordProblem(StrEnum):
    """One way a new password falls short; the values are stable for clients and logs."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    COMMON = "common"
    CONTAINS_EMAIL = "contains_email"


_PROBLEM_TEXT: Final = {
    PasswordProblem.TOO_SHORT: f"it must be at least {MIN_PASSWORD_LENGTH} characters long",
    PasswordProblem.TOO_LONG: f"it must be at most {MAX_PASSWORD_LENGTH} characters long",
    PasswordProblem.COMMON: "it is one of the most commonly used passwords",
    PasswordProblem.CONTAINS_EMAIL: "it must not contain the name part of your e-mail address",
}


class WeakPasswordError(TeddyError):
    """A new password that breaks the strength rules; ``problems`` lists every broken rule."""

    code: ClassVar[str] = "weak_password"

    def __init__(self, problems: tuple[PasswordProblem, ...]) -> None:
        super().__init__(
            "The password is too weak: " + "; ".join(_PROBLEM_TEXT[p] for p in problems) + "."
        )
        self.problems = problems


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password_strength(password: str, email: str) -> None:
    """Check a password a parent chooses (registration, change) against the minimum strength.

    The rule, after NFKC normalisation, counting characters (code points): at least
    :data:`MIN_PASSWORD_LENGTH` and at most :data:`MAX_PASSWORD_LENGTH`; not one of
    :data:`COMMON_PASSWORDS` (ignoring case and surrounding spaces); and not containing the
    e-mail's local part (ignoring case, and also its part before a ``+tag``) when that is at
    least :data:`MIN_LOCAL_PART_CHECKED` characters. No character-class rules: NIST SP 800-63B
    advises against composition rules, which push people to ``Password1!``; length and a
    blocklist do more.

    Raises:
        WeakPasswordError: naming every rule the password breaks.
    """
    normalised = _normalise(password)
    folded = normalised.casefold()
    problems: list[PasswordProblem] = []
    if len(normalised) < MIN_PASSWORD_LENGTH:
        problems.append(PasswordProblem.TOO_SHORT)
    if len(normalised) > MAX_PASSWORD_LENGTH:
        problems.append(PasswordProblem.TOO_LONG)
    if folded.strip() in COMMON_PASSWORDS:
        problems.append(PasswordProblem.COMMON)
    local_part = _normalise(email).casefold().rpartition("@")[0]
    candidates = {local_part, local_part.partition("+")[0]}
    if any(len(part) >= MIN_LOCAL_PART_CHECKED and part in folded for part in candidates):
        problems.append(PasswordProblem.CONTAINS_EMAIL)
    if problems:
        raise WeakPasswordError(tuple(problems))


def hash_password(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """The PHC string (``$argon2id$v=19$m=...``) to store; salted, so never the same twice."""
    return hasher.hash(_normalise(password))


def verify_password(
    stored_hash: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    """Whether ``password`` matches ``stored_hash``; the comparison is the library's.

    A stored hash that cannot be parsed answers False rather than raising, so a damaged row
    locks its account instead of breaking login for everyone. After a True answer, call
    :func:`needs_rehash` and store a fresh hash if it says so.
    """
    try:
        return hasher.verify(stored_hash, _normalise(password))
    except (VerificationError, InvalidHashError):
        # VerifyMismatchError is a VerificationError: a wrong password is the common case.
        return False


def needs_rehash(stored_hash: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether ``stored_hash`` was made with other parameters than ``hasher``'s (rehash it).

    Raises:
        argon2.exceptions.InvalidHashError: never in practice: call it after a successful
            :func:`verify_password`, which has parsed the same hash.
    """
    return hasher.check_needs_rehash(stored_hash)


_dummy_hashes: dict[int, tuple[PasswordHasher, str]] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    # Keyed by identity and holding the hasher, so the id can never be reused by another one.
    cached = _dummy_hashes.get(id(hasher))
    if cached is None:
        cached = (hasher, hasher.hash("teddy-hub dummy password, never assigned"))
        _dummy_hashes[id(hasher)] = cached
    return cached[1]


def verify_against_dummy(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Spend the time of one verification and answer False: login for an unknown e-mail.

    The dummy hash uses ``hasher``'s own parameters, so an unknown address costs what a wrong
    password costs and response time does not tell which e-mails have accounts. The first
    call per hasher also computes the dummy hash; the app can warm it at startup.
    """
    verify_password(_dummy_hash(hasher), password, hasher=hasher)
    return False
