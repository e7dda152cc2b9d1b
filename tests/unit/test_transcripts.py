"""AES-256-GCM transcripts: round trip, rotation, binding to the row, refusals."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from pydantic import SecretStr

from hub.settings import Settings
from hub.transcripts import (
    FORMAT_VERSION,
    HEADER_SIZE,
    TranscriptCipher,
    TranscriptError,
    aad,
    key_id,
)

OLD = bytes(range(32))
NEW = bytes(range(32, 64))
ROW = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_round_trip_and_format() -> None:
    cipher = TranscriptCipher([NEW])
    blob = cipher.encrypt("I like dinosaurs 🦕", aad("child_text", ROW))
    assert blob[0] == FORMAT_VERSION
    assert blob[1:5] == key_id(NEW) == cipher.current_key_id
    assert len(blob) == HEADER_SIZE + len("I like dinosaurs 🦕".encode()) + 16
    assert b"dinosaurs" not in blob
    assert cipher.decrypt(blob, aad("child_text", ROW)) == "I like dinosaurs 🦕"
    assert cipher.decrypt(memoryview(blob), f"child_text:{ROW}") == "I like dinosaurs 🦕"  # type: ignore[arg-type]


def test_nonces_differ() -> None:
    cipher = TranscriptCipher([NEW])
    assert cipher.encrypt("same", "x:1") != cipher.encrypt("same", "x:1")


def test_rotation_old_keys_decrypt_the_newest_encrypts() -> None:
    sealed_before = TranscriptCipher([OLD]).encrypt("before", "child_text:1")
    rotated = TranscriptCipher([OLD, NEW])
    assert rotated.decrypt(sealed_before, "child_text:1") == "before"
    sealed_after = rotated.encrypt("after", "child_text:2")
    assert sealed_after[1:5] == key_id(NEW)
    assert TranscriptCipher([NEW]).decrypt(sealed_after, "child_text:2") == "after"


def test_a_removed_key_is_named_as_unknown() -> None:
    sealed = TranscriptCipher([OLD]).encrypt("gone", "reply_text:1")
    with pytest.raises(TranscriptError, match="unknown key"):
        TranscriptCipher([NEW]).decrypt(sealed, "reply_text:1")


@pytest.mark.parametrize("position", [0, 5, HEADER_SIZE, -1])
def test_tampering_fails(position: int) -> None:
    cipher = TranscriptCipher([NEW])
    blob = bytearray(cipher.encrypt("hello", "child_text:1"))
    blob[position] ^= 0x01
    with pytest.raises(TranscriptError):
        cipher.decrypt(bytes(blob), "child_text:1")


def test_a_ciphertext_moved_to_another_row_or_column_fails() -> None:
    cipher = TranscriptCipher([NEW])
    other = uuid.uuid4()
    blob = cipher.encrypt("hello", aad("child_text", ROW))
    with pytest.raises(TranscriptError, match="another row"):
        cipher.decrypt(blob, aad("child_text", other))
    with pytest.raises(TranscriptError):
        cipher.decrypt(blob, aad("reply_text", ROW))
    with pytest.raises(TranscriptError):
        cipher.decrypt(blob, aad("alert_excerpt", ROW))


def test_truncated_blobs_fail() -> None:
    cipher = TranscriptCipher([NEW])
    blob = cipher.encrypt("hello", "a:1")
    for length in (0, 1, HEADER_SIZE, HEADER_SIZE + 15):
        with pytest.raises(TranscriptError, match="truncated"):
            cipher.decrypt(blob[:length], "a:1")


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TranscriptCipher([])
    with pytest.raises(ValueError, match="32 bytes"):
        TranscriptCipher([b"short"])
    with pytest.raises(ValueError, match="repeats"):
        TranscriptCipher([OLD, OLD])


def test_from_settings_uses_the_last_key(settings: Settings) -> None:
    keys = [SecretStr(base64.b64encode(key).decode()) for key in (OLD, NEW)]
    cipher = TranscriptCipher.from_settings(settings.model_copy(update={"transcript_keys": keys}))
    assert cipher.current_key_id == key_id(NEW)
    # Development without the setting: one key derived from the fleet secret.
    derived = TranscriptCipher.from_settings(settings)
    assert derived.decrypt(derived.encrypt("x", "a:1"), "a:1") == "x"


def test_random_keys_round_trip() -> None:
    cipher = TranscriptCipher([os.urandom(32) for _ in range(3)])
    assert cipher.decrypt(cipher.encrypt("", "a:1"), "a:1") == ""
