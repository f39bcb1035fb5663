"""The prompt mixed into the counselor's Opus packets: both are heard, the timeline kept,
and once the prompt is over packets go through untouched."""

from __future__ import annotations

import numpy as np
import pytest

from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.media.opus import OpusVoiceDecoder, OpusVoiceEncoder
from relay.webrtc.prompt_mix import PromptMix


def _tone(hz: float, frames: int, amplitude: float = 0.3) -> np.ndarray:
    n = np.arange(frames * FRAME_SAMPLES)
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * n / RATE)).astype(np.int16)


def _level(x: np.ndarray, hz: float) -> float:
    t = np.arange(x.size) / RATE
    return float(2 * np.abs(np.dot(x.astype(np.float64), np.exp(-2j * np.pi * hz * t))) / x.size)


@pytest.mark.parametrize("frames", [1, 3])
def test_prompt_is_mixed_then_packets_pass_untouched(frames: int) -> None:
    """`frames`: 20 ms frames per counselor packet (webrtc.uplink_ptime_ms 20 or 60)."""
    size = frames * FRAME_SAMPLES
    count = 40 // frames
    voice = _tone(900.0, count * frames)
    encoder = OpusVoiceEncoder(frames=frames)
    packets = [encoder.encode(voice[i * size : (i + 1) * size]) for i in range(count)]
    mix = PromptMix(_tone(2000.0, 18))  # 0.36 s of prompt
    assert mix.mix(packets[0]) == packets[0]  # not started: forwarded as it came
    mix.start()
    out = [mix.mix(p) for p in packets[1:]]
    assert not mix.playing and mix.plays == 1
    mixed = 18 // frames
    assert out[mixed:] == packets[mixed + 1 :]  # the prompt's packets, then the counselor's own
    assert all(p != q for p, q in zip(out[:mixed], packets[1:]))
    decoder = OpusVoiceDecoder()
    decoded = [decoder.decode(p) for p in out[:mixed]]
    assert {d.size for d in decoded} == {size}  # the counselor's packet length is kept
    # The mix's decoder joins the counselor's stream mid-way: their voice settles in ~0.1 s.
    heard = np.concatenate(decoded)[FRAME_SAMPLES * 8 :]
    assert _level(heard, 2000.0) > 8000 and _level(heard, 900.0) > 8000
    assert mix.duration_s == 0.36
