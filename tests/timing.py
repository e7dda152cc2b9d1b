"""How long a test waits for something that is going to happen.

A wait for an event returns the moment the event happens, so its limit costs nothing when the
code works; the limit only turns a hang into a failure with a message. It is therefore set
for the slowest machine a run may get (a busy two-core CI machine, one core taken by other
work, models computing on the other), with a wide margin, never for this machine's speed.
Checks that something does *not* happen are the opposite: they wait a short, fixed time, and
a slow machine can only make them pass, never fail.
"""

from __future__ import annotations

from typing import Final

# The limit for any wait on an event (a frame, a counter, a reply, a process starting).
EVENT_TIMEOUT_S: Final = 60.0
