"""MediaClock (pts -> call media time) and TransitEnvelope (anchor and drift)."""

from __future__ import annotations

import pytest

from relay.media.media_clock import MediaClock, TransitEnvelope, pts_delta

RATE = 48000
FS = 960
WRAP = 1 << 32


def clock() -> MediaClock:
    return MediaClock(rate=RATE, reanchor_threshold_s=2.0)


def test_pts_delta_is_signed_and_wraps() -> None:
    assert pts_delta(1960, 1000) == 960
    assert pts_delta(1000, 1960) == -960
    assert pts_delta(100, WRAP - 860) == 960
    assert pts_delta(WRAP - 860, 100) == -960


def test_first_frame_is_media_zero_and_pts_places_the_rest() -> None:
    c = clock()
    pts0 = 3_000_000_000
    assert c.place(pts0, "rx", 10.0, None, FS) == 0
    assert c.place(pts0 + FS, "rx", 10.02, 960, FS) == FS
    # Arrival does not matter, pts does: a frame arriving very late still lands in place.
    assert c.place(pts0 + 2 * FS, "rx", 11.5, 72000, FS) == 2 * FS
    assert c.reanchors == 0


def test_loss_leaves_a_gap_and_reordering_lands_in_place() -> None:
    c = clock()
    c.place(0, "rx", 0.0, None, FS)
    assert c.place(5 * FS, "rx", 0.1, 5 * FS, FS) == 5 * FS  # frames 1..4 lost (for now)
    assert c.place(3 * FS, "rx", 0.11, 5 * FS, FS) == 3 * FS  # one of them arrives late
    assert c.place(6 * FS, "rx", 0.12, 6 * FS, FS) == 6 * FS
    assert c.reanchors == 0
    assert c.newest_end == 7 * FS


def test_wrap_is_continuous() -> None:
    c = clock()
    pts = WRAP - 2 * FS
    for k in range(5):
        assert c.place((pts + k * FS) % WRAP, "rx", k * 0.02, k * FS, FS) == k * FS
    assert c.reanchors == 0


def test_pts_beyond_32_bits_is_taken_modulo() -> None:
    c = clock()
    c.place(WRAP - FS, "rx", 0.0, None, FS)
    assert c.place(WRAP, "rx", 0.02, FS, FS) == FS  # unwrapped input behaves the same


def test_step_within_threshold_is_placed_by_pts() -> None:
    c = clock()
    c.place(0, "rx", 0.0, None, FS)
    media = c.place(round(1.9 * RATE), "rx", 0.02, FS, FS)  # wall clock disagrees: still pts
    assert media == round(1.9 * RATE)
    assert c.reanchors == 0


@pytest.mark.parametrize("step_s", [30.0, -30.0, 2.5, -2.5])
def test_jump_beyond_threshold_reanchors_at_expected(step_s: float) -> None:
    c = clock()
    for k in range(10):
        c.place(k * FS, "rx", k * 0.02, k * FS, FS)
    media = c.place((10 * FS + round(step_s * RATE)) % WRAP, "rx", 0.2, 10 * FS + 7, FS)
    assert media == 10 * FS + 7
    assert c.reanchors == 1
    # The new timeline then continues by pts from the re-anchored frame.
    assert c.place((11 * FS + round(step_s * RATE)) % WRAP, "rx", 0.22, 11 * FS, FS) == 11 * FS + 7


def test_reanchor_never_lands_before_newest_media() -> None:
    c = clock()
    for k in range(10):
        c.place(k * FS, "rx", k * 0.02, k * FS, FS)
    back = (9 * FS - 5 * RATE) % WRAP  # pts stepped back 5 s
    assert c.place(back, "rx", 0.2, 4 * FS, FS) == 10 * FS  # expected is behind the newest audio
    assert c.place(55, "other", 0.22, None, FS) == 11 * FS  # no estimate at all
    assert c.reanchors == 2


def test_new_source_reanchors_even_with_plausible_pts() -> None:
    c = clock()
    c.place(1000, "rx1", 0.0, None, FS)
    c.place(1000 + FS, "rx1", 0.02, FS, FS)
    assert c.place(1000 + 2 * FS + 4800, "rx2", 0.04, 2 * FS, FS) == 2 * FS
    assert c.reanchors == 1


def test_sender_pause_confirmed_by_wall_clock_is_not_a_reanchor() -> None:
    c = clock()
    c.place(0, "rx", 0.0, None, FS)
    gap = 10 * RATE  # ten seconds of DTX: pts and the wall clock both moved on
    assert c.place(gap, "rx", 10.0, gap + 300, FS) == gap
    assert c.reanchors == 0
    # The same forward step with the wall clock saying "no time passed" is a new timeline.
    assert c.place(3 * gap, "rx", 10.02, gap + FS, FS) == gap + FS
    assert c.reanchors == 1


def test_envelope_level_is_recent_minimum() -> None:
    env = TransitEnvelope(bucket_s=1.0, level_buckets=3)
    assert env.level() is None
    for t, transit in [(0.1, 0.09), (0.5, 0.05), (1.2, 0.07), (2.4, 0.08), (3.3, 0.075)]:
        env.add(t, transit)
    # Buckets 1..3 are the newest three: bucket 0's 0.05 has aged out.
    assert env.level() == pytest.approx(0.07)
    env.add(3.9, 0.06)
    assert env.level() == pytest.approx(0.06)
    env.reset()
    assert env.level() is None and len(env) == 0


def test_envelope_slope_finds_drift_under_jitter() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    env = TransitEnvelope()
    slope = -250e-6  # a sender 250 ppm fast
    for k in range(3000):  # 60 s of frames
        t = k * 0.02
        env.add(t, 0.05 + slope * t + max(0.0, rng.uniform(-0.01, 0.05)))
    measured = env.slope()
    assert measured is not None
    assert measured == pytest.approx(slope, abs=20e-6)


def test_envelope_slope_needs_a_baseline() -> None:
    env = TransitEnvelope()
    for k in range(150):  # 3 s: too short to tell drift from jitter
        env.add(k * 0.02, 0.05 + 0.001 * k)
    assert env.slope() is None
