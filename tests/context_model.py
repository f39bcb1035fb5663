"""A hand-made text model for the context tests: abusive only when 예쁘네 and 만날래 meet.

Each of the two words weighs the same in its every feature; the bias is set so that
either word alone stays under the 0.6 threshold and both in one sentence reach it.
Written with the product's own write_model, loaded with its own loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moderation.text_model import Features, word_features, word_form, write_model
from moderation.text_model_config import TEXT_MODEL_LABELS

DIM = 1 << 12
CARRIERS = ("예쁘네", "만날래")
WEIGHT, BIAS = 3.0, -8.5


def write_context_model(folder: Path) -> Path:
    weights = np.zeros((len(TEXT_MODEL_LABELS), DIM), dtype=np.float32)
    for word in CARRIERS:
        for f in word_features([word_form(word)], Features(DIM))[0]:
            weights[0, f] = WEIGHT
    write_model(folder, TEXT_MODEL_LABELS, weights, np.array([BIAS, -30.0]), {"version": "tm-context-double"})
    return folder
