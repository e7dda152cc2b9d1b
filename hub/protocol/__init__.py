"""The wire protocol as pure functions over bytes (sans-IO).

Nothing in this package performs I/O or imports asyncio, aiomqtt, redis or openai: a unit test
enforces that, so the same rules can be tested without a network and mirrored in the C core.
The contract these modules implement is ``docs/protocol.md``.
"""

from hub.protocol.frames import (
    HEADER_FIXED_SIZE,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_SIZE,
    NONCE_SIZE,
    PROTOCOL_VERSION,
    TAG_SIZE,
    Frame,
    encode_frame,
    parse_frame,
)
from hub.protocol.keys import DeviceKeyring, derive_device_key
from hub.protocol.kinds import Direction, Kind
from hub.protocol.topics import (
    TOPIC_VERSION,
    TopicParts,
    downlink_topic,
    parse_topic,
    uplink_filter,
    uplink_topic,
    validate_device_id,
)
from hub.protocol.verify import (
    CLOCK_WINDOW_MS,
    NONCE_TTL_MS,
    check_clock,
    verify_frame,
)

__all__ = [
    "CLOCK_WINDOW_MS",
    "HEADER_FIXED_SIZE",
    "MAX_FRAME_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MIN_FRAME_SIZE",
    "NONCE_SIZE",
    "NONCE_TTL_MS",
    "PROTOCOL_VERSION",
    "TAG_SIZE",
    "TOPIC_VERSION",
    "DeviceKeyring",
    "Direction",
    "Frame",
    "Kind",
    "TopicParts",
    "check_clock",
    "derive_device_key",
    "downlink_topic",
    "encode_frame",
    "parse_frame",
    "parse_topic",
    "uplink_filter",
    "uplink_topic",
    "validate_device_id",
    "verify_frame",
]
