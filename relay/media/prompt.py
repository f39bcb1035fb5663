"""A spoken prompt for the customer (the escalation warning), read once at start-up.

PCM WAV at any rate and sample width, mono or stereo, becomes int16 mono at the media path's rate,
so it can be mixed sample for sample into what the customer hears. A bad file stops the
server at start (the message names the file), never a call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relay.media.audio_format import RATE
from relay.media.wav_file import WavError, read_wav

SHIPPED_WARNING = Path(__file__).resolve().parent / "prompts" / "escalation_warning_ko.wav"
MAX_PROMPT_S = 30.0


class PromptError(ValueError):
    pass


def load_prompt(path: str | Path, gain: float = 1.0, rate: int = RATE) -> np.ndarray:
    """int16 mono at `rate`, scaled by `gain` (clipped)."""
    try:
        x, source_rate = read_wav(path)
    except WavError as exc:
        raise PromptError(str(exc)) from None
    x *= 32768.0
    if x.size == 0:
        raise PromptError(f"{path}: the file holds no audio")
    if x.size / source_rate > MAX_PROMPT_S:
        raise PromptError(f"{path}: {x.size / source_rate:.1f} s is longer than {MAX_PROMPT_S:.0f} s")
    if source_rate != rate:
        # Linear interpolation: a prompt is speech heard once, not a measurement.
        n = round(x.size * rate / source_rate)
        x = np.interp(np.arange(n) * (source_rate / rate), np.arange(x.size), x)
    return np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)
