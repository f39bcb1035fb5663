"""A spoken prompt for the customer (the escalation warning), read once at start-up.

16-bit PCM WAV at any rate, mono or stereo, becomes int16 mono at the media path's rate,
so it can be mixed sample for sample into what the customer hears. A bad file stops the
server at start (the message names the file), never a call.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from relay.media.audio_format import RATE

SHIPPED_WARNING = Path(__file__).resolve().parent / "prompts" / "escalation_warning_ko.wav"
MAX_PROMPT_S = 30.0


class PromptError(ValueError):
    pass


def load_prompt(path: str | Path, gain: float = 1.0, rate: int = RATE) -> np.ndarray:
    """int16 mono at `rate`, scaled by `gain` (clipped)."""
    try:
        with wave.open(str(path), "rb") as wav:
            source_rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise PromptError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise PromptError(f"{path}: not a PCM WAV file ({exc})") from None
    if width != 2:
        raise PromptError(f"{path}: {8 * width}-bit samples; the prompt must be 16-bit PCM")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if channels > 1:
        x = x[: x.size - x.size % channels].reshape(-1, channels).mean(axis=1)
    if x.size == 0:
        raise PromptError(f"{path}: the file holds no audio")
    if x.size / source_rate > MAX_PROMPT_S:
        raise PromptError(f"{path}: {x.size / source_rate:.1f} s is longer than {MAX_PROMPT_S:.0f} s")
    if source_rate != rate:
        # Linear interpolation: a prompt is speech heard once, not a measurement.
        n = round(x.size * rate / source_rate)
        x = np.interp(np.arange(n) * (source_rate / rate), np.arange(x.size), x)
    return np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)
