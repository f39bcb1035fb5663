"""48 kHz int16 -> 16 kHz float32, streaming."""

from __future__ import annotations

import numpy as np

from moderation.resample import Resampler48kTo16k


def tone(freq: float, seconds: float, amp: float = 0.5, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def level_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def test_frames_of_960_give_320_samples_of_float32() -> None:
    r = Resampler48kTo16k()
    out = r.process(np.zeros(960, dtype=np.int16))
    assert out.dtype == np.float32 and out.shape == (320,)


def test_speech_band_tone_comes_through_at_the_right_frequency_and_level() -> None:
    x = tone(1000, 1.0)
    y = Resampler48kTo16k().process(x)
    assert len(y) == 16000
    body = y[1600:]  # past the filter's start-up
    spec = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    peak_hz = np.fft.rfftfreq(len(body), 1 / 16000)[spec.argmax()]
    assert abs(peak_hz - 1000) < 5
    assert abs(level_db(body) - level_db(x[4800:] / 32768)) < 0.2
    # Compared sample by sample with an ideal 16 kHz tone, shifted by the filter delay.
    t = np.arange(len(y)) / 16000 - Resampler48kTo16k.delay_s
    ideal = 0.5 * np.sin(2 * np.pi * 1000 * t)
    assert np.max(np.abs(y[1600:] - ideal[1600:])) < 0.01


def test_chunked_stream_equals_whole_stream() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(48000) * 5000).astype(np.int16)
    whole = Resampler48kTo16k().process(x)
    r = Resampler48kTo16k()
    parts, i = [], 0
    for size in [960, 1, 2, 500, 961, 3, 7000] * 20:
        if i >= len(x):
            break
        parts.append(r.process(x[i : i + size]))
        i += size
    chunked = np.concatenate(parts)
    assert len(chunked) == len(whole)
    assert np.max(np.abs(chunked - whole)) < 1e-6


def test_frame_boundaries_do_not_click() -> None:
    r = Resampler48kTo16k()
    x = tone(440, 0.5)
    y = np.concatenate([r.process(x[i : i + 960]) for i in range(0, len(x), 960)])
    # A 440 Hz tone at 0.5 changes by at most 2*pi*440/16000*0.5 ~ 0.087 per sample.
    assert np.max(np.abs(np.diff(y[200:]))) < 0.1


def test_content_above_8khz_is_not_aliased_into_the_band() -> None:
    y = Resampler48kTo16k().process(tone(10000, 1.0))  # would fold to 6 kHz
    assert level_db(y[1600:]) < level_db(tone(10000, 1.0) / 32768) - 55


def test_interleaved_stereo_is_averaged() -> None:
    left = tone(1000, 0.2)
    stereo = np.stack([left, np.zeros_like(left)], axis=1).ravel()
    y = Resampler48kTo16k().process(stereo, channels=2)
    mono = Resampler48kTo16k().process(left)
    assert len(y) == len(mono)
    assert np.allclose(y, mono / 2, atol=1e-4)
