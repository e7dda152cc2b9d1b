"""Transcripts at rest: AES-256-GCM with key rotation, each ciphertext bound to its row.

A blob is ``version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext and tag``.
The key id is the first four bytes of the key's SHA-256, so a blob names the key that sealed
it and rotation needs no key index: add a new key at the end of ``TEDDY_TRANSCRIPT_KEYS``
(it encrypts from then on), keep the old ones until every row they sealed has been purged
(``TEDDY_RETENTION_DAYS``), then drop them.

The associated data is ``"{purpose}:{row_id}"`` (:func:`aad`), for example
``"child_text:<turn id>"``: a ciphertext copied into another row or another column does not
decrypt. Nonces are random (96 bits); at a few billion messages per key that stays far from
the collision bound, and rotation resets the count.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import TeddyError
from hub.settings import TRANSCRIPT_KEY_SIZE, Settings

FORMAT_VERSION: Final = 1
KEY_ID_SIZE: Final = 4
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
HEADER_SIZE: Final = 1 + KEY_ID_SIZE + NONCE_SIZE

Purpose = Literal["child_text", "reply_text", "alert_excerpt"]


class TranscriptError(TeddyError):
    """A transcript blob cannot be decrypted: unknown format or key, tampered, or moved."""


def key_id(key: bytes) -> bytes:
    """The four bytes naming ``key`` in a blob: the start of its SHA-256."""
    return hashlib.sha256(key).digest()[:KEY_ID_SIZE]


def aad(purpose: Purpose, row_id: uuid.UUID | str) -> str:
    """The associated data that binds a ciphertext to one column of one row."""
    return f"{purpose}:{row_id}"


class TranscriptCipher:
    """Encrypts with the newest key, decrypts with any of them.

    Raises:
        ValueError: without keys, for a key that is not 32 bytes, or for two keys with one id.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one transcript key is needed")
        self._keys: dict[bytes, AESGCM] = {}
        for position, key in enumerate(keys):
            if len(key) != TRANSCRIPT_KEY_SIZE:
                raise ValueError(f"transcript key {position} is not {TRANSCRIPT_KEY_SIZE} bytes")
            identifier = key_id(key)
            if identifier in self._keys:
                raise ValueError(f"transcript key {position} repeats an earlier key (or its id)")
            self._keys[identifier] = AESGCM(key)
        self._current_id = key_id(keys[-1])
        self._current = self._keys[self._current_id]

    @classmethod
    def from_settings(cls, settings: Settings) -> TranscriptCipher:
        """The cipher of ``settings.transcript_key_list()`` (oldest first, the last encrypts).

        Raises:
            ConfigError: for a key that is not base64 of 32 bytes, or none in production.
        """
        return cls(settings.transcript_key_list())

    @property
    def current_key_id(self) -> bytes:
        """The id of the key that encrypts."""
        return self._current_id

    def encrypt(self, text: str, aad: str) -> bytes:
        """``text`` sealed under the newest key, bound to ``aad`` (see :func:`aad`)."""
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._current.encrypt(nonce, text.encode("utf-8"), aad.encode("utf-8"))
        return bytes([FORMAT_VERSION]) + self._current_id + nonce + sealed

    def decrypt(self, blob: bytes, aad: str) -> str:
        """The text sealed in ``blob`` under ``aad``.

        Raises:
            TranscriptError: for an unknown format version or key id, a truncated blob, a
                tampered ciphertext or a different ``aad`` (another row or column).
        """
        blob = bytes(blob)  # PostgreSQL drivers may hand back a memoryview
        if len(blob) < HEADER_SIZE + TAG_SIZE:
            raise TranscriptError("transcript blob is truncated")
        if blob[0] != FORMAT_VERSION:
            raise TranscriptError(f"unknown transcript format version {blob[0]}")
        identifier = blob[1 : 1 + KEY_ID_SIZE]
        cipher = self._keys.get(identifier)
        if cipher is None:
            raise TranscriptError(
                f"transcript sealed with unknown key {identifier.hex()} "
                "(was it removed from TEDDY_TRANSCRIPT_KEYS?)"
            )
        nonce = blob[1 + KEY_ID_SIZE : HEADER_SIZE]
        try:
            plain = cipher.decrypt(nonce, blob[HEADER_SIZE:], aad.encode("utf-8"))
        except InvalidTag as error:
            raise TranscriptError(
                "transcript does not authenticate: tampered, or moved from another row"
            ) from error
        return plain.decode("utf-8")
