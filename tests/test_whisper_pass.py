"""moderation/whisper_pass.py pieces that need no model: the encoder window's size and
what its padding holds."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from moderation.speech import SAMPLE_RATE
from moderation.whisper_pass import silence_level, window_frames


@pytest.mark.parametrize("level", [0.0, 1e-4, 0.1])
def test_silence_level_is_what_zeros_after_the_clip_give(level: float) -> None:
    # A near-silent clip floors at -1.5, a clip of speech at its own maximum less 2.
    extractor = FeatureExtractor(feature_size=80)
    clip = (level * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32)
    after = extractor(np.concatenate([clip, np.zeros(2 * SAMPLE_RATE, np.float32)]))[:, 150:]
    assert silence_level(extractor(clip)) == pytest.approx(float(after.min()), abs=1e-5)
    assert float(after.max()) == pytest.approx(float(after.min()), abs=1e-5)


def test_window_is_the_clip_plus_padding_within_whispers_30_s() -> None:
    assert window_frames(500, 2.0) >= 700
    assert window_frames(2900, 2.0) == 3000
    assert window_frames(100, 2.0, full=True) == 3000
