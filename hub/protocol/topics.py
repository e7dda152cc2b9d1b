"""Topic names: ``<root>/v1/<device_id>/<up|down>/<kind>`` (docs/protocol.md, "Topics").

The root is ``teddy`` unless an operator moves it (one broker shared by several fleets, or a
test run that must not see another's traffic). Device ids come from a small alphabet so that
an id can never carry an MQTT wildcard or level separator into a topic or an ACL.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hub.errors import ProtocolError, RejectReason
from hub.protocol.kinds import KIND_BY_TOPIC_NAME, Direction, Kind

TOPIC_VERSION = "v1"
DEFAULT_TOPIC_ROOT = "teddy"
DEVICE_ID_MIN_LENGTH = 3
DEVICE_ID_MAX_LENGTH = 32
DEVICE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")
TOPIC_ROOT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class TopicParts:
    """A parsed frame topic."""

    root: str
    device_id: str
    direction: Direction
    kind: Kind


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` unchanged if it is in the safe alphabet.

    Raises:
        ProtocolError: (malformed) for anything else, including ``+``, ``#`` and ``/``.
    """
    if DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise ProtocolError(
            RejectReason.MALFORMED,
            "device id must be 3-32 characters of a-z, 0-9, '-' or '_', starting with a "
            "letter or digit",
        )
    return device_id


def validate_topic_root(root: str) -> str:
    """Return ``root`` unchanged if it is a single safe topic level."""
    if TOPIC_ROOT_PATTERN.fullmatch(root) is None:
        raise ValueError("topic root must be 1-32 characters of a-z, 0-9, '-' or '_'")
    return root


def uplink_topic(root: str, device_id: str, kind: Kind) -> str:
    """The topic a toy publishes ``kind`` on."""
    return f"{root}/{TOPIC_VERSION}/{device_id}/up/{kind.topic_name}"


def downlink_topic(root: str, device_id: str, kind: Kind) -> str:
    """The topic the hub publishes ``kind`` on for one toy."""
    return f"{root}/{TOPIC_VERSION}/{device_id}/down/{kind.topic_name}"


def uplink_filter(root: str, share_group: str | None = None) -> str:
    """The hub's subscription to every toy's uplinks, optionally as a shared subscription."""
    topic_filter = f"{root}/{TOPIC_VERSION}/+/up/+"
    return f"$share/{share_group}/{topic_filter}" if share_group else topic_filter


def downlink_filter(root: str, device_id: str) -> str:
    """A toy's subscription to its own downlinks."""
    return f"{root}/{TOPIC_VERSION}/{device_id}/down/+"


@functools.lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> TopicParts:
    """Split a frame topic into its parts.

    Cached: a fleet uses a few topics per toy over and over, and only valid topics are
    remembered (a raised error is not cached), so the cache cannot be filled with garbage
    beyond its bound.

    Raises:
        ProtocolError: (malformed) when the topic does not have the protocol's shape.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[1] != TOPIC_VERSION:
        raise ProtocolError(RejectReason.MALFORMED, "topic is not <root>/v1/<id>/<dir>/<kind>")
    root, _, device_id, direction_segment, kind_name = parts
    validate_device_id(device_id)
    if direction_segment == "up":
        direction = Direction.UP
    elif direction_segment == "down":
        direction = Direction.DOWN
    else:
        raise ProtocolError(RejectReason.MALFORMED, "topic direction is neither up nor down")
    kind = KIND_BY_TOPIC_NAME.get(kind_name)
    if kind is None:
        raise ProtocolError(RejectReason.MALFORMED, "topic names an unknown kind")
    if kind.direction is not direction:
        raise ProtocolError(RejectReason.MALFORMED, "topic puts the kind in the wrong direction")
    return TopicParts(root=root, device_id=device_id, direction=direction, kind=kind)
