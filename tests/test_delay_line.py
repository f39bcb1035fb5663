"""DelayLine on a simulated clock: we choose every arrival and every wall time.

The test signal is a ramp, sample value = (media index mod 50000) - 25000, so any output
sample names the media sample it came from (and, between two samples, the fraction).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from relay.config import DelayConfig
from relay.media.delay_line import DelayLine
from relay.media.fades import BEEP_AMPLITUDE, BEEP_HZ
from relay.media.watermark import ClearAll

RATE = 48000
FS = 960
FRAME_S = FS / RATE
D = 1.5
START = 1000.0  # wall time the sender starts (monotonic seconds)
TRANSIT = 0.05  # network transit of the fastest frames
T0 = START + TRANSIT  # media t plays at T0 + t + D
FADE = 240  # 5 ms at 48 kHz, the default fade_ms
PTS_WRAP = 1 << 32


def ramp(n: np.ndarray) -> np.ndarray:
    return ((n % 50000) - 25000).astype(np.int16)


def constant(n: np.ndarray) -> np.ndarray:
    return np.full(n.shape, 12000, dtype=np.int16)


@dataclass
class Frame:
    pts: int
    samples: np.ndarray
    arrival: float
    source: Hashable = 0


@dataclass
class FixedWatermark:
    """Test double: moderation has judged everything before `until`."""

    until: float

    def cleared_until(self) -> float:
        return self.until

    def heard_until(self) -> float:
        return self.until


def make_frames(
    seconds: float,
    *,
    pts0: int = 0,
    ppm: float = 0.0,
    jitter_s: float = 0.0,
    seed: int = 7,
    signal=ramp,
) -> list[Frame]:
    """A sender whose clock runs `ppm` fast; each frame delayed by TRANSIT + jitter.

    Jitter is uniform in [-0.01, jitter_s] clipped at zero: about one frame in seven
    takes the network's fastest path, which is what the transit envelope finds.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(round(seconds / FRAME_S)):
        send = START + k * FRAME_S / (1 + ppm * 1e-6)
        extra = max(0.0, float(rng.uniform(-0.01, jitter_s))) if jitter_s else 0.0
        frames.append(Frame((pts0 + k * FS) % PTS_WRAP, signal(k * FS + np.arange(FS)), send + TRANSIT + extra))
    return frames


def walls(first: float, count: int, step_s: float = FRAME_S) -> list[float]:
    return [first + j * step_s for j in range(count)]


class Player:
    """Interleaves pushes (in arrival order) and pulls (in wall order) as time passes."""

    def __init__(self, line: DelayLine, frames: Sequence[Frame]) -> None:
        self.line = line
        self.queue = sorted(frames, key=lambda f: f.arrival)
        self.next = 0

    def run(self, pull_walls: Sequence[float]) -> np.ndarray:
        out = []
        for wall in pull_walls:
            while self.next < len(self.queue) and self.queue[self.next].arrival <= wall:
                f = self.queue[self.next]
                self.line.push(f.pts, f.samples, f.arrival, f.source)
                self.next += 1
            out.append(self.line.pull(wall))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def play(line: DelayLine, frames: Sequence[Frame], pull_walls: Sequence[float]) -> np.ndarray:
    return Player(line, frames).run(pull_walls)


def assert_close(actual: np.ndarray, expected: np.ndarray, tol: int = 1) -> None:
    """Equal but for float rounding inside fades (a fade gain times a sample may land on .5)."""
    assert actual.shape == expected.shape
    assert np.abs(actual.astype(np.int32) - expected.astype(np.int32)).max(initial=0) <= tol


def new_line(watermark=None, frame_samples: int = FS, **overrides) -> DelayLine:
    """A fixed delay of D unless told otherwise (the elastic delay: tests/test_elastic_delay.py);
    `frame_samples` a pull (the call's: one outgoing packet, 3 * FS)."""
    config = dataclasses.replace(DelayConfig(delay_s=D, max_s=D), **overrides)
    return DelayLine(config, watermark or ClearAll(), frame_samples=frame_samples)


LEAD = 5  # pulls before media 0 plays, so output index LEAD * FS + n is media sample n


