"""The prompt mixed into the counselor's Opus packets: both are heard, the timeline kept,
and once the prompt is over packets go through untouched."""

from __future__ import annotations

import numpy as np

from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.webrtc.prompt_mix import PromptMix
from relay.webrtc.tracks import OpusVoiceDecoder, OpusVoiceEncoder, mono_frame


def _tone(hz: float, frames: int, amplitude: float = 0.3) -> np.ndarray:
    n = np.arange(frames * FRAME_SAMPLES)
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * n / RATE)).astype(np.int16)


def _level(x: np.ndarray, hz: float) -> float:
    t = np.arange(x.size) / RATE
    return float(2 * np.abs(np.dot(x.astype(np.float64), np.exp(-2j * np.pi * hz * t))) / x.size)


def test_prompt_is_mixed_then_packets_pass_untouched() -> None:
    voice = _tone(900.0, 40)
    encoder = OpusVoiceEncoder()
    packets = [
        bytes(encoder.encode(mono_frame(voice[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES], i * FRAME_SAMPLES)))
        for i in range(40)
    ]
    mix = PromptMix(_tone(2000.0, 20))  # 0.4 s of prompt
    assert mix.mix(0, packets[0]) == packets[0]  # not started: forwarded as it came
    mix.start()
    out = [mix.mix(i * FRAME_SAMPLES, p) for i, p in enumerate(packets[1:], start=1)]
    assert not mix.playing and mix.plays == 1
    assert out[20:] == packets[21:]  # the prompt's 20 frames, then the counselor's own packets
    decoder = OpusVoiceDecoder()
    # The mix's decoder joins the counselor's stream mid-way: their voice settles in ~0.1 s.
    heard = np.concatenate([decoder.decode(p) for p in out[:20]])[FRAME_SAMPLES * 8 :]
    assert _level(heard, 2000.0) > 8000 and _level(heard, 900.0) > 8000
    assert mix.duration_s == 0.4
