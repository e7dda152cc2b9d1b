"""The canned lines: every name in English, other languages fall back to English."""

from __future__ import annotations

import pytest

from hub.conversation.lines import LINES, NAMES, line, primary_language
from hub.safety.local import SafetyCategory


def test_the_spec_lines_exist() -> None:
    expected = {
        "setup_needed",
        "moderation_unavailable",
        "apology",
        "utterance_timeout",
        "too_long",
        "too_many_utterances",
        "session_limit",
        "daily_limit",
    } | {f"redirect_{category.value}" for category in SafetyCategory}
    assert expected == NAMES


def test_english_lines() -> None:
    assert line("setup_needed") == (
        "I'm not set up yet. Please ask a grown-up to set me up in the Teddy app!"
    )
    assert line("apology") == "Oops, my ears got muddled. Can you say that again?"
    assert line("daily_limit") == "That's all our talking time for today. See you tomorrow!"


@pytest.mark.parametrize("language", ["en", "en-GB", "en_US", "EN"])
def test_english_variants(language: str) -> None:
    assert line("apology", language) == line("apology")


def test_other_languages_and_fallback() -> None:
    assert line("apology", "de-AT") == LINES["de"]["apology"]
    assert line("too_long", "fr") == line("too_long", "en")  # not translated yet
    assert line("apology", "xx") == line("apology", "en")
    assert line("apology", "") == line("apology", "en")
    assert primary_language("pt_BR") == "pt"


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(KeyError):
        line("nonexistent")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_lines_are_short_and_without_guilt(name: str) -> None:
    for table in LINES.values():
        text = table.get(name)
        if text is None:
            continue
        assert len(text) <= 220
        lowered = text.lower()
        for word in ("sad", "miss you", "don't go", "lonely", "bad", "naughty"):
            assert word not in lowered, (name, text)
