"""The watermarks: ClearAll (moderation off), ClearNothing (unavailable), JudgedUntil."""

from __future__ import annotations

import math

from relay.media.watermark import ClearAll, ClearNothing, JudgedUntil, Watermark, judged_until


def test_clear_all_clears_everything() -> None:
    watermark: Watermark = ClearAll()
    assert watermark.cleared_until() == math.inf
    assert 1e9 < watermark.cleared_until()
    assert watermark.heard_until() == math.inf


def test_no_decision_is_coming_when_moderation_is_unavailable() -> None:
    # Nothing is cleared, and nothing is waited for: the elastic delay must not grow.
    watermark: Watermark = ClearNothing()
    assert watermark.cleared_until() == 0.0 and watermark.heard_until() == math.inf


def test_judged_until_hears_the_provisional_tail_and_only_moves_forward() -> None:
    watermark = JudgedUntil()
    watermark.advance(1.0, heard_s=1.6)  # confirmed to 1.0, a provisional word to 1.6
    assert watermark.cleared_until() == 1.0 and watermark.heard_until() == 1.6
    watermark.advance(1.8)  # the tail confirmed: heard never falls behind cleared
    assert watermark.cleared_until() == 1.8 and watermark.heard_until() == 1.8
    watermark.advance(1.2, heard_s=1.5)
    assert watermark.cleared_until() == 1.8 and watermark.heard_until() == 1.8


def test_judged_until_counts_the_provisional_tail_but_never_a_promise_of_none() -> None:
    assert judged_until(ClearAll()) == math.inf
    assert judged_until(ClearNothing()) == 0.0  # heard_until is infinite: no text is coming
    watermark = JudgedUntil()
    watermark.advance(1.0, 2.5)
    assert watermark.cleared_until() == 1.0 and judged_until(watermark) == 2.5
    watermark.advance(3.0, 2.0)
    assert judged_until(watermark) == 3.0