def aligned_walls(seconds: float) -> list[float]:
    return walls(T0 + D - LEAD * FRAME_S, round(seconds / FRAME_S) + LEAD)


def media(out: np.ndarray) -> np.ndarray:
    return out[LEAD * FS :]


def fade_in(values: np.ndarray) -> np.ndarray:
    """What the first FADE samples of a stream look like: ramped from silence."""
    gain = np.minimum(1.0, np.arange(1, values.size + 1) / FADE)
    return np.rint(values.astype(np.float64) * gain).astype(np.int16)


def reference(seconds: float, **overrides) -> np.ndarray:
    return play(new_line(**overrides), make_frames(seconds), aligned_walls(seconds))


# ---------------------------------------------------------------------------- schedule


def test_before_first_frame_pull_is_silence() -> None:
    line = new_line()
    for wall in walls(500.0, 10):
        out = line.pull(wall)
        assert out.dtype == np.int16 and out.shape == (FS,)
        assert not out.any()
    assert not line.stats().anchored


def test_exact_schedule_to_the_sample() -> None:
    # Pulls start 0.3 s before media 0 is due, 7 samples off the frame grid.
    first = T0 + D - 0.3 + 7 / RATE
    count = 200
    line = new_line()
    out = play(line, make_frames(5.0), walls(first, count))
    wall_of = first + np.arange(count * FS) / RATE  # playout wall of every output sample
    n = np.rint((wall_of - T0 - D) * RATE).astype(np.int64)
    expected = np.where(n >= 0, ramp(n), 0).astype(np.int16)
    head = n >= 0
    start = int(np.argmax(head))
    assert np.array_equal(out[start + FADE :], expected[start + FADE :])  # to the sample
    assert not out[:start].any()
    assert_close(out[start : start + FADE], fade_in(expected[start : start + FADE]))
    assert start == 0.3 * RATE - 7
    assert line.media_time_at(T0 + D + 1.25) == pytest.approx(1.25, abs=1e-9)
    stats = line.stats()
    assert stats.lost_s == 0 and stats.late_frames == 0 and stats.reanchors == 0
    assert stats.playout_media_s == pytest.approx((count * FS - start) / RATE)


