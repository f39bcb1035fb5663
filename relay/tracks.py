"""Outgoing audio tracks and the live (undelayed) buffer.

aiortc's sender calls recv() as fast as it returns, so an outgoing track must pace
itself and keep its own monotonic pts. Each peer connection gets its own PacedTrack over
a call-owned source (the delay line, or the live buffer), so a side that reconnects gets
a fresh track while the source and its state live on with the call.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from typing import Callable, Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

RATE = 48000
FRAME_SAMPLES = 960
FRAME_S = FRAME_SAMPLES / RATE
TIME_BASE = fractions.Fraction(1, RATE)
# If the event loop stalls longer than this, skip ahead instead of sending a burst.
MAX_LATE_S = 0.2


class AudioSource(Protocol):
    def pull(self, wall: float) -> np.ndarray:
        """FRAME_SAMPLES of int16 mono audio to be played at monotonic time `wall`."""
        ...


class PacedTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, source: AudioSource, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._source = source
        self._clock = clock
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._index * FRAME_S
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > MAX_LATE_S:
            self._index += int((now - due) / FRAME_S)
            due = self._start + self._index * FRAME_S
        frame = mono_frame(self._source.pull(due), self._index * FRAME_SAMPLES)
        self._index += 1
        return frame


def mono_frame(samples: np.ndarray, pts: int) -> AudioFrame:
    frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def to_mono(frame: AudioFrame) -> np.ndarray:
    """int16 mono samples of a decoded frame (aiortc's Opus decoder gives s16 stereo)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if channels == 1:
        return data.reshape(-1).astype(np.int16, copy=False)
    if frame.format.is_planar:
        return data.astype(np.int32).mean(axis=0).astype(np.int16)
    interleaved = data.reshape(-1, channels).astype(np.int32)
    return (interleaved.sum(axis=1) // channels).astype(np.int16)


class LiveBuffer:
    """The counselor's voice on its way to the customer: as little delay as pacing allows.

    A few frames of slack absorb arrival jitter; beyond that the oldest frame goes, so
    the path never builds up delay (e.g. when the two clocks differ slightly).
    """

    def __init__(self, max_frames: int = 4) -> None:
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=max_frames)
        self._pending = np.zeros(0, dtype=np.int16)
        self.underruns = 0

    def push(self, samples: np.ndarray) -> None:
        self._frames.append(samples)

    def pull(self, wall: float) -> np.ndarray:
        while len(self._pending) < FRAME_SAMPLES and self._frames:
            self._pending = np.concatenate([self._pending, self._frames.popleft()])
        if len(self._pending) < FRAME_SAMPLES:
            if len(self._pending):
                self.underruns += 1
            self._pending = np.zeros(0, dtype=np.int16)
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        out, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
        return out
