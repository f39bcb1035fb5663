"""ClearAll: the watermark before moderation exists."""

from __future__ import annotations

import math

from relay.media.watermark import ClearAll, Watermark


def test_clear_all_clears_everything() -> None:
    watermark: Watermark = ClearAll()
    assert watermark.cleared_until() == math.inf
    assert 1e9 < watermark.cleared_until()
