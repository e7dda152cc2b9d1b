"""Redaction of phone numbers, e-mails and street addresses from stored transcripts."""

from __future__ import annotations

import pytest

from hub.safety.redact import ADDRESS, EMAIL, PHONE, detect, redact


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("call 555 123 4567 now", "call [phone] now", {PHONE}),
        ("my number is +44 20 7946 0958", "my number is [phone]", {PHONE}),
        ("it's 0044 20 7946 0958", "it's [phone]", {PHONE}),
        ("07700 900123", "[phone]", {PHONE}),
        ("555-123-4567", "[phone]", {PHONE}),
        ("(555) 123-4567", "[phone]", {PHONE}),
        ("555.123.4567", "[phone]", {PHONE}),
        ("5 5 5 1 2 3 4", "[phone]", {PHONE}),
        ("five five five one two three four", "[phone]", {PHONE}),
        ("it is oh seven seven double oh nine oh oh", "it is [phone]", {PHONE}),
        ("mia@example.com", "[email]", {EMAIL}),
        ("write to Mia.Smith+toys@mail.example.co.uk please", "write to [email] please", {EMAIL}),
        ("mia at example dot com", "[email]", {EMAIL}),
        ("mum is jo (at) example (dot) org", "mum is [email]", {EMAIL}),
        ("I live at 12 Elm Street", "I live at [address]", {ADDRESS}),
        ("221B Baker St. is famous", "[address] is famous", {ADDRESS}),
        ("Flat 3, 10 Downing Street", "[address]", {ADDRESS}),
        ("10 Downing Street, London SW1A 1AA", "[address], London [address]", {ADDRESS}),
        ("my postcode is sw1a 1aa", "my postcode is [address]", {ADDRESS}),
        (
            "12 Elm Street, Springfield, CA 90210",
            "[address], Springfield, CA [address]",
            {ADDRESS},
        ),
        ("42 Acacia Avenue", "[address]", {ADDRESS}),
        (
            "I'm at 7 Oak Lane, call 555 123 4567 or jo@example.com",
            "I'm at [address], call [phone] or [email]",
            {ADDRESS, PHONE, EMAIL},
        ),
    ],
)
def test_redacts(text: str, expected: str, kinds: set[str]) -> None:
    assert redact(text) == (expected, frozenset(kinds))
    assert detect(text) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "one two three four five six seven eight nine",
        "1 2 3 4 5 6 7 8 9 10",
        "ten nine eight seven six five four three two one",
        "I am 5 years old and my sister is 7",
        "I have 3 red cars and 2 blue ones",
        "in the year 2024 we went to the zoo",
        "90210 is just a number",
        "we live on Sesame Street",
        "look at the duck",
        "I have 12 crayons",
    ],
)
def test_leaves_ordinary_speech_alone(text: str) -> None:
    assert redact(text) == (text, frozenset())


def test_redaction_is_idempotent() -> None:
    once, _ = redact("call 555 123 4567 or mia@example.com at 12 Elm Street")
    assert redact(once) == (once, frozenset())
