"""Gain envelopes and the mute beep, vectorised over one rendered window of samples.

Every silence the delay line makes (loss, mute spans, the undecided policy, replay guard)
goes through one mechanism: a boolean mask over the frame plus `fade` samples of context
on each side becomes gain = min(1, distance to the nearest silenced sample / fade). The
ramps therefore always lie outside the silenced samples, and two silences closer than two
fades merge smoothly instead of clicking twice.
"""

from __future__ import annotations

import numpy as np

_FAR = np.int64(1) << 40

BEEP_HZ = 1000.0
# About -24 dBFS: audible as "something was removed", never louder than speech.
BEEP_AMPLITUDE = 2000.0


def gain_envelope(silence: np.ndarray, fade: int) -> np.ndarray:
    """float32 gain in [0, 1]: 0 on silenced samples, ramping to 1 over `fade` samples."""
    if fade <= 0:
        return (~silence).astype(np.float32)
    idx = np.arange(silence.size, dtype=np.int64)
    # Nearest silenced index at or before / at or after each sample, by running max / min.
    before = np.maximum.accumulate(np.where(silence, idx, -_FAR))
    after = np.minimum.accumulate(np.where(silence, idx, _FAR)[::-1])[::-1]
    distance = np.minimum(idx - before, after - idx)
    return np.minimum(np.float32(1.0), distance.astype(np.float32) / np.float32(fade))


def limit_start(gain: np.ndarray, first: int, previous: float, fade: int) -> None:
    """Keep gain[first:] within one fade's slope of `previous`, the gain last played.

    The envelope is exact when the mask is known in advance; when it changes between
    frames (a late mute, a lifted span, the watermark passing, a playout jump) this keeps
    the output continuous instead of stepping. Works in place.
    """
    if fade <= 0 or first >= gain.size:
        gain[:first] = previous
        return
    ramp = np.arange(1, gain.size - first + 1, dtype=np.float32) / np.float32(fade)
    np.clip(gain[first:], previous - ramp, previous + ramp, out=gain[first:])
    gain[:first] = previous


def beep(start_sample: int, count: int, rate: int) -> np.ndarray:
    """The mute tone for media samples start_sample..+count, phase-locked to media time
    so consecutive frames join without a click."""
    n = np.arange(start_sample, start_sample + count, dtype=np.float64)
    # Reduce the phase first: sin of huge arguments loses precision on long calls.
    phase = (n * BEEP_HZ % rate) / rate
    return (BEEP_AMPLITUDE * np.sin(2.0 * np.pi * phase)).astype(np.float32)
