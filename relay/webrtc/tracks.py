"""The paced outgoing track the call's delayed stream and the test peers send.

aiortc's sender calls recv() as fast as it returns, so an outgoing track must pace
itself and keep its own monotonic pts. Each peer connection gets its own PacedTrack over
a call-owned source (the delay line), so a side that reconnects gets a fresh track while
the source and its state live on with the call.

The track hands aiortc Opus packets, not frames. Given a frame, aiortc's sender resamples
it to stereo, encodes at 96 kb/s on a thread-pool worker and measures its level, per
20 ms: measured at about a third of the server's CPU per call. Speech needs none of that:
one mono encode on the event loop costs 0.1-0.2 ms, and aiortc sends a
packet as it is.

A packet may carry more than one 20 ms frame (`frames_per_packet`; webrtc.delayed_ptime_ms
for the delayed stream): what each packet costs on the way out (aiortc's send, SRTP, the
RTP header, the call log's page) is paid once per packet, not per frame. Every receiver
decodes any Opus packet length (RFC 7587). The track asks its source for the packet
when the packet's first sample is due: the call's delay line renders and judges the
whole packet in one pull (its first sample exactly on time, its last up to
(frames - 1) * 20 ms before it plays), which also pays the delay line's per-pull work
once a packet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, Packet

from relay.media.audio_format import FRAME_S, FRAME_SAMPLES, RATE, TIME_BASE
from relay.media.opus import Application, OpusVoiceEncoder

# If the event loop stalls longer than this, skip ahead instead of sending a burst.
MAX_LATE_S = 0.2
# The delayed stream, the browser's Opus decoded and encoded again, goes out in CELT mode
# (libopus "restricted low delay"). Measured on espeak-ng Korean sent through a
# browser-like encode (complexity 10) and then this one, PESQ wideband against the
# original: voice mode at 32 kb/s 3.29, CELT at 40 kb/s 3.41 (the browser's encode alone
# 3.97), at 90-100 us a frame instead of 210-235: the largest single cost of a call's
# media path. CELT's look-ahead is 2.5 ms instead of 6.5 ms. Its loss concealment is
# weaker than SILK's for speech; no FEC was sent in voice mode either.
# CELT at complexity 0 costs half of 5 (bench/media_frame_cost.py: 35-50 against 70-86 us
# per 20 ms, 60 ms packets) and at 56 kb/s sounds better than 5 did at 40 (PESQ wideband
# over four espeak-ng voices, Korean and English, male and female: mean 3.58, worst 3.45,
# against 3.26 and 2.75); the 16 kb/s more is nothing on a counselor's line.
DELAYED_APPLICATION: Application = "lowdelay"
DELAYED_BITRATE = 56000
DELAYED_COMPLEXITY = 0


def delayed_encoder(frames: int, complexity: int = DELAYED_COMPLEXITY) -> OpusVoiceEncoder:
    """The delayed stream's encoder, `frames` 20 ms frames a packet (another complexity:
    bench/media_frame_cost.py compares them)."""
    return OpusVoiceEncoder(DELAYED_BITRATE, DELAYED_APPLICATION, frames, complexity)


class AudioSource(Protocol):
    def pull(self, wall: float) -> np.ndarray:
        """int16 mono audio to be played from monotonic time `wall`: a fixed number of
        samples a pull that divides the track's packet (20 ms or the whole packet)."""
        ...


class PacedTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        source: AudioSource,
        clock: Callable[[], float] = time.monotonic,
        encode: bool = True,
        encoder: OpusVoiceEncoder | None = None,
        on_packet: Callable[[bytes, float], None] | None = None,
        frames_per_packet: int = 1,
    ) -> None:
        super().__init__()
        if encoder is not None and encoder.samples != frames_per_packet * FRAME_SAMPLES:
            raise ValueError("the encoder's packet length is not the track's")
        # Sees each encoded packet with the monotonic time it is due to play (the call log).
        self._on_packet = on_packet
        self._source = source
        self._clock = clock
        self._frames = frames_per_packet
        self._encoder = (encoder or OpusVoiceEncoder(frames=frames_per_packet)) if encode else None
        self._start: float | None = None
        self._index = 0  # 20 ms frames sent (or skipped)
        self._samples = np.zeros(frames_per_packet * FRAME_SAMPLES, dtype=np.int16)

    async def recv(self) -> AudioFrame | Packet[Any]:
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
        pts = self._index * FRAME_SAMPLES
        # A source gives its own length a pull: the call's delay line a whole packet, a
        # test peer's source 20 ms; each pull is asked at the time its first sample plays.
        samples, filled = self._samples, 0
        while filled < samples.size:
            chunk = self._source.pull(due + filled / RATE)
            if not chunk.size:
                raise ValueError("an audio source gave an empty pull")
            samples[filled : filled + chunk.size] = chunk
            filled += chunk.size
        self._index += self._frames
        if self._encoder is None:
            return mono_frame(samples, pts)
        data = self._encoder.encode(samples)
        if self._on_packet is not None:
            self._on_packet(data, due)
        return encoded_packet(data, pts)


def encoded_packet(payload: bytes, pts: int) -> Packet[Any]:
    """What an outgoing track hands aiortc to send as it is: an Opus payload at RTP time `pts`."""
    packet = Packet(payload)
    packet.pts = pts
    packet.time_base = TIME_BASE
    return packet


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
