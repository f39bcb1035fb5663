"""The audio format of the media path: what aiortc's Opus gives and takes.

Opus in WebRTC runs at 48 kHz; aiortc decodes 20 ms frames of 960 samples and its RTP
timestamps (frame.pts) count 48 kHz samples. Every part of relay/ that counts samples
takes these from here; moderation/ works at 16 kHz and owns its own rate.
"""

from __future__ import annotations

import fractions

RATE = 48000
FRAME_SAMPLES = 960
FRAME_S = FRAME_SAMPLES / RATE
TIME_BASE = fractions.Fraction(1, RATE)


def frames_per_packet(ptime_ms: int) -> int:
    """20 ms frames in an outgoing packet of `ptime_ms` (webrtc.delayed_ptime_ms): whole ones."""
    frames = round(ptime_ms / 1000 / FRAME_S)
    if frames < 1 or abs(frames * FRAME_S * 1000 - ptime_ms) > 1e-6:
        raise ValueError(f"a packet holds whole 20 ms frames, not {ptime_ms} ms")
    return frames
