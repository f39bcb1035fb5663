"""MuteMap: spans in media seconds, masks in samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relay.media.mute_map import MuteMap, MuteSpan, sample_at

RATE = 48000


def test_add_returns_numbered_spans_sorted_by_start() -> None:
    mutes = MuteMap()
    late = mutes.add(5.0, 6.0, reason="threat")
    early = mutes.add(1.0, 2.0, provisional=True)
    assert late.span_id != early.span_id
    assert early == MuteSpan(early.span_id, 1.0, 2.0, provisional=True, reason="")
    assert mutes.spans() == [early, late]
    assert len(mutes) == 2


@pytest.mark.parametrize("start,end", [(2.0, 2.0), (2.0, 1.0), (-0.5, 1.0), (0.0, math.inf), (math.nan, 1.0)])
def test_invalid_spans_are_rejected(start: float, end: float) -> None:
    mutes = MuteMap()
    with pytest.raises(ValueError):
        mutes.add(start, end)
    assert mutes.spans() == []


def test_lift_removes_once() -> None:
    mutes = MuteMap()
    span = mutes.add(1.0, 2.0, provisional=True)
    other = mutes.add(3.0, 4.0)
    assert mutes.lift(span.span_id) == span
    assert mutes.lift(span.span_id) is None
    assert mutes.lift(12345) is None
    assert mutes.spans() == [other]


def test_spans_returns_a_copy() -> None:
    mutes = MuteMap()
    mutes.add(1.0, 2.0)
    mutes.spans().clear()
    assert len(mutes.spans()) == 1


def test_mask_boundaries_are_exact_in_samples() -> None:
    mutes = MuteMap()
    mutes.add(0.1, 0.2)  # 0.1 * 48000 is 4800.000000000001 in floats: still sample 4800
    mask = mutes.mask(4000, 6000, RATE)
    covered = np.flatnonzero(mask) + 4000
    assert covered[0] == 4800 and covered[-1] == 9599  # end is exclusive
    assert covered.size == 4800


def test_mask_window_clips_spans_and_merges_overlaps() -> None:
    mutes = MuteMap()
    mutes.add(1.0, 1.5)
    mutes.add(1.25, 2.0)
    mutes.add(10.0, 11.0)  # outside the window
    start = 60000
    mask = mutes.mask(start, 48000, RATE)
    expected = np.zeros(48000, dtype=bool)
    expected[: 96000 - start] = True  # 1.25 s .. 2.0 s, window starts inside the first span
    assert np.array_equal(mask, expected)
    assert not mutes.mask(0, 48000, RATE).any()


def test_mask_of_empty_map_is_all_false() -> None:
    mask = MuteMap().mask(-960, 1920, RATE)
    assert mask.dtype == bool and mask.shape == (1920,) and not mask.any()


def test_forget_before_drops_only_spans_that_ended() -> None:
    mutes = MuteMap()
    old = mutes.add(1.0, 2.0)
    straddling = mutes.add(2.5, 4.0)
    future = mutes.add(5.0, 6.0)
    mutes.forget_before(3.0)
    assert mutes.spans() == [straddling, future]
    assert mutes.get(old.span_id) is None
    mutes.forget_before(4.0)
    assert mutes.spans() == [future]


def test_sample_at_rounds_float_noise_not_real_fractions() -> None:
    assert sample_at(0.1, RATE) == 4800
    assert sample_at(1.0, RATE) == 48000
    assert sample_at(1.00001, RATE) == 48001  # 48000.48 samples: next whole sample
    assert sample_at(0.0, RATE) == 0
