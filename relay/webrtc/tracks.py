"""The paced outgoing track, and the Opus voice encoder and decoder it and the call use.

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
decodes any Opus packet length (RFC 7587). The track pulls a packet's frames from its
source one by one at their own playout times, all when the first is due: the first is
judged exactly on time, the later ones up to (frames - 1) * 20 ms before they play.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, CodecContext, Packet

from relay.media.audio_format import FRAME_S, FRAME_SAMPLES, RATE, TIME_BASE

# If the event loop stalls longer than this, skip ahead instead of sending a burst.
MAX_LATE_S = 0.2
# What a browser sends for a voice: Opus's voice mode (SILK or hybrid) at 32 kb/s. The
# test and bench peers send this, and the prompt mix re-encodes the counselor's packets so.
OPUS_APPLICATION = "voip"
OPUS_BITRATE = 32000
# The delayed stream, the browser's Opus decoded and encoded again, goes out in CELT mode
# (libopus "restricted low delay") at 40 kb/s. Measured on espeak-ng Korean sent through
# a browser-like encode (complexity 10) and then this one, PESQ wideband against the
# original: voice mode at 32 kb/s 3.29, CELT at 40 kb/s 3.41 (the browser's encode alone
# 3.97), at 90-100 us a frame instead of 210-235: the largest single cost of a call's
# media path. CELT's look-ahead is 2.5 ms instead of 6.5 ms. Its loss concealment is
# weaker than SILK's for speech; no FEC was sent in voice mode either.
DELAYED_APPLICATION = "lowdelay"
DELAYED_BITRATE = 40000
# libopus's effort (0-10; ffmpeg's default is 10). 5 costs about half of 10 a frame;
# speech at this rate does not need the top search effort.
OPUS_COMPLEXITY = 5


class AudioSource(Protocol):
    def pull(self, wall: float) -> np.ndarray:
        """FRAME_SAMPLES of int16 mono audio to be played at monotonic time `wall`."""
        ...


class OpusVoiceEncoder:
    """Mono Opus for a voice, one packet per `frames` 20 ms frames, stamped with the first one's pts."""

    def __init__(self, bitrate: int = OPUS_BITRATE, application: str = OPUS_APPLICATION, frames: int = 1) -> None:
        self.samples = frames * FRAME_SAMPLES  # per packet
        self._codec = CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = {
            "application": application,
            "compression_level": str(OPUS_COMPLEXITY),
            # 40 or 60 ms: one Opus packet of two or three 20 ms frames (RFC 6716 code 1-3).
            "frame_duration": str(frames * round(FRAME_S * 1000)),
        }
        # One frame, refilled for every encode_samples(): building a frame from an array
        # (AudioFrame.from_ndarray) costs more than a copy into this one, 50 times a second.
        self._frame = AudioFrame(format="s16", layout="mono", samples=self.samples)
        self._frame.sample_rate = RATE
        self._frame.time_base = TIME_BASE

    def encode_samples(self, samples: np.ndarray, pts: int) -> Packet[Any]:
        """One packet of `self.samples` int16 mono samples; libopus has read them when this returns."""
        self._frame.planes[0].update(np.asarray(samples, dtype=np.int16).tobytes())
        self._frame.pts = pts
        return self.encode(self._frame)

    def encode(self, frame: AudioFrame) -> Packet[Any]:
        (packet,) = self._codec.encode(frame)
        # The codec shifts pts by its look-ahead; the RTP clock should follow our frames.
        packet.pts = frame.pts
        packet.time_base = TIME_BASE
        return packet


class PacedTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        source: AudioSource,
        clock: Callable[[], float] = time.monotonic,
        encode: bool = True,
        encoder: OpusVoiceEncoder | None = None,
        on_packet: Callable[[Packet[Any], float], None] | None = None,
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
        # Each frame asked for at its own playout time: the source's schedule (the delay
        # line's drift and stretch steering) runs on 20 ms frames whatever the packet.
        samples = self._samples
        for k in range(self._frames):
            samples[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES] = self._source.pull(due + k * FRAME_S)
        self._index += self._frames
        if self._encoder is None:
            return mono_frame(samples, pts)
        packet = self._encoder.encode_samples(samples, pts)
        if self._on_packet is not None:
            self._on_packet(packet, due)
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


class OpusVoiceDecoder:
    """One stream's Opus frames to int16 mono at 48 kHz (libopus downmixes a stereo stream)."""

    def __init__(self) -> None:
        self._codec = CodecContext.create("libopus", "r")
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE

    def decode(self, payload: bytes) -> np.ndarray:
        frames = self._codec.decode(Packet(payload))
        if len(frames) == 1:
            return frames[0].to_ndarray().reshape(-1)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames] or [np.zeros(0, np.int16)])
