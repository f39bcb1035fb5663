"""Where one call reads the time.

The media path schedules on monotonic seconds (arrival of a frame, playout of the next
one); records carry wall-clock seconds. A call takes one CallClock and hands the same
one to every part that reads the time (the RTP tap, the paced track, the forwarder, the
transcription, the call log), so a test can drive them all from one fake clock and no
part reads the system clock behind the others' back. Media time itself is not read from
a clock: it comes from the RTP timestamps (relay/media/media_clock.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CallClock:
    monotonic: Callable[[], float] = time.monotonic  # scheduling: arrival, playout, timeouts
    wall: Callable[[], float] = time.time  # records: when something happened, for people