@pytest.mark.parametrize("scenario", ["jitter", "loss", "mute", "beep", "undecided"])
def test_sixty_ms_pulls_play_what_twenty_ms_pulls_play(scenario: str) -> None:
    # The call pulls one 60 ms packet at a time; on a fixed delay that must be the same
    # audio, fades, beep and figures as three 20 ms pulls, sample for sample.
    overrides: dict[str, object] = {"mute_sound": "beep"} if scenario == "beep" else {}
    watermark = FixedWatermark(1.7) if scenario == "undecided" else None
    if scenario == "undecided":
        overrides["undecided_policy"] = "mute"
    frames = make_frames(
        4.0, jitter_s=0.03 if scenario == "jitter" else 0.0, signal=ramp if scenario == "jitter" else constant
    )
    if scenario == "loss":
        frames = [f for i, f in enumerate(frames) if i not in {100, 101, 102, 151}]
    first = T0 + D - 6 * FRAME_S + 11 / RATE  # off the frame grid
    outs, stats = [], []
    for pull in (1, 3):
        line = new_line(watermark, frame_samples=pull * FS, **overrides)
        if scenario in ("mute", "beep"):
            line.add_mute(1.0107, 1.5373)
            line.add_mute(2.2, 2.23)
        outs.append(play(line, frames, walls(first, 216 // pull, pull * FRAME_S)))
        stats.append(line.stats())
    assert np.array_equal(outs[0], outs[1])
    assert stats[0] == stats[1]
    shown = {"jitter": stats[0].playout_media_s, "loss": stats[0].lost_s}.get(scenario, stats[0].muted_s)
    assert shown > 0 and outs[0].any()


def test_listener_waiting_before_first_frame_gets_the_envelope_anchor() -> None:
    # The counselor is pulling before the customer's first frame, and that first frame is
    # 15 ms late (still ahead of the second, so it stays the call's media 0): the anchor
    # must come from the fastest frames, not the first one.
    frames = make_frames(5.0, jitter_s=0.06, seed=4)
    frames[0].arrival = START + TRANSIT + 0.015
    rest = aligned_walls(5.0)
    lead = math.ceil((rest[0] - (START - 1.0)) / FRAME_S)  # from a second before the call
    early = walls(rest[0] - lead * FRAME_S, lead)
    assert rest[0] - early[-1] == pytest.approx(FRAME_S)  # one continuous run of pulls
    out = play(new_line(), frames, early + rest)
    assert not out[: len(early) * FS].any()
    assert np.array_equal(out[len(early) * FS :], reference(5.0))


def test_backward_wall_step_never_replays_heard_audio() -> None:
    line = new_line()
    player = Player(line, make_frames(5.0))
    player.run(aligned_walls(2.0))  # media [0, 2.0) heard
    back = player.run(walls(T0 + D + 1.5, 50))  # the pacer stepped back by half a second
    assert not back[: RATE // 2 - FADE].any()  # what was heard is not heard twice
    assert np.array_equal(back[RATE // 2 + FADE :], ramp(np.arange(2 * RATE + FADE, 2.5 * RATE)))
    assert line.stats().lost_s == 0


def test_late_joining_listener_hears_from_delay_ago() -> None:
    line = new_line()
    frames = make_frames(20.0)
    for f in frames:
        line.push(f.pts, f.samples, f.arrival)
    wall = T0 + 19.0  # media 17.5 plays now
    out = np.concatenate([line.pull(wall + j * FRAME_S) for j in range(3)])
    n = round((wall - T0 - D) * RATE) + np.arange(3 * FS)
    assert np.array_equal(out[FADE:], ramp(n)[FADE:])
    assert_close(out[:FADE], fade_in(ramp(n[:FADE])))  # joining mid-stream fades in


def test_pause_in_pulls_resumes_on_schedule() -> None:
    line = new_line()
    player = Player(line, make_frames(12.0))
    out1 = player.run(aligned_walls(2.0))
    assert np.array_equal(media(out1)[FADE:], ramp(np.arange(FADE, 2 * RATE)))
    # Nobody pulls for 6 s; frames keep coming; then pulls resume.
    resume = T0 + D + 8.0
    out2 = player.run(walls(resume, 50))
    n = 8 * RATE + np.arange(50 * FS)
    assert np.array_equal(out2[FADE:], ramp(n)[FADE:])


# ---------------------------------------------------------------------- loss, order


def test_loss_plays_faded_silence() -> None:
    frames = make_frames(4.0, signal=constant)
    gone = {100, 101, 102}  # media 2.00 .. 2.06 s never arrives
    line = new_line()
    out = media(play(line, [f for i, f in enumerate(frames) if i not in gone], aligned_walls(4.0)))
    gap = slice(100 * FS, 103 * FS)
    assert not out[gap].any()
    assert line.stats().lost_s == pytest.approx(0.06)
    # Ramps lie outside the gap: down before it, up after it, no step anywhere.
    assert out[100 * FS - 1] == round(12000 / FADE)
    assert out[103 * FS] == round(12000 / FADE)
    assert out[100 * FS - FADE - 1] == 12000 and out[103 * FS + FADE] == 12000
    steps = np.abs(np.diff(out[FADE : 190 * FS].astype(np.int32)))
    assert steps.max() <= 12000 / FADE + 1


def test_underrun_after_sender_stops_is_not_loss() -> None:
    line = new_line()
    play(line, make_frames(2.0), aligned_walls(3.0))
    stats = line.stats()
    assert stats.lost_s == 0
    assert stats.underrun_s == pytest.approx(1.0)


def test_reordered_frames_come_out_in_order() -> None:
    frames = make_frames(4.0)
    swapped = list(range(10, 190, 20))
    for i in swapped:  # frame i arrives 5 ms after frame i+1
        frames[i].arrival = frames[i + 1].arrival + 0.005
    line = new_line()
    out = play(line, frames, aligned_walls(4.0))
    assert np.array_equal(out, reference(4.0))
    assert line.stats().reorders == len(swapped)


def test_jitter_does_not_change_output() -> None:
    frames = make_frames(10.0, jitter_s=0.06, seed=3)
    line = new_line()
    out = play(line, frames, aligned_walls(10.0))
    assert np.array_equal(out, reference(10.0))
    stats = line.stats()
    assert stats.reorders > 50  # the jitter really did shuffle arrivals
    assert stats.late_frames == 0 and stats.lost_s == 0


def test_frame_arriving_after_its_playout_is_dropped() -> None:
    frames = make_frames(4.0)
    frames[100].arrival += D + 0.2  # media 2.00 s arrives 0.2 s after it was due
    line = new_line()
    out = media(play(line, frames, aligned_walls(4.0)))
    stats = line.stats()
    assert stats.late_frames == 1
    assert stats.lost_s == pytest.approx(FRAME_S)
    assert not out[100 * FS : 101 * FS].any()


# ------------------------------------------------------------------ pts and sources


def _switch(frames: list[Frame], at: int, pts0: int, source: Hashable = 0) -> None:
    for k, f in enumerate(frames[at:]):
        f.pts = (pts0 + k * FS) % PTS_WRAP
        f.source = source


@pytest.mark.parametrize("step_s", [10.0, -10.0])
def test_pts_jump_reanchors_without_gap(step_s: float) -> None:
    frames = make_frames(6.0)
    _switch(frames, 150, frames[150].pts + round(step_s * RATE))
    line = new_line()
    out = play(line, frames, aligned_walls(6.0))
    assert np.array_equal(out, reference(6.0))
    stats = line.stats()
    assert stats.reanchors == 1 and stats.lost_s == 0


def test_pts_jump_with_jitter_keeps_gap_small() -> None:
    frames = make_frames(8.0, jitter_s=0.06, seed=11)
    # The first frame of the new timeline is 45 ms late and arrives before its successors.
    frames[150].arrival = START + 150 * FRAME_S + TRANSIT + 0.045
    for f in frames[151:160]:
        f.arrival = max(f.arrival, frames[150].arrival + 0.001)
    _switch(frames, 150, 123456789)
    line = new_line()
    out = media(play(line, frames, aligned_walls(8.0)))
    assert line.stats().reanchors == 1
    silent = np.flatnonzero(out[FADE:] == 0)
    runs = np.split(silent, np.flatnonzero(np.diff(silent) != 1) + 1)
    assert max(len(r) for r in runs) <= 0.07 * RATE  # at most the re-anchoring frame's delay
    # Once the old timeline has played out, the anchor has caught up: on schedule again.
    tail = slice(6 * RATE, 7 * RATE)
    assert np.array_equal(out[tail], media(reference(8.0))[tail])


def test_pts_within_threshold_is_loss_not_reanchor() -> None:
    frames = make_frames(6.0)
    del frames[100:150]  # a one-second hole in pts and arrivals alike
    line = new_line()
    out = media(play(line, frames, aligned_walls(6.0)))
    assert line.stats().reanchors == 0
    assert line.stats().lost_s == pytest.approx(1.0)
    assert np.array_equal(out[160 * FS : 200 * FS], ramp(np.arange(160 * FS, 200 * FS)))


def test_long_sender_pause_confirmed_by_wall_clock_is_a_gap() -> None:
    frames = make_frames(10.0)
    del frames[100:300]  # 4 s without frames (DTX, muted mic): pts and wall move together
    line = new_line()
    out = media(play(line, frames, aligned_walls(10.0)))
    assert line.stats().reanchors == 0
    assert np.array_equal(out[310 * FS : 400 * FS], ramp(np.arange(310 * FS, 400 * FS)))


def test_pts_wrap_is_not_a_reanchor() -> None:
    frames = make_frames(4.0, pts0=PTS_WRAP - 50 * FS + 123)
    line = new_line()
    out = play(line, frames, aligned_walls(4.0))
    assert np.array_equal(out, reference(4.0))
    assert line.stats().reanchors == 0


def test_new_source_reanchors_seamlessly() -> None:
    frames = make_frames(6.0, pts0=5555)
    # The new receiver's pts happens to land 0.6 s ahead of the old one: only the change
    # of source says this is a new timeline rather than a short loss.
    _switch(frames, 150, frames[150].pts + 30 * FS, source="reconnected")
    line = new_line()
    out = play(line, frames, aligned_walls(6.0))
    assert line.stats().reanchors == 1
    assert np.array_equal(out, reference(6.0))


# ---------------------------------------------------------------------------- drift


def _measured_delays(out: np.ndarray, pull_walls: list[float], ppm: float, pull_samples: int = FS) -> np.ndarray:
    """Wall time each pull's first output sample plays, minus when the fastest copy of
    that media sample arrived, decoded from the ramp."""
    eps = ppm * 1e-6
    delays = []
    for j, wall in enumerate(pull_walls):
        v, nxt = int(out[j * pull_samples]), int(out[j * pull_samples + 1])
        if v == 0 or abs(v) > 24000 or abs(nxt - v - 1) > 1:
            continue  # silence, fade or the ramp's wrap: position not readable
        ideal = (wall - T0 - D) * RATE * (1 + eps)
        n = v + 25000
        n += 50000 * round((ideal - n) / 50000)
        delays.append(wall - (START + n / RATE / (1 + eps) + TRANSIT))
    return np.array(delays)


@pytest.mark.parametrize("pull_frames", [1, 3])
@pytest.mark.parametrize("ppm", [300.0, -300.0])
def test_drift_keeps_delay_and_is_estimated(ppm: float, pull_frames: int) -> None:
    seconds = 120.0
    frames = make_frames(seconds, ppm=ppm, jitter_s=0.06, seed=5)
    pull_walls = walls(T0 + D - 0.1, round(seconds / FRAME_S / pull_frames), pull_frames * FRAME_S)
    line = new_line(frame_samples=pull_frames * FS)
    out = play(line, frames, pull_walls)
    delays = _measured_delays(out, pull_walls, ppm, pull_frames * FS)
    assert len(delays) > 0.9 * len(pull_walls)
    # Uncorrected, 300 ppm over 120 s would move playout by 36 ms.
    assert np.all(np.abs(delays - D) <= 0.020)
    assert abs(delays[-50:].mean() - D) <= 0.005
    assert line.stats().drift_ppm == pytest.approx(ppm, abs=50)


# ---------------------------------------------------------------------------- muting


def _span_expectation(spans: list[tuple[int, int]], length: int) -> np.ndarray:
    """Constant 12000 through gain = min(1, distance to nearest muted sample / FADE)."""
    n = np.arange(length)
    dist = np.full(length, np.inf)
    for s0, s1 in spans:
        dist = np.minimum(dist, np.maximum(np.maximum(s0 - n, n - (s1 - 1)), 0))
    gain = np.minimum(1.0, dist / FADE)
    gain = np.minimum(gain, np.minimum(1.0, (length - n) / FADE))  # the stream ends at length
    out = np.rint(12000 * gain).astype(np.int16)
    out[:FADE] = fade_in(out[:FADE])
    return out


def test_mute_span_is_silent_with_fades_outside() -> None:
    line = new_line()
    span, late_s = line.add_mute(1.0, 1.5, reason="insult")
    assert late_s == 0 and span.reason == "insult"
    frames = make_frames(3.0, signal=constant)
    out = media(play(line, frames, aligned_walls(3.0)))
    assert_close(out, _span_expectation([(48000, 72000)], out.size))
    assert not out[48000:72000].any() and out[47999] > 0 and out[72000] > 0
    stats = line.stats()
    assert stats.muted_s == pytest.approx(0.5) and stats.late_mutes == 0


def test_beep_mode_plays_a_quiet_tone_inside_the_span() -> None:
    line = new_line(mute_sound="beep")
    line.add_mute(1.0, 1.5)
    out = media(play(line, make_frames(3.0, signal=constant), aligned_walls(3.0))).astype(np.float64)
    inside = out[48000 + FADE : 72000 - FADE]
    spectrum = np.abs(np.fft.rfft(inside))
    peak_hz = np.argmax(spectrum) * RATE / inside.size
    assert peak_hz == pytest.approx(BEEP_HZ, abs=5)
    assert np.abs(inside).max() == pytest.approx(BEEP_AMPLITUDE, abs=2)
    # Outside the span (past the fades) the voice is untouched.
    assert np.all(out[FADE : 48000 - FADE] == 12000) and np.all(out[72000 + FADE : 140000] == 12000)
    # No step larger than the tone's own slope or a fade's anywhere.
    tone_slope = 2 * math.pi * BEEP_HZ / RATE * BEEP_AMPLITUDE
    assert np.abs(np.diff(out[FADE:140000])).max() <= tone_slope + 12000 / FADE


def test_undecided_policy_play_counts_but_plays() -> None:
    line = new_line(FixedWatermark(2.0), undecided_policy="play")
    out = play(line, make_frames(4.0), aligned_walls(4.0))
    assert np.array_equal(out, reference(4.0))
    stats = line.stats()
    assert stats.undecided_s == pytest.approx(2.0) and stats.muted_s == 0


def test_undecided_policy_mute_silences_past_the_watermark() -> None:
    line = new_line(FixedWatermark(2.0), undecided_policy="mute")
    out = media(play(line, make_frames(4.0, signal=constant), aligned_walls(4.0)))
    assert_close(out, _span_expectation([(2 * RATE, 4 * RATE)], out.size))
    stats = line.stats()
    assert stats.undecided_s == pytest.approx(2.0) and stats.muted_s == pytest.approx(2.0)


@dataclass
class TailWatermark:
    """Test double: confirmed text until `cleared`, the provisional tail judged until `heard`."""

    cleared: float
    heard: float

    def cleared_until(self) -> float:
        return self.cleared

    def heard_until(self) -> float:
        return self.heard


def test_audio_under_the_judged_provisional_tail_is_decided() -> None:
    """Only audio no check has seen any text of is undecided: the tail judged at once counts."""
    line = new_line(TailWatermark(cleared=1.0, heard=3.0), undecided_policy="mute")
    out = media(play(line, make_frames(4.0, signal=constant), aligned_walls(4.0)))
    assert_close(out, _span_expectation([(3 * RATE, 4 * RATE)], out.size))
    assert line.stats().undecided_s == pytest.approx(1.0)


def test_watermark_is_replaceable_and_catching_up_unmutes_smoothly() -> None:
    line = new_line(FixedWatermark(0.0), undecided_policy="mute")
    player = Player(line, make_frames(4.0, signal=constant))
    first = media(player.run(aligned_walls(1.0)))
    assert first.size == RATE and not first.any()
    line.watermark = ClearAll()  # moderation caught up
    rest = player.run(walls(T0 + D + 1.0, 100))
    assert rest[0] == 0 or rest[0] < 12000 / FADE + 1  # ramps up rather than stepping
    assert np.abs(np.diff(rest.astype(np.int32))).max() <= 12000 / FADE + 1
    assert np.all(rest[FADE:] == 12000)


def test_late_mute_mutes_the_rest_and_reports_the_miss() -> None:
    line = new_line()
    player = Player(line, make_frames(5.0, signal=constant))
    player.run(aligned_walls(3.0))  # media up to exactly 3.0 s played
    span, late_s = line.add_mute(2.5, 3.5)
    assert late_s == pytest.approx(0.5)
    _, on_time = line.add_mute(4.0, 4.2)
    assert on_time == 0
    rest = player.run(walls(T0 + D + 3.0, 100))
    # The played half cannot be taken back; the rest is silent after one fade.
    assert np.all(rest[:FADE] < 12000) and rest[0] > 0
    assert not rest[FADE : RATE // 2].any()
    stats = line.stats()
    assert stats.late_mutes == 1
    assert stats.muted_s == pytest.approx(0.5 + 0.2)


def test_a_growing_provisional_span_replaced_in_one_pass_is_not_late() -> None:
    """A word still being spoken: its provisional span is lifted and re-added longer in the
    same pass, after its start played muted. Only what the old span did not reach is late."""
    line = new_line()
    player = Player(line, make_frames(5.0, signal=constant))
    first, _ = line.add_mute(2.5, 3.1, provisional=True)
    player.run(aligned_walls(3.0))  # media up to 3.0 s played, 2.5-3.0 muted
    assert line.lift_mute(first.span_id)
    _, late_s = line.add_mute(2.5, 3.6, provisional=True)
    assert late_s == 0 and line.stats().late_mutes == 0
    assert line.stats().speculative_late_lifts == 0  # replaced, not revised away
    assert line.lift_mute(line.mutes.spans()[0].span_id)
    player.run(walls(T0 + D + 3.0, 5))  # lifted, then played: a span added now replaces nothing
    assert line.stats().speculative_late_lifts == 1  # revised away after its start had played
    _, late_s = line.add_mute(2.0, 3.0)
    assert late_s == pytest.approx(1.0, abs=0.01) and line.stats().late_mutes == 1


def test_lift_provisional_before_playout_restores_audio() -> None:
    line = new_line()
    player = Player(line, make_frames(4.0))
    lifted, _ = line.add_mute(2.0, 2.5, provisional=True, reason="hypothesis")
    line.add_mute(3.0, 3.2, provisional=True)
    out1 = player.run(aligned_walls(1.0))
    assert line.lift_mute(lifted.span_id) is True
    assert line.lift_mute(lifted.span_id) is False
    assert line.lift_mute(9999) is False
    out2 = player.run(walls(T0 + D + 1.0, 150))
    out = media(np.concatenate([out1, out2]))
    ref = media(reference(4.0))
    assert np.array_equal(out[: 3 * RATE - FADE], ref[: 3 * RATE - FADE])
    assert not out[3 * RATE : int(3.2 * RATE)].any()  # the provisional span not lifted still mutes
    assert line.stats().muted_s == pytest.approx(0.2)


def test_mute_before_call_start_is_rejected() -> None:
    line = new_line()
    with pytest.raises(ValueError):
        line.add_mute(-1.0, 1.0)


# ----------------------------------------------------------------------------- memory


def test_hours_without_listener_keep_memory_constant() -> None:
    line = new_line()
    sizes = set()
    chunk = RATE  # one-second pushes keep three simulated hours fast
    chunks = [ramp(k * chunk + np.arange(chunk)) for k in range(25)]  # the ramp repeats after 25
    hours = 3
    for k in range(hours * 3600):
        line.push(k * chunk, chunks[k % 25], T0 + k + 1.0)
        if k % 60 == 0:
            line.add_mute(k + 0.2, k + 0.4, reason="minute")
        if k % 600 == 0:
            sizes.add(line.memory_bytes())
    assert len(sizes) <= 2  # the envelope fills once, then nothing grows
    assert max(sizes) < 1_000_000
    assert len(line.mutes) <= 5
    stats = line.stats()
    assert stats.received_media_s == hours * 3600 and stats.frames_in == hours * 3600
    # A listener joining now hears from D seconds ago. Each chunk arrives whole, one
    # second after its first sample: that second is this sender's transit.
    wall = T0 + 1.0 + hours * 3600 + 0.5
    out = np.concatenate([line.pull(wall + j * FRAME_S) for j in range(5)])
    n = round((wall - (T0 + 1.0) - D) * RATE) + np.arange(5 * FS)
    assert np.array_equal(out[FADE:], ramp(n)[FADE:])


def test_pull_cost_is_small() -> None:
    import time

    line = new_line(FixedWatermark(0.0), undecided_policy="mute", mute_sound="beep")
    frames = make_frames(10.0, ppm=300.0, jitter_s=0.06)
    line.add_mute(3.0, 6.0)
    t = time.perf_counter()
    play(line, frames, aligned_walls(10.0))
    per_frame = (time.perf_counter() - t) / 500
    # Worst path (resampling, envelopes, beep): under 10 % of the 20 ms it renders, which
    # leaves a busy CI machine room; measured here it is about 0.1 ms.
    assert per_frame < 0.002


def test_push_returns_the_media_time_every_other_part_must_use() -> None:
    line = new_line()
    pts0 = 123_456
    assert line.push(pts0, np.zeros(FS, np.int16), START) == 0.0
    assert line.push(pts0 + 2 * FS, np.zeros(FS, np.int16), START + 0.04) == pytest.approx(0.04)  # after a loss
    assert line.push(pts0 + FS, np.zeros(FS, np.int16), START + 0.045) == pytest.approx(0.02)  # reordered
    # A reconnected sender starts its pts over: media time follows the wall clock instead.
    assert line.push(7, np.zeros(FS, np.int16), START + 3.0, source="again") == pytest.approx(3.0, abs=0.01)
    assert line.push(7, np.zeros(0, np.int16), START + 3.1, source="again") is None
