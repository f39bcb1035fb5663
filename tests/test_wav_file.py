"""relay/media/wav_file.py: every PCM width to the same float samples, and clear errors."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from relay.media.wav_file import WavError, read_wav


def _write(path: Path, width: int, channels: int, frames: bytes, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_width_reads_as_the_same_half_scale_sample(tmp_path: Path, width: int) -> None:
    half = {1: bytes([192]), 2: (16384).to_bytes(2, "little", signed=True)}.get(width)
    if half is None:
        half = (1 << (8 * width - 2)).to_bytes(width, "little", signed=True)
    x, rate = read_wav(_write(tmp_path / "a.wav", width, 1, half * 4))
    assert rate == 16000 and np.allclose(x, 0.5)


def test_channels_are_averaged(tmp_path: Path) -> None:
    frames = np.array([16384, 0, 16384, 0], dtype="<i2").tobytes()
    x, _ = read_wav(_write(tmp_path / "s.wav", 2, 2, frames))
    assert np.allclose(x, 0.25) and x.size == 2


def test_missing_and_foreign_files_are_wav_errors(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "none.wav")
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavError, match="not a PCM WAV file"):
        read_wav(tmp_path / "x.wav")
