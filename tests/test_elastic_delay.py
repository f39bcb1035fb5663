"""The elastic delay through the real DelayLine, on a simulated clock: playout slows
(pitch kept) while a decision is pending, up to delay.max_s, and catches up in pauses only.

The customer's "speech" is a 170 Hz tone with a harmonic (a pitch period of 282.35
samples at 48 kHz, not a whole number of samples), pauses are digital silence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from relay.config import DelayConfig
from relay.media import stretch
from relay.media.delay_line import DelayLine

RATE = 48000
FS = 960
FRAME_S = FS / RATE
D = 1.0
MAX = 1.5
F0 = 170.0
AMP = 8000.0


@dataclass
class Decisions:
    """Test double of the watermark: what moderation has judged so far."""

    cleared: float = 0.0
    heard: float = 0.0

    def cleared_until(self) -> float:
        return self.cleared

    def heard_until(self) -> float:
        return self.heard


def voice(n: np.ndarray) -> np.ndarray:
    t = n / RATE
    return AMP * (0.7 * np.sin(2 * np.pi * F0 * t) + 0.3 * np.sin(2 * np.pi * 2 * F0 * t + 0.5))


def call_audio(pattern: list[tuple[str, float]]) -> np.ndarray:
    """("voice" | "pause", seconds) pieces laid end to end, int16."""
    pieces, pos = [], 0
    for kind, seconds in pattern:
        n = np.arange(pos, pos + round(seconds * RATE))
        pieces.append(voice(n) if kind == "voice" else np.zeros(n.size))
        pos += n.size
    return np.concatenate(pieces).astype(np.int16)


def run(line: DelayLine, audio: np.ndarray, on_frame=None) -> tuple[np.ndarray, list[float]]:  # type: ignore[no-untyped-def]
    """Push frame k at wall k * 20 ms, pull whenever a pull is due until the audio has
    played; the delay applied at every 20 ms tick."""
    frames, per_pull = audio.size // FS, line.frame_samples // FS
    out, delays = [], []
    for k in range(frames + round(MAX / FRAME_S) + 5):
        wall = k * FRAME_S
        if k < frames:
            line.push(k * FS, audio[k * FS : (k + 1) * FS], wall)
        if on_frame is not None:
            on_frame(line, wall)
        if k % per_pull == 0:
            out.append(line.pull(wall))
        delays.append(line.elastic.delay_s)
    return np.concatenate(out), delays


def elastic_line(decisions: Decisions, pull_frames: int = 1, **overrides: float) -> DelayLine:
    """`pull_frames` 20 ms frames a pull (the call pulls one 60 ms packet: 3)."""
    config = DelayConfig(delay_s=D, max_s=MAX, **overrides)  # type: ignore[arg-type]
    return DelayLine(config, decisions, frame_samples=pull_frames * FS)


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum)) * RATE / x.size


@pytest.mark.parametrize("frame_samples", [FS, 3 * FS])
def test_splice_repeats_the_most_whole_pitch_periods_that_fit(frame_samples: int) -> None:
    x = voice(np.arange(frame_samples)).astype(np.float32)
    lo, hi, crossfade = stretch.lag_bounds(RATE, frame_samples)
    lag, likeness = stretch.best_lag(x, lo, hi, crossfade)
    period = RATE / F0
    # Every whole period matches: the longest that fits saves the most a frame.
    assert likeness > 0.99 and abs(lag - (hi // period) * period) < 1.0, (lag, hi)
    out = stretch.splice(x, lag, crossfade)
    assert (
        out.size == frame_samples
        and np.array_equal(out[:lag], x[:lag])
        and np.array_equal(out[-10:], x[frame_samples - lag - 10 : frame_samples - lag])
    )


@pytest.mark.parametrize("pull_frames", [1, 3])
def test_pending_decision_stretches_with_pitch_kept_no_click_and_bounded(pull_frames: int) -> None:
    decisions = Decisions()  # nothing judged: every frame's decision is pending
    audio = call_audio([("voice", 4.0)])
    line = elastic_line(decisions, pull_frames)
    out, delays = run(line, audio)
    # Grows no faster than the rate bound allows (0.2 s per s, plus one spliced period),
    # and stops at max_s.
    playing = [k for k, d in enumerate(delays) if k * FRAME_S >= D]
    for k in playing:
        allowed = D + (k * FRAME_S - D) * (1 - 0.8) + stretch.PERIOD_MAX_S + 1e-9
        assert delays[k] <= min(allowed, MAX + 1e-9), (k, delays[k])
    assert max(delays) == pytest.approx(MAX, abs=0.015)
    stats = line.stats()
    assert stats.stretched_s == pytest.approx((MAX - D) / (1 - 0.8), abs=0.1)
    assert stats.delay_p95_s == pytest.approx(MAX, abs=0.02) and stats.delay_now_s == pytest.approx(MAX, abs=0.015)
    # The stretched voice: same pitch, no click (no step larger than the tone's own).
    start = round(D / FRAME_S) * FS + 5 * FS
    stretched = out[start : start + round(2.0 * RATE)].astype(np.float64)
    assert dominant_hz(stretched) == pytest.approx(F0, abs=1.0)
    steepest = float(np.abs(np.diff(audio.astype(np.float64))).max())
    assert float(np.abs(np.diff(stretched)).max()) <= 1.15 * steepest
    # Where it ran slowed, for QA: one stretch from the first pending audio on.
    (run_,) = line.elastic.take_stretches()
    assert run_.start < 0.05 and run_.end == pytest.approx(stats.stretched_s * 0.8, abs=0.1)
    assert run_.delay_s == pytest.approx(MAX, abs=0.015) and line.elastic.take_stretches() == []
    # Nothing was lost: the output holds more voice than went in, none less.
    assert np.count_nonzero(np.abs(out) > 1000) > np.count_nonzero(np.abs(audio) > 1000)


@pytest.mark.parametrize("pull_frames", [1, 3])
def test_catch_up_shortens_pauses_never_speech(pull_frames: int) -> None:
    decisions = Decisions()
    pattern = [("voice", 2.5), ("pause", 1.5), ("voice", 1.0), ("pause", 1.0)]
    audio = call_audio(pattern)
    line = elastic_line(decisions, pull_frames)

    def decide(line: DelayLine, wall: float) -> None:
        if wall >= 2.2:  # the decision lands: nothing is pending any more
            decisions.cleared = decisions.heard = math.inf

    out, delays = run(line, audio, decide)
    grown = delays[round(2.2 / FRAME_S)]
    assert grown > D + 0.1
    # While the first voice still plays (media < 2.5 s), the delay holds.
    voice_playing = [d for k, d in enumerate(delays) if 2.2 <= k * FRAME_S and k * FRAME_S - d < 2.45]
    assert voice_playing and max(voice_playing) - min(voice_playing) < 1e-9
    # In the pause it comes back to the base delay, before the second voice plays ...
    second = [d for k, d in enumerate(delays) if 4.0 <= k * FRAME_S - d < 5.0]
    assert second and all(d == pytest.approx(D) for d in second)
    assert line.stats().pause_cut_s == pytest.approx(grown - D, abs=1e-6)
    # ... which plays bit for bit, at the base delay again.
    k0 = round((4.0 + D) / FRAME_S) * FS
    assert np.array_equal(out[k0 : k0 + RATE], audio[round(4.0 * RATE) : round(5.0 * RATE)])
    # Every voice sample was played (the stretch added some): speech was never cut.
    assert np.count_nonzero(np.abs(out) > 1000) >= np.count_nonzero(np.abs(audio) > 1000)


def test_a_provisional_span_ahead_is_a_pending_decision() -> None:
    decisions = Decisions(cleared=math.inf, heard=math.inf)
    line = elastic_line(decisions)
    line.add_mute(1.2, 1.6, provisional=True, reason="keyword_prefix:insult")
    _, delays = run(line, call_audio([("voice", 3.0)]))
    assert max(delays) > D + 0.05
    fixed = elastic_line(Decisions(cleared=math.inf, heard=math.inf))
    fixed.add_mute(1.2, 1.6, reason="keyword:insult")  # a final decision: nothing to wait for
    assert max(run(fixed, call_audio([("voice", 3.0)]))[1]) == D


def test_no_decision_coming_means_no_stretch() -> None:
    from relay.media.watermark import ClearNothing

    line = DelayLine(DelayConfig(delay_s=D, max_s=MAX), ClearNothing())
    _, delays = run(line, call_audio([("voice", 2.0)]))
    assert set(delays) == {D} and line.stats().stretched_s == 0.0


def test_config_bounds() -> None:
    for bad in ({"stretch_min_rate": 0.3}, {"catchup_rate": 0.5}, {"max_s": 40.0}, {"pause_gate_dbfs": 3.0}):
        with pytest.raises(ValueError, match="delay."):
            DelayConfig(**bad).validate()  # type: ignore[arg-type]
    # max_s at or below delay_s: a fixed delay.
    assert not DelayLine(DelayConfig(delay_s=2.0, max_s=1.5), Decisions()).elastic.enabled


def play_changing(
    line: DelayLine,
    audio: np.ndarray,
    changes: dict[int, DelayConfig],
    tail_s: float = 3.0,
    transit: Callable[[float], float] = lambda wall: 0.0,
) -> tuple[np.ndarray, list[float]]:
    """As run(), with line.reconfigure(changes[k]) before the pull at frame k, and frame k
    arriving transit(wall) seconds after it was sent."""
    frames, per_pull = audio.size // FS, line.frame_samples // FS
    out, delays = [], []
    for k in range(frames + round(tail_s / FRAME_S)):
        wall = k * FRAME_S
        if k < frames:
            line.push(k * FS, audio[k * FS : (k + 1) * FS], wall + transit(wall))
        if k in changes:
            line.reconfigure(changes[k])
        if k % per_pull == 0:
            out.append(line.pull(wall))
        delays.append(line.elastic.delay_s)
    return np.concatenate(out), delays


def silent_runs_s(x: np.ndarray, level: float = 1000.0) -> list[float]:
    """Lengths of the runs where |x| stays below level, in seconds."""
    quiet = np.concatenate(([False], np.abs(x) < level, [False]))
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    return [(b - a) / RATE for a, b in zip(edges[::2], edges[1::2], strict=True)]


def assert_no_click_no_gap(out: np.ndarray, audio: np.ndarray) -> None:
    steepest = float(np.abs(np.diff(audio.astype(np.float64))).max())
    assert float(np.abs(np.diff(out.astype(np.float64))).max()) <= 1.15 * steepest
    # Silence in the output is the customer's pauses (0.5 s or more) or a tone's zero
    # crossing: a gap in the voice would be a silent run between the two.
    assert all(r < 0.005 or r >= 0.4 for r in silent_runs_s(out)), sorted(silent_runs_s(out))
    # Every voice sample played, but for the call's first fade-in (5 ms).
    assert np.count_nonzero(np.abs(out) > 1000) >= np.count_nonzero(np.abs(audio) > 1000) - 0.005 * RATE


def test_a_live_rise_stretches_to_the_new_delay_without_a_gap() -> None:
    decisions = Decisions(cleared=math.inf, heard=math.inf)  # nothing pending: only the rebuild stretches
    audio = call_audio([("voice", 3.0), ("pause", 1.0), ("voice", 4.0), ("pause", 2.0), ("voice", 1.0)])
    line = elastic_line(decisions)
    small = line.memory_bytes()
    at = round(2.0 / FRAME_S)
    risen = DelayConfig(delay_s=2.0, max_s=2.5)
    out, delays = play_changing(line, audio, {at: risen})
    assert set(delays[:at]) == {D}
    # It grows frame by frame (one pitch period at most), no faster than the stretch's rate bound.
    steps = np.diff(delays[at - 1 :])
    assert steps.max() <= stretch.PERIOD_MAX_S + 1e-9
    for k in range(at, len(delays)):
        assert delays[k] <= D + ((k - at + 1) * FRAME_S) * (1 - 0.8) + stretch.PERIOD_MAX_S + 1e-9
    reached = next(k for k, d in enumerate(delays) if d >= 2.0 - 1e-9)
    assert (reached - at) * FRAME_S == pytest.approx((2.0 - D) / (1 - 0.8), abs=0.5)
    assert max(delays) <= 2.0 + stretch.PERIOD_MAX_S + 1e-9
    # The splice's overshoot (under one period) was taken back in the pause that followed.
    assert delays[-1] == pytest.approx(2.0, abs=1e-9) and line.stats().delay_now_s == pytest.approx(2.0)
    assert_no_click_no_gap(out, audio)
    # The ring grew once, for the new longest delay, content kept; memory stays bounded.
    assert line._capacity == line._capacity_for(risen)
    assert small < line.memory_bytes() <= (2.5 + risen.jitter_margin_s + 0.1) * RATE * 3 + 10_000
    stats = line.stats()
    assert stats.stretched_s == pytest.approx((2.0 - D) / (1 - 0.8), abs=0.5)
    assert D < stats.delay_mean_s < 2.0 and stats.delay_p95_s == pytest.approx(2.0, abs=0.02)


def test_a_rise_reaches_its_delay_while_playout_slews_after_a_transit_step() -> None:
    """Under load every frame arrives 40 ms later for a while: the transit envelope steps,
    and playout slews after it for 20 s (drift_max_ppm). The rise must not wait for that;
    it did, and stopped short of the new delay for as long (a supervisor's rise in CI)."""
    decisions = Decisions(cleared=math.inf, heard=math.inf)
    audio = call_audio([("voice", 14.0), ("pause", 1.0)])
    line = elastic_line(decisions, pull_frames=3)  # one 60 ms packet a pull, as the call
    at = round(5.0 / FRAME_S)  # the envelope has stepped (it spans 3 s): playout slews
    out, delays = play_changing(
        line,
        audio,
        {at: DelayConfig(delay_s=1.5, max_s=1.5)},
        transit=lambda wall: 0.04 if wall >= 1.0 else 0.0,
    )
    reached = next(k for k, d in enumerate(delays) if d >= 1.5 - 1e-9)
    # At the rate bound, as without the step (it took twice as long splicing one period a packet).
    assert (reached - at) * FRAME_S == pytest.approx((1.5 - D) / (1 - 0.8), abs=0.5)
    assert delays[-1] == pytest.approx(1.5, abs=stretch.PERIOD_MAX_S)
    assert_no_click_no_gap(out, audio)


def test_a_live_fall_waits_for_a_pause_and_never_cuts_speech() -> None:
    decisions = Decisions(cleared=math.inf, heard=math.inf)
    audio = call_audio([("voice", 4.0), ("pause", 3.5), ("voice", 2.0), ("pause", 1.0)])
    line = DelayLine(DelayConfig(delay_s=2.0, max_s=2.0), decisions)  # a fixed delay
    at = round(3.0 / FRAME_S)
    out, delays = play_changing(line, audio, {at: DelayConfig(delay_s=1.0, max_s=1.0)})
    # While the first voice still plays (media < 4 s), the delay holds at 2 s ...
    voice_playing = [d for k, d in enumerate(delays) if k * FRAME_S - d < 3.95]
    assert set(voice_playing) == {2.0}
    # ... it comes down in the pause, to the new delay before the second voice plays ...
    second = [d for k, d in enumerate(delays) if 7.5 <= k * FRAME_S - d < 9.5]
    assert second and all(d == pytest.approx(1.0) for d in second)
    assert line.stats().pause_cut_s == pytest.approx(1.0, abs=1e-6)
    # ... which plays bit for bit at 1 s.
    k0 = round((7.5 + 1.0) / FRAME_S) * FS
    assert np.array_equal(out[k0 : k0 + RATE], audio[round(7.5 * RATE) : round(8.5 * RATE)])
    assert_no_click_no_gap(out, audio)


def test_a_rise_during_a_beep_waits_for_the_beep_to_end() -> None:
    decisions = Decisions(cleared=math.inf, heard=math.inf)
    audio = call_audio([("voice", 6.0), ("pause", 1.0)])
    line = DelayLine(DelayConfig(delay_s=D, max_s=D, mute_sound="beep"), decisions)
    line.add_mute(1.0, 2.5, reason="keyword:insult")
    at = round(2.0 / FRAME_S)  # media 1.0: the beep has just begun
    _, delays = play_changing(line, audio, {at: DelayConfig(delay_s=1.5, max_s=1.5, mute_sound="beep")})
    beeping = [d for k, d in enumerate(delays) if at <= k and k * FRAME_S - d < 2.5]
    assert beeping and set(beeping) == {D}
    assert delays[-1] == pytest.approx(1.5, abs=stretch.PERIOD_MAX_S)


def test_a_live_policy_change_mutes_undecided_audio_from_the_next_frame() -> None:
    from relay.media.watermark import ClearNothing

    audio = call_audio([("voice", 4.0)])
    line = DelayLine(DelayConfig(delay_s=D, max_s=D), ClearNothing())
    at = round(2.0 / FRAME_S)
    out, _ = play_changing(line, audio, {at: DelayConfig(delay_s=D, max_s=D, undecided_policy="mute")}, tail_s=1.0)
    assert np.count_nonzero(out[: at * FS]) > 0.9 * (at * FS - round(D * RATE))
    fade = round(line.config.fade_ms * RATE / 1000)
    assert not np.any(out[at * FS + fade :])
    steepest = float(np.abs(np.diff(audio.astype(np.float64))).max())
    assert float(np.abs(np.diff(out.astype(np.float64))).max()) <= 1.15 * steepest
