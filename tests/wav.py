"""WAV files for Chromium's fake microphone: tone bursts at known times, looped by the browser."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48000


def tone_bursts(
    freq: float,
    onsets: tuple[float, ...],
    loop_s: float,
    burst_s: float = 0.15,
    amplitude: float = 0.4,
    rate: int = RATE,
) -> np.ndarray:
    """`loop_s` seconds of silence with a `burst_s` tone at each onset, as int16 mono.

    Onsets should be irregularly spaced (all pairwise differences distinct modulo loop_s):
    then a delay measured from a looping file has one unambiguous answer.
    """
    out = np.zeros(int(round(loop_s * rate)), dtype=np.float64)
    n = int(round(burst_s * rate))
    t = np.arange(n) / rate
    burst = amplitude * np.sin(2 * np.pi * freq * t)
    fade = int(0.002 * rate)  # 2 ms ramps: a clean onset, no click
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    burst[:fade] *= ramp
    burst[-fade:] *= ramp[::-1]
    for onset in onsets:
        start = int(round(onset * rate))
        out[start : start + n] += burst[: len(out) - start]
    return np.round(out * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path
