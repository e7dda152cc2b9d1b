"""Who may publish, subscribe to and receive which topic (docs/protocol.md, "Broker rules").

A toy publishes only to ``<root>/v1/<its id>/up/<kind>`` and subscribes only to its own
``<root>/v1/<its id>/down/...``; it gets no wildcard across devices, no other toy's topic and
no ``$SYS``. The hub's service account subscribes to every uplink (plainly or as a shared
subscription) and publishes downlinks; the API's publishes downlinks only. Anonymous clients
exist only where the operator enabled them for development, and then may do anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.protocol.kinds import KIND_BY_TOPIC_NAME, Direction
from hub.protocol.topics import DEVICE_ID_PATTERN, TOPIC_VERSION


class Role(StrEnum):
    """What kind of client a login established."""

    DEVICE = "device"
    HUB = "hub"
    API = "api"
    ANONYMOUS = "anonymous"


class Action(StrEnum):
    """What a client wants to do with a topic."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: its role and, for a toy, its device id."""

    role: Role
    name: str


def is_allowed(principal: Principal, topic: str, action: Action, root: str) -> bool:
    """The broker's whole access policy."""
    if principal.role is Role.ANONYMOUS:
        return True
    if principal.role is Role.DEVICE:
        return _device_allowed(principal.name, topic, action, root)
    if action is Action.PUBLISH:
        return _is_frame_topic(topic, root, Direction.DOWN)
    if principal.role is Role.HUB:
        if action is Action.SUBSCRIBE:
            return _unshared(topic) == f"{root}/{TOPIC_VERSION}/+/up/+"
        return _is_frame_topic(topic, root, Direction.UP)
    return False


def _device_allowed(device_id: str, topic: str, action: Action, root: str) -> bool:
    own = f"{root}/{TOPIC_VERSION}/{device_id}/"
    if action is Action.PUBLISH:
        return topic.startswith(own + "up/") and _is_frame_topic(topic, root, Direction.UP)
    if action is Action.SUBSCRIBE:
        rest = topic.removeprefix(own + "down/")
        return topic.startswith(own + "down/") and (
            rest in ("+", "#") or _is_frame_topic(topic, root, Direction.DOWN)
        )
    return topic.startswith(own + "down/") and _is_frame_topic(topic, root, Direction.DOWN)


def _is_frame_topic(topic: str, root: str, direction: Direction) -> bool:
    """``<root>/v1/<valid id>/<direction>/<kind of that direction>``, no wildcard anywhere."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != root or parts[1] != TOPIC_VERSION:
        return False
    kind = KIND_BY_TOPIC_NAME.get(parts[4])
    return (
        DEVICE_ID_PATTERN.fullmatch(parts[2]) is not None
        and parts[3] == direction.segment
        and kind is not None
        and kind.direction is direction
    )


def _unshared(topic_filter: str) -> str:
    """The filter inside ``$share/<group>/...``, or the filter itself."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 and parts[1] else ""
    return topic_filter
