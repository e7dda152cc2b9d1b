"""The local safety layer: always on, offline, deterministic (see :mod:`hub.safety.local`).

:mod:`hub.safety.redact` removes phone numbers, e-mails and addresses from stored transcripts.
"""

from hub.safety.local import (
    SafetyCategory,
    SafetyLayer,
    SafetyVerdict,
    normalise,
)
from hub.safety.redact import detect, redact

__all__ = [
    "SafetyCategory",
    "SafetyLayer",
    "SafetyVerdict",
    "detect",
    "normalise",
    "redact",
]
