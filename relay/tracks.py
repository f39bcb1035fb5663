"""Outgoing audio tracks and the live (undelayed) buffer.

aiortc's sender calls recv() as fast as it returns, so an outgoing track must pace
itself and keep its own monotonic pts. Each peer connection gets its own PacedTrack over
a call-owned source (the delay line, or the live buffer), so a side that reconnects gets
a fresh track while the source and its state live on with the call.

The track hands aiortc Opus packets, not frames. Given a frame, aiortc's sender resamples
it to stereo, encodes at 96 kb/s on a thread-pool worker and measures its level, per
20 ms: measured at about a third of the server's CPU per call. Speech needs none of that:
one mono voice-mode encode on the event loop costs under 0.1 ms, and aiortc sends a
packet as it is.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from typing import Callable, Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, CodecContext, Packet

RATE = 48000
FRAME_SAMPLES = 960
FRAME_S = FRAME_SAMPLES / RATE
TIME_BASE = fractions.Fraction(1, RATE)
# If the event loop stalls longer than this, skip ahead instead of sending a burst.
MAX_LATE_S = 0.2
# WebRTC's usual rate for mono speech.
OPUS_BITRATE = 32000


class AudioSource(Protocol):
    def pull(self, wall: float) -> np.ndarray:
        """FRAME_SAMPLES of int16 mono audio to be played at monotonic time `wall`."""
        ...


class OpusVoiceEncoder:
    """Mono Opus in voice mode, one packet per 20 ms frame, stamped with the frame's pts."""

    def __init__(self, bitrate: int = OPUS_BITRATE) -> None:
        self._codec = CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = {"application": "voip"}

    def encode(self, frame: AudioFrame) -> Packet:
        (packet,) = self._codec.encode(frame)
        # The codec shifts pts by its look-ahead; the RTP clock should follow our frames.
        packet.pts = frame.pts
        packet.time_base = TIME_BASE
        return packet


class PacedTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, source: AudioSource, clock: Callable[[], float] = time.monotonic,
                 encode: bool = True) -> None:
        super().__init__()
        self._source = source
        self._clock = clock
        self._encoder = OpusVoiceEncoder() if encode else None
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> AudioFrame | Packet:
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
        return frame if self._encoder is None else self._encoder.encode(frame)


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
        return (data.astype(np.int32).sum(axis=0) // channels).astype(np.int16)
    interleaved = data.reshape(-1, channels).astype(np.int32)
    return (interleaved.sum(axis=1) // channels).astype(np.int16)


class LiveBuffer:
    """The counselor's voice on its way to the customer: as little delay as pacing allows.

    A few frames of slack absorb arrival jitter; beyond that the oldest frame goes. A
    backlog that never drains (the phase of arrivals against pulls, or the two clocks
    differing slightly) would be latency for the rest of the call: when a whole second
    passes without the buffer dropping below one frame, one frame is skipped.
    """

    TRIM_EVERY = 50  # pulls: one second

    def __init__(self, max_frames: int = 4) -> None:
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=max_frames)
        self._pending = np.zeros(0, dtype=np.int16)
        self._pulls = 0
        self._low_water = 0
        self.underruns = 0
        self.trimmed = 0

    def push(self, samples: np.ndarray) -> None:
        self._frames.append(samples)

    def queued(self) -> int:
        return len(self._pending) + sum(len(f) for f in self._frames)

    def pull(self, wall: float) -> np.ndarray:
        out = self._take(FRAME_SAMPLES)
        if out is None:
            if self.queued():
                self.underruns += 1
            out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._low_water = min(self._low_water, self.queued()) if self._pulls else self.queued()
        self._pulls += 1
        if self._pulls == self.TRIM_EVERY:
            if self._low_water >= FRAME_SAMPLES:
                self._take(FRAME_SAMPLES)
                self.trimmed += 1
            self._pulls = 0
        return out

    def _take(self, count: int) -> np.ndarray | None:
        if not len(self._pending) and self._frames and len(self._frames[0]) == count:
            return self._frames.popleft()  # the usual case: whole 20 ms frames
        while len(self._pending) < count and self._frames:
            self._pending = np.concatenate([self._pending, self._frames.popleft()])
        if len(self._pending) < count:
            return None
        out, self._pending = self._pending[:count], self._pending[count:]
        return out
