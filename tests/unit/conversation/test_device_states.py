"""Abort marks: a late ``listen_start`` never stops the turn of the utterance it starts."""

from __future__ import annotations

import os
import time

from hub.conversation.devices import MemoryDeviceStates

DEVICE = "toy-0001"


async def test_an_abort_of_everything_keeps_the_new_utterance() -> None:
    states = MemoryDeviceStates()
    old, new = os.urandom(8), os.urandom(8)
    started = time.time() - 1
    await states.mark_aborted(DEVICE, None, keep=new)
    assert await states.is_aborted(DEVICE, old, started)
    assert not await states.is_aborted(DEVICE, new, started)


async def test_an_abort_before_a_turn_started_does_not_stop_it() -> None:
    states = MemoryDeviceStates()
    await states.mark_aborted(DEVICE, None)
    assert not await states.is_aborted(DEVICE, os.urandom(8), time.time() + 1)


async def test_an_abort_of_one_utterance_stops_only_it() -> None:
    states = MemoryDeviceStates()
    one, two = os.urandom(8), os.urandom(8)
    await states.mark_aborted(DEVICE, one)
    assert await states.is_aborted(DEVICE, one, time.time() + 1)
    assert not await states.is_aborted(DEVICE, two, time.time() - 1)
