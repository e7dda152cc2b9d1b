"""``ping`` -> ``pong``: the toy's end-to-end check of keys, clock, broker and hub.

The pong's payload is the ping's nonce, so the toy can match the answer to its question and a
pong recorded earlier cannot pass for a new one.
"""

from __future__ import annotations

from hub.dispatch import Dispatcher, Inbound
from hub.downlink import DownlinkPublisher
from hub.protocol.kinds import Kind


class PingHandler:
    """Answers every verified ping with a signed pong."""

    def __init__(self, downlinks: DownlinkPublisher) -> None:
        self._downlinks = downlinks

    def register(self, dispatcher: Dispatcher) -> None:
        """Take every ``ping`` frame."""
        dispatcher.register(Kind.PING, self)

    async def __call__(self, inbound: Inbound) -> None:
        """Send the pong."""
        await self._downlinks.send(inbound.device_id, Kind.PONG, inbound.frame.nonce)
