"""Per-device keys derived from the fleet secret (docs/protocol.md, "Keys").

The hierarchy::

    fleet secret (ESP32_SHARED_SECRET)                      hub, provisioning
    ├── frame key(id)   = HKDF(fleet, "teddy/v1/frame-key/" + id)       toy, hub
    └── connect root    = HKDF(fleet, "teddy/v1/connect-root")          broker
        └── connect key(id) = HKDF(root, "teddy/v1/connect-key/" + id)  toy, broker

(all with salt "teddy/v1" and 32-byte output). A broker holds only the connect root: it can
check every toy's connect token but derive no frame key, so a compromised broker cannot forge
a frame.

Deriving instead of storing means the hub verifies a frame without a database read, and since
HKDF is one-way, a key pulled out of one toy's flash reveals neither the fleet secret nor any
other toy's key.
"""

from __future__ import annotations

from collections import OrderedDict

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.protocol.topics import validate_device_id

DEVICE_KEY_SIZE = 32
KEY_SALT = b"teddy/v1"
FRAME_KEY_INFO_PREFIX = b"teddy/v1/frame-key/"
CONNECT_ROOT_INFO = b"teddy/v1/connect-root"
CONNECT_KEY_INFO_PREFIX = b"teddy/v1/connect-key/"
PAIR_CODE_KEY_INFO = b"teddy/v1/pair-code-key"


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=DEVICE_KEY_SIZE, salt=KEY_SALT, info=info).derive(
        ikm
    )


def derive_device_key(fleet_secret: bytes, device_id: str) -> bytes:
    """Return the 32-byte frame-signing key of ``device_id``.

    Raises:
        ProtocolError: (malformed) when ``device_id`` is outside the safe alphabet.
    """
    validate_device_id(device_id)
    return _hkdf(fleet_secret, FRAME_KEY_INFO_PREFIX + device_id.encode("ascii"))


def derive_connect_root(fleet_secret: bytes) -> bytes:
    """The broker's key: verifies connect tokens, derives no frame key."""
    return _hkdf(fleet_secret, CONNECT_ROOT_INFO)


def derive_connect_key(connect_root: bytes, device_id: str) -> bytes:
    """The 32-byte key with which ``device_id`` signs its connect tokens.

    Raises:
        ProtocolError: (malformed) when ``device_id`` is outside the safe alphabet.
    """
    validate_device_id(device_id)
    return _hkdf(connect_root, CONNECT_KEY_INFO_PREFIX + device_id.encode("ascii"))


def derive_pair_code_key(fleet_secret: bytes) -> bytes:
    """The key pairing codes are stored under (as HMAC digests); hubs and the API hold it."""
    return _hkdf(fleet_secret, PAIR_CODE_KEY_INFO)


def derive_dev_transcript_key(fleet_secret: bytes) -> bytes:
    """Development only: a transcript key when none is configured (production requires one)."""
    return _hkdf(fleet_secret, b"teddy/v1/dev-transcript-key")


class DeviceKeyring:
    """Derives frame keys on demand and keeps the most recent ones.

    HKDF costs tens of microseconds; the hot path asks for the same few thousand keys over and
    over, so a bounded LRU keeps verification at one HMAC per frame without unbounded memory.
    """

    def __init__(self, fleet_secret: bytes, capacity: int = 65_536) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._fleet_secret = fleet_secret
        self._capacity = capacity
        self._keys: OrderedDict[str, bytes] = OrderedDict()

    def key_for(self, device_id: str) -> bytes:
        """The device's key, derived once and then served from the cache."""
        key = self._keys.get(device_id)
        if key is not None:
            self._keys.move_to_end(device_id)
            return key
        key = derive_device_key(self._fleet_secret, device_id)
        self._keys[device_id] = key
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return key
