"""Redaction of personal details from stored transcripts: phone numbers, e-mails, addresses.

:func:`redact` replaces what it finds with ``[phone]``, ``[email]`` and ``[address]`` and says
which kinds it replaced; :func:`detect` only says which kinds are present (the local safety
layer uses it, language-independently, to notice a child giving out personal details).

Pure, no I/O, regular expressions only. What it recognises:

* phone numbers: seven or more digits, international (``+44 20 7946 0958``, ``0044 ...``) or
  local, grouped with spaces, dashes, dots or brackets; digit words spoken one by one
  (``five five five one two three four``, ``oh``, ``double``/``triple``) in runs of seven or
  more. A run that just counts up or down by one (``1 2 3 4 5 6 7``, ``one two three ...``) is
  counting, not a number, and is kept.
* e-mail addresses, written (``mia@example.com``) or spoken (``mia at example dot com``).
* street addresses with a house number (``12 Elm Street``, ``221B Baker St.``, ``Flat 3, 10
  Downing Street``), UK postcodes (``SW1A 1AA``) anywhere, and US ZIP codes (``90210``) that
  follow a street address.

Limits: a street named without a house number (``I live on Elm Street``), a town name, or a
number spoken as "twenty-three" are not recognised; an eight-digit date written with dots can
look like a phone number and is redacted. Redaction errs on the side of removing.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Final

PHONE: Final = "phone"
EMAIL: Final = "email"
ADDRESS: Final = "address"

_DIGIT_WORDS: Final = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_MIN_PHONE_DIGITS: Final = 7

_TLDS = r"(?:com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|be|ch|at|info|me|us|ca|au|ie|eu)"
_EMAIL_WRITTEN = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?![\w])", re.IGNORECASE
)
_DOT = r"(?:\s*\.\s*|\s+dot\s+|\s*[\[(]dot[\])]\s*)"
_EMAIL_SPOKEN = re.compile(
    r"(?<![\w.+-])[\w.+-]+(?:\s+at\s+|\s*[\[(]at[\])]\s*|\s*@\s*)"
    rf"[\w-]+(?:{_DOT}[\w-]+)*{_DOT}{_TLDS}(?![\w])",
    re.IGNORECASE,
)
_PHONE_DIGITS = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d(?:[\s.\-()/]{0,3}\d){6,16}(?![\w])")
_DIGIT_WORD = r"(?:zero|oh|o|nought|one|two|three|four|five|six|seven|eight|nine)"
_MULTIPLIER = r"(?:double|triple)"
_PHONE_SPOKEN = re.compile(
    rf"(?<![\w])(?:{_MULTIPLIER}[\s,.-]+)?{_DIGIT_WORD}"
    rf"(?:[\s,.-]+(?:{_MULTIPLIER}[\s,.-]+)?{_DIGIT_WORD}){{3,}}(?![\w])",
    re.IGNORECASE,
)
_STREET_TYPES = (
    r"(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|way|court|ct|place|pl|crescent"
    r"|terrace|boulevard|blvd|gardens|grove|square|sq|hill|row|mews|parade|walk)"
)
_ADDRESS = re.compile(
    r"(?<![\w])(?:(?:flat|apartment|apt|unit|suite)\.?\s*(?:no\.?\s*)?\d+[a-z]?,?\s+)?"
    r"\d{1,5}[a-z]?,?\s+(?:[a-z][a-z'\u2019-]*\s+){1,3}" + _STREET_TYPES + r"(?![\w])\.?",
    re.IGNORECASE,
)
_UK_POSTCODE = re.compile(r"(?<![\w])[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2}(?![\w])", re.IGNORECASE)
_ZIP_AFTER_ADDRESS = re.compile(r"(\[address\][^\n\[]{0,60}?)(?<!\d)\d{5}(?:-\d{4})?(?![\w])")


def _steps_by_one(numbers: list[int]) -> bool:
    return {b - a for a, b in pairwise(numbers)} in ({1}, {-1})


def _is_counting(digits: str, groups: list[str] | None = None) -> bool:
    """True for ``1234567`` or ``1 2 3 ... 9 10``: counting up or down, not a number."""
    if _steps_by_one([int(digit) for digit in digits]):
        return True
    return groups is not None and len(groups) >= 3 and _steps_by_one([int(g) for g in groups])


def _spoken_digits(run: str) -> str:
    digits: list[str] = []
    repeat = 1
    for word in re.findall(r"[a-z]+", run.lower()):
        if word == "double":
            repeat = 2
        elif word == "triple":
            repeat = 3
        else:
            digits.append(_DIGIT_WORDS[word] * repeat)
            repeat = 1
    return "".join(digits)


def _phone_spoken(match: re.Match[str]) -> str:
    digits = _spoken_digits(match.group(0))
    if len(digits) < _MIN_PHONE_DIGITS or _is_counting(digits):
        return match.group(0)
    return "[phone]"


def _phone_written(match: re.Match[str]) -> str:
    groups = re.findall(r"\d+", match.group(0))
    digits = "".join(groups)
    if len(digits) < _MIN_PHONE_DIGITS or _is_counting(digits, groups):
        return match.group(0)
    return "[phone]"


def redact(text: str) -> tuple[str, frozenset[str]]:
    """``text`` with phone numbers, e-mails and street addresses replaced, and which kinds were.

    >>> redact("call 555 123 4567")
    ('call [phone]', frozenset({'phone'}))
    """
    kinds: set[str] = set()

    def substitute(pattern: re.Pattern[str], kind: str, value: str, current: str) -> str:
        replaced, count = pattern.subn(value, current)
        if count:
            kinds.add(kind)
        return replaced

    result = substitute(_EMAIL_WRITTEN, EMAIL, "[email]", text)
    result = substitute(_EMAIL_SPOKEN, EMAIL, "[email]", result)
    result = substitute(_ADDRESS, ADDRESS, "[address]", result)
    result = substitute(_UK_POSTCODE, ADDRESS, "[address]", result)
    result = _ZIP_AFTER_ADDRESS.sub(r"\1[address]", result)
    for pattern, replace in ((_PHONE_DIGITS, _phone_written), (_PHONE_SPOKEN, _phone_spoken)):
        after = pattern.sub(replace, result)
        if after != result:
            kinds.add(PHONE)
        result = after
    return result, frozenset(kinds)


def detect(text: str) -> frozenset[str]:
    """The kinds of personal detail :func:`redact` would remove from ``text``."""
    return redact(text)[1]
