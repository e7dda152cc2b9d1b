"""Message kinds and the direction each one travels (docs/protocol.md, "Kinds").

A kind has one numeric code on the wire and one name in the topic; the two must agree.
Codes below 0x80 travel toy to hub, codes from 0x80 travel hub to toy, so a frame whose
direction flag contradicts its kind is malformed rather than merely misrouted.
"""

from __future__ import annotations

from enum import IntEnum


class Direction(IntEnum):
    """Which way a frame travels; bit 0 of the flags byte."""

    UP = 0
    DOWN = 1

    @property
    def segment(self) -> str:
        """The topic segment naming this direction."""
        return "up" if self is Direction.UP else "down"


class Kind(IntEnum):
    """Every message kind the protocol defines, with its wire code."""

    # toy -> hub
    PING = 0x01
    HELLO = 0x02
    PAIR_REQUEST = 0x03
    LISTEN_START = 0x10
    AUDIO = 0x11
    LISTEN_END = 0x12
    TEXT = 0x13
    ABORT = 0x14
    # hub -> toy
    PONG = 0x81
    CONFIG = 0x82
    PAIR_CODE = 0x83
    UNPAIRED = 0x84
    REPLY_TEXT = 0x90
    REPLY_AUDIO = 0x91
    REPLY_END = 0x92
    ERROR = 0x9F

    @property
    def direction(self) -> Direction:
        """The only direction this kind may travel."""
        return Direction.DOWN if self.value & 0x80 else Direction.UP

    @property
    def topic_name(self) -> str:
        """The kind as it appears in the last topic segment."""
        return self.name.lower()


KIND_BY_TOPIC_NAME: dict[str, Kind] = {kind.topic_name: kind for kind in Kind}
KIND_BY_CODE: dict[int, Kind] = {kind.value: kind for kind in Kind}
