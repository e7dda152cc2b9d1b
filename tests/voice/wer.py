"""Word error rate, the measure speech-to-text tests are judged by."""

from __future__ import annotations

import re

# Whisper writes what it hears as "I'm" where the script said "I am"; both are right.
_CONTRACTIONS = {
    "i'm": "i am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "it's": "it is",
    "that's": "that is",
    "let's": "let us",
    "don't": "do not",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "i'll": "i will",
    "you'll": "you will",
    "i've": "i have",
    "what's": "what is",
}
_NOT_A_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation, contractions spelt out."""
    cleaned = _NOT_A_WORD.sub(" ", text.lower().replace("\u2019", "'"))
    words: list[str] = []
    for word in cleaned.split():
        words.extend(_CONTRACTIONS.get(word, word.strip("'")).split())
    return [word for word in words if word]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words in the reference, after normalising."""
    expected, heard = normalise(reference), normalise(hypothesis)
    if not expected:
        return 0.0 if not heard else 1.0
    previous = list(range(len(heard) + 1))
    for i, word in enumerate(expected, start=1):
        current = [i]
        for j, other in enumerate(heard, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1] / len(expected)
