"""The delay line: the customer's audio, held D seconds and played on the sender's clock.

Media time t plays at wall time T0 + t + D. Media time comes from pts (MediaClock), never
from arrival, so network jitter does not move the schedule. T0 is the lower envelope of
transit (arrival - media time): the delay D is measured from the fastest-arriving frames.
When the sender's clock runs fast or slow against ours, that envelope slopes; T0 slews
after it at no more than drift_max_ppm, and playout reads slightly more or fewer input
samples per 20 ms frame, resampled linearly, so the correction never clicks.

The delay is elastic (relay/media/elastic.py): D is delay_s plus an extra that grows
while a decision on sound about to play is pending (a frame then consumes fewer input
samples than it plays, one pitch period repeated: relay/media/stretch.py) and shrinks
through the customer's pauses (a frame then consumes more, over silence only). Frames
that neither stretch nor catch up, on time and cleared, still take the bit-exact copy.

At playout every sample is judged (relay/media/playout.py): inside a mute span ->
silence (or a beep); before the watermark and not skipped by the transcription -> play;
otherwise undecided -> the configured policy. All silences (also loss and the replay
guard) become one mask and one gain envelope (relay/media/fades.py). What each pull
judged is kept in `played`, so an offline simulation scores exactly what was heard.

Pure code: no asyncio, no aiortc. The server calls push() from its receiving task and
pull() from its paced outgoing track, both on the event loop thread.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from relay.config import DelayConfig
from relay.media import stretch
from relay.media.audio_format import FRAME_S, FRAME_SAMPLES, RATE
from relay.media.elastic import ElasticDelay
from relay.media.fades import beep, gain_envelope, limit_start
from relay.media.media_clock import MediaClock, TransitEnvelope
from relay.media.mute_map import MuteMap, MuteSpan, sample_at, uncovered_s
from relay.media.playout import Played, judge_samples
from relay.media.watermark import Watermark, judged_until

# Anchor errors below this are left alone: the envelope of a jittery network wobbles by a
# fraction of a millisecond, and chasing that would resample audio that is on time.
_DEADBAND_S = 0.002
# Past the deadband T0 converges with this time constant (then capped by drift_max_ppm):
# a steady 300 ppm drift then settles about 2.3 ms off, far inside the +-20 ms budget.
_SLEW_TAU_S = 1.0
# Beyond this the anchor jumps instead of slewing: at 2000 ppm 100 ms would take 50 s.
_JUMP_S = 0.1
# A cursor this close to a whole sample is on it: keeps playout bit-exact when on time.
_STEP_SNAP = 1e-3
# A cursor within a sample of its ideal position is on time (a sample is 21 us).
_ON_TIME_SAMPLES = 1.0
# Spans this far behind playout can no longer affect a rendered frame.
_SPAN_KEEP_S = 1.0
# No pull for this long: nobody is listening, and the anchor may jump freely.
_IDLE_S = 0.5
# A pause is cut only where it goes on this long past what the frame consumes, so the
# catch-up never runs into the speech that ends it.
_PAUSE_TAIL_S = 0.02


@dataclass
class DelayLineStats:
    received_media_s: float  # end of the newest media placed
    playout_media_s: float  # media time of the last sample pulled (0.0 before any pull)
    buffered_s: float  # received_media_s - playout_media_s
    frames_in: int
    late_frames: int  # arrived after their media had been played (dropped)
    lost_s: float  # media time played as silence because no frame came for it
    reorders: int  # frames that arrived behind a later frame
    reanchors: int
    drift_ppm: float  # estimated sender clock rate error vs. the server clock
    undecided_s: float  # media played while not yet cleared by the watermark
    muted_s: float  # media silenced by mute spans or the mute policy
    late_mutes: int  # mute spans that arrived after part of their audio was played
    # Additions beyond the agreed interface:
    underrun_s: float = 0.0  # media played as silence past the newest audio received
    anchored: bool = False  # a first frame has arrived and playout has an anchor
    # The elastic delay (relay/media/elastic.py):
    delay_now_s: float = 0.0  # the delay applied now
    delay_mean_s: float = 0.0  # over the frames played
    delay_p95_s: float = 0.0
    stretched_s: float = 0.0  # playout that ran slowed (pitch kept) while a decision was pending
    pause_cut_s: float = 0.0  # customer's pauses shortened to bring the delay back
    # Provisional spans revised away (lifted, not replaced by a grown or confirmed span)
    # after playout had reached them: speculation that silenced audio it should not have.
    speculative_late_lifts: int = 0


class DelayLine:
    def __init__(
        self,
        config: DelayConfig,
        watermark: Watermark,
        rate: int = RATE,
        frame_samples: int = FRAME_SAMPLES,
    ) -> None:
        self.config = config
        self.watermark = watermark
        self.mutes = MuteMap()
        # Audio the transcription skipped: never judged, so undecided even behind the watermark.
        self.unjudged = MuteMap()
        self.played: Played | None = None  # what the last pull consumed, as it was judged
        self.rate = rate
        self.frame_samples = frame_samples
        self._frame_s = frame_samples / rate
        self._fade = round(config.fade_ms * rate / 1000.0)
        self._pause_tail = round(_PAUSE_TAIL_S * rate)
        self._max_slew = config.drift_max_ppm * 1e-6
        self._lag_lo, self._lag_hi, self._crossfade = stretch.lag_bounds(rate, frame_samples)
        # A splice waits for a good match while its budget is under one longest period.
        self._period_hi = min(stretch.longest_period(rate), self._lag_hi)
        # A stretch stops one longest period short of max_s.
        self.elastic = ElasticDelay(config, rate, frame_samples, min_step=self._period_hi)
        self._capacity = self._capacity_for(config)
        self._ring = np.zeros(self._capacity, dtype=np.int16)
        self._present = np.zeros(self._capacity, dtype=bool)
        self._head = 0  # media sample just past the newest audio written
        self._clock = MediaClock(rate, config.reanchor_threshold_s)
        self._envelope = TransitEnvelope()

        self._t0: float | None = None  # seconds: media t plays at _t0 + t + delay_s
        self._cursor: float | None = None  # media position (samples) of the next output sample
        self._last_wall: float | None = None
        self._hwm = 0  # media samples below this have been played (or skipped by a jump)
        self._last_gain = 0.0  # gain of the last played sample, for continuity
        self._last_beep_gain = 0.0
        # After a re-anchor the new timeline's anchor may differ by the re-anchoring
        # frame's jitter; it is corrected by a jump once the old audio has played out.
        self._rejump_after: int | None = None

        self._frames_in = 0
        self._late_frames = 0
        self._reorders = 0
        self._lost = 0
        self._underrun = 0
        self._undecided = 0
        self._muted = 0
        self._late_mutes = 0
        self._replaced: list[MuteSpan] = []  # spans lifted since the last pull
        self._lifted_played: list[MuteSpan] = []  # of those, provisional ones already playing
        self._late_lifts = 0
        self._drift_ppm = 0.0

    def _capacity_for(self, config: DelayConfig) -> int:
        # Room for the longest delay plus the margin, plus what one rendered window reads around
        # the cursor (a frame, interpolation and fade context on both sides).
        longest = max(config.delay_s, config.max_s) + config.jitter_margin_s
        return math.ceil(longest * self.rate) + 2 * self.frame_samples + 2 * self._fade + 2

    def reconfigure(self, config: DelayConfig) -> None:
        """New settings during the call: delay_s, max_s, undecided_policy, mute_sound (the
        rest stays as the call started). The delay applied now moves to the new one without
        a jump (relay/media/elastic.py: a rise stretches, a fall is cut from the pauses); the
        policy and the mute sound apply from the next frame, through its fades."""
        config = dataclasses.replace(
            self.config,
            delay_s=config.delay_s,
            max_s=config.max_s,
            undecided_policy=config.undecided_policy,
            mute_sound=config.mute_sound,
        )
        self.config = config
        self.elastic.rebase(config)
        capacity = self._capacity_for(config)
        if capacity > self._capacity:
            self._grow(capacity)

    def _grow(self, capacity: int) -> None:
        """A larger ring, holding what the old one held at the same media positions. Never
        shrunk during a call: after a fall the old, longer delay's audio is still to play;
        memory stays bounded by the longest delay the call was set to (delay.delay_s and
        max_s are at most 30 s: 4.5 MB)."""
        low = max(0, self._head - self._capacity)
        data, present = self._read(low, self._head - low)
        self._capacity = capacity
        self._ring = np.zeros(capacity, dtype=np.int16)
        self._present = np.zeros(capacity, dtype=bool)
        offset = 0
        for a, b in self._slots(low, self._head):
            self._ring[a:b] = data[offset : offset + b - a]
            self._present[a:b] = present[offset : offset + b - a]
            offset += b - a

    # ----------------------------------------------------------------- receiving side

    def push(self, pts: int, samples: np.ndarray, arrival: float, source: Hashable = 0) -> float | None:
        """Place one decoded frame (int16 mono, any length) by its pts.

        Returns the frame's start in call media time (seconds), the clock every other part
        (transcription, mutes, recordings) must use for it; None for an empty frame.
        """
        data = np.asarray(samples)
        if data.dtype != np.int16:
            data = data.astype(np.int16)
        data = data.reshape(-1)
        if data.size == 0:
            return None
        pts = int(pts)
        arrival = float(arrival)
        self._frames_in += 1
        expected = None if self._t0 is None else round((arrival - self._t0) * self.rate)
        reanchors = self._clock.reanchors
        previous_head = self._head
        media = self._clock.place(pts, source, arrival, expected, samples=data.size)
        if self._clock.reanchors != reanchors:
            # Transit of the old timeline says nothing about the new one.
            self._envelope.reset()
            if not self._is_free(arrival):
                self._rejump_after = previous_head
        self._envelope.add(arrival, arrival - media / self.rate)
        if self._t0 is None or self._is_free(arrival):
            self._t0 = self._envelope.level()
        if media < self._head:
            self._reorders += 1
        self._write(media, data)
        return media / self.rate

    def _is_free(self, now: float) -> bool:
        # The anchor may jump freely while nothing is being played: before the call's
        # first audio reached playout, or while no one is pulling.
        return self._hwm <= 0 or self._last_wall is None or now > self._last_wall + _IDLE_S

    def _write(self, media: int, data: np.ndarray) -> None:
        end = media + data.size
        if end > self._head:
            # Slots about to hold [head, end) still hold audio from one ring ago: mark them
            # empty first, so stale audio never plays where this frame leaves a gap.
            self._fill_present(max(self._head, end - self._capacity), end, False)
            self._head = end
            self.mutes.forget_before((self._head - self._capacity) / self.rate)
            self.unjudged.forget_before((self._head - self._capacity) / self.rate)
        # Played media is never rewritten; audio older than the ring cannot be kept.
        low = max(media, 0, self._hwm, self._head - self._capacity)
        if low >= end:
            self._late_frames += 1
            return
        if low > media and low > self._head - self._capacity:
            self._late_frames += 1  # partly played already: keep the rest
        self._store(low, data[low - media :])

    def _fill_present(self, start: int, stop: int, value: bool) -> None:
        for a, b in self._slots(start, stop):
            self._present[a:b] = value

    def _store(self, start: int, data: np.ndarray) -> None:
        offset = 0
        for a, b in self._slots(start, start + data.size):
            self._ring[a:b] = data[offset : offset + b - a]
            self._present[a:b] = True
            offset += b - a

    def _slots(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Ring slices holding media [start, stop), at most one capacity long."""
        count = stop - start
        if count <= 0:
            return []
        first = start % self._capacity
        if first + count <= self._capacity:
            return [(first, first + count)]
        return [(first, self._capacity), (0, first + count - self._capacity)]

    def _read(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        data = np.zeros(count, dtype=np.int16)
        present = np.zeros(count, dtype=bool)
        low = max(start, 0, self._head - self._capacity)
        high = min(start + count, self._head)
        offset = low - start
        for a, b in self._slots(low, high):
            data[offset : offset + b - a] = self._ring[a:b]
            present[offset : offset + b - a] = self._present[a:b]
            offset += b - a
        return data, present

    # ------------------------------------------------------------------ playing side

    def pull(self, wall: float) -> np.ndarray:
        """int16 mono, exactly frame_samples, for playout starting at wall time `wall`."""
        fs = self.frame_samples
        continuous = (
            self._last_wall is not None
            and self._cursor is not None
            and abs(wall - self._last_wall - self._frame_s) < self._frame_s / 2
        )
        free = self._is_free(wall)
        self._last_wall = wall
        if self._t0 is None:
            return np.zeros(fs, dtype=np.int16)

        jump = not continuous or free
        if free:
            self.elastic.reset()
        if not jump:
            jump = self._steer()
        start = 0.0 if self._cursor is None else self._cursor
        step = float(fs)
        if not jump:
            slewed = self._step(wall, start)
            if slewed is None:
                jump = True  # the cursor strayed beyond what slewing may fix
            else:
                step = slewed
        if jump:
            level = self._envelope.level()
            if level is not None:
                self._t0 = level
            self._rejump_after = None  # this jump already re-anchors playout
            target = float(round((wall - self._t0 - self.elastic.delay_s) * self.rate))
            if self._cursor is None or target != self._cursor:
                self._last_gain = 0.0  # discontinuity: fade in from silence
                self._last_beep_gain = 0.0
            start = target

        budget = 0
        elastic = self.elastic
        # Also while playout slews after the transit envelope: a load spike that moves the
        # envelope by 40 ms slews for 20 s, and a stretch held back that long let a pending
        # decision's audio play undecided and stalled a supervisor's rise short of its delay.
        if (elastic.enabled or elastic.extra) and not jump:
            pending = elastic.enabled and self._pending(start)
            if pending or elastic.rebuilding:
                budget = elastic.stretch_budget(start / self.rate, pending)
            else:
                elastic.settle()
                if elastic.extra:
                    step += self._pause_cut(math.floor(start))
        if self._replaced:
            # What was lifted and not replaced in the same pass was revised away.
            self._late_lifts += len(self._lifted_played)
            self._lifted_played.clear()
            self._replaced.clear()
        out, step = self._render(start, step, budget)
        self.elastic.record_frame()
        self._cursor = start + step
        self._hwm = max(self._hwm, math.ceil(self._cursor - 1e-9))
        self.mutes.forget_before(self._hwm / self.rate - _SPAN_KEEP_S)
        self.unjudged.forget_before(self._hwm / self.rate - _SPAN_KEEP_S)
        return out

    def _pending(self, start: float) -> bool:
        """A decision on sound within stretch_lead_s of playout is still to come: no judged
        text covers it yet, or a provisional span (which may still be lifted) does. A
        pause waiting for its verdict is not waited for: there is nothing in it to mute."""
        now = start / self.rate
        # Looked ahead from the frame's last 20 ms, as three 20 ms pulls of a 60 ms frame would.
        ahead = now + self._frame_s - FRAME_S + self.elastic.lead_s
        heard = self.watermark.heard_until()
        if heard < ahead:
            first = max(int(start), sample_at(heard, self.rate))
            data, present = self._read(first, sample_at(ahead, self.rate) - first)
            if np.any(present & (np.abs(data.astype(np.int32)) >= self.elastic.gate)):
                return True
        return self.mutes.provisional_within(now, ahead)

    def _pause_cut(self, first: int) -> int:
        """Input samples this frame may skip because they are a pause (and so is what
        follows, for _PAUSE_TAIL_S): the catch-up shortens silence, never speech."""
        room = self.elastic.catchup_room()
        if room <= 0:
            return 0
        needed = self.frame_samples + self._pause_tail  # quiet beyond the cut
        data, present = self._read(first, needed + room)
        # Audio not here (not yet arrived, or lost) is not known to be a pause.
        loud = np.flatnonzero(~present | (np.abs(data.astype(np.int32)) >= self.elastic.gate))
        quiet = int(loud[0]) if loud.size else data.size
        cut = min(room, quiet - needed)
        if cut <= 0:
            return 0
        self.elastic.cut(cut)
        return cut

    def _steer(self) -> bool:
        """Slew T0 toward the transit envelope; True where it must jump instead."""
        assert self._t0 is not None and self._cursor is not None
        if self._rejump_after is not None:
            # Old-timeline audio is still playing: hold the anchor until it has played out.
            if self._cursor < self._rejump_after:
                return False
            self._rejump_after = None
            level = self._envelope.level()
            return level is not None and abs(level - self._t0) > _DEADBAND_S
        level = self._envelope.level()
        if level is None:
            return False
        error = level - self._t0
        if abs(error) > _JUMP_S:
            return True
        excess = abs(error) - _DEADBAND_S
        if excess > 0:
            rate = min(excess / _SLEW_TAU_S, self._max_slew)
            self._t0 += math.copysign(rate * self._frame_s, error)
        return False

    def _step(self, wall: float, start: float) -> float | None:
        """Input samples to read for this frame so the cursor follows T0, or None if it
        would take more than the allowed slew to get there."""
        fs = self.frame_samples
        assert self._t0 is not None
        target_end = (wall + self._frame_s - self._t0 - self.elastic.delay_s) * self.rate
        step = target_end - start
        limit = fs * self._max_slew
        if abs(step - fs) < _ON_TIME_SAMPLES:
            # On time. A cursor left between samples by an earlier slew is eased back onto
            # a whole sample (within the slew limit), so that playout returns to the
            # bit-exact copy instead of interpolating every frame for the rest of the call.
            settle = round(start) - start
            if abs(settle) <= _STEP_SNAP:
                return float(fs)
            return fs + min(max(settle, -limit), limit)
        if abs(step - fs) > _JUMP_S * self.rate:
            return None
        return min(max(step, fs - limit), fs + limit)

    def _render(self, start: float, step: float, stretch_budget: int = 0) -> tuple[np.ndarray, float]:
        """The frame, and the input samples it consumed (step, less what a stretch saved)."""
        fs, fade, rate = self.frame_samples, self._fade, self.rate
        first = math.floor(start)
        exact = step == fs and start == first
        last = first + fs - 1 if exact else math.floor(start + step * (fs - 1) / fs) + 1
        w0 = first - fade
        count = last + 1 + fade - w0
        data, present = self._read(w0, count)
        mute, undecided = judge_samples(self.mutes, self.unjudged, judged_until(self.watermark), w0, count, rate)
        silence = ~present | mute
        if self.config.undecided_policy == "mute":
            silence |= undecided
        want_beep = self.config.mute_sound == "beep" and (mute.any() or self._last_beep_gain > 0)
        # Where the frame's output samples lie in the window: off whole samples while slewing.
        ratio = step / fs
        positions = None if exact else (start - w0) + np.arange(fs, dtype=np.float64) * ratio
        lag = 0
        # Not while a beep sounds: a repeated period would break the beep's phase (a click).
        if stretch_budget >= self._lag_lo and not want_beep:
            hi = min(self._lag_hi, stretch_budget)
            lag, likeness = stretch.best_lag(_frame(data, fade, fs, positions), self._lag_lo, hi, self._crossfade)
            if likeness < stretch.GOOD_MATCH and stretch_budget < self._period_hi:
                lag = 0  # wait for a better splice point while the budget allows
            if lag:
                self.elastic.stretched(lag)
                # The splice repeats output samples; the input they stand for is a ratio apart.
                step = (fs - lag) * ratio
                exact = False

        # Media consumed by this frame, each sample counted once over the call.
        c0 = math.ceil(start - 1e-9)
        c1 = math.ceil(start + step - 1e-9)
        # Replay guard: after a backward jump, what was already heard plays as silence.
        guard_hi = min(self._hwm, c1)
        if guard_hi > c0:
            silence[c0 - w0 : guard_hi - w0] = True
        self._count(w0, max(c0, self._hwm, 0), c1, present, mute, undecided)
        self.played = Played(
            c0,
            mute[c0 - w0 : c1 - w0],
            undecided[c0 - w0 : c1 - w0],
            self.config.undecided_policy == "mute",
            aligned=exact,
        )

        if exact and not want_beep and self._last_gain == 1.0 and not silence.any():
            self._last_beep_gain = 0.0
            return data[fade : fade + fs].copy(), step  # the common case: on time, cleared, whole

        if not want_beep and self._last_gain == 1.0 and not silence.any():
            # Nothing to fade (a drift-resampled or stretched frame): the envelope would be
            # all ones, so skip building it.
            signal = data.astype(np.float32)
        else:
            gain = gain_envelope(silence, fade)
            limit_start(gain, c0 - w0, self._last_gain, fade)
            signal = data.astype(np.float32) * gain
            self._last_gain = float(gain[c1 - 1 - w0])
        if want_beep:
            beep_gain = gain_envelope(~mute, fade)
            limit_start(beep_gain, c0 - w0, self._last_beep_gain, fade)
            signal += beep(w0, count, rate) * beep_gain
            self._last_beep_gain = float(beep_gain[c1 - 1 - w0])
        else:
            self._last_beep_gain = 0.0

        out = _frame(signal, fade, fs, positions)
        if lag:
            out = stretch.splice(out, lag, self._crossfade)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16), step

    def _count(
        self,
        w0: int,
        c0: int,
        c1: int,
        present: np.ndarray,
        mute: np.ndarray,
        undecided: np.ndarray,
    ) -> None:
        if c1 <= c0:
            return
        sl = slice(c0 - w0, c1 - w0)
        here = present[sl]
        silent = ~here
        received = max(0, min(self._head, c1) - c0)  # media below head that some frame could have filled
        lost = int(np.count_nonzero(silent[:received]))
        self._lost += lost
        self._underrun += int(np.count_nonzero(silent)) - lost
        muted_here = mute[sl]
        undecided_here = undecided[sl] & here & ~muted_here
        self._undecided += int(np.count_nonzero(undecided_here))
        muted = muted_here & here
        if self.config.undecided_policy == "mute":
            muted = muted | undecided_here
        self._muted += int(np.count_nonzero(muted))

    # ------------------------------------------------------------------- mutes, stats

    def add_mute(self, start: float, end: float, provisional: bool = False, reason: str = "") -> tuple[MuteSpan, float]:
        """Add a span; returns it and how many seconds of it had already been played
        unmuted (a span replacing one lifted in the same pass, as a provisional span does
        while its word grows, is late only where the one it replaces did not reach)."""
        span = self.mutes.add(start, end, provisional, reason)
        played = self._hwm / self.rate
        late_s = uncovered_s(span.start, min(span.end, played), self._replaced)
        if late_s > 0:
            self._late_mutes += 1
        if self._lifted_played:  # the same words, grown or confirmed: not revised away
            self._lifted_played = [s for s in self._lifted_played if s.start != span.start]
        return span, late_s

    def lift_mute(self, span_id: int) -> bool:
        span = self.mutes.lift(span_id)
        if span is None:
            return False
        self._replaced.append(span)  # until the next pull: what a span added now may replace
        if span.provisional and sample_at(span.start, self.rate) < self._hwm:
            self._lifted_played.append(span)
        return True

    def mark_unjudged(self, start: float, end: float) -> None:
        """Audio the transcription skipped: it plays under the undecided policy and counts
        as undecided, whatever the watermark says."""
        if end > start:
            self.unjudged.add(max(0.0, start), end, reason="transcription_skipped")

    @property
    def received_media_s(self) -> float:
        """End of the newest media placed."""
        return self._head / self.rate

    @property
    def delay_now_s(self) -> float:
        """The delay applied now: delay_s, more while the elastic delay waits for a decision."""
        return self.elastic.delay_s

    def media_time_at(self, wall: float) -> float | None:
        """Media seconds that play at monotonic time `wall`; None until the first frame.

        Once anchored this holds for any instant, also one before the first frame (a
        negative media time): a listener who joined first has heard silence since then,
        and the call log places that listener's recording by it.
        """
        if self._t0 is None:
            return None
        return wall - self._t0 - self.elastic.delay_s

    def stats(self) -> DelayLineStats:
        slope = self._envelope.slope()
        if slope is not None:
            # Transit falls as a fast sender's media time outruns our clock.
            self._drift_ppm = -slope * 1e6
        received = self._head / self.rate
        playout = max(0, self._hwm) / self.rate
        return DelayLineStats(
            received_media_s=received,
            playout_media_s=playout,
            buffered_s=max(0.0, received - playout),
            frames_in=self._frames_in,
            late_frames=self._late_frames,
            lost_s=self._lost / self.rate,
            reorders=self._reorders,
            reanchors=self._clock.reanchors,
            drift_ppm=self._drift_ppm,
            undecided_s=self._undecided / self.rate,
            muted_s=self._muted / self.rate,
            late_mutes=self._late_mutes,
            underrun_s=self._underrun / self.rate,
            anchored=self._t0 is not None,
            delay_now_s=self.elastic.delay_s,
            delay_mean_s=self.elastic.mean_s(),
            delay_p95_s=self.elastic.p95_s(),
            stretched_s=self.elastic.stretched_s(),
            pause_cut_s=self.elastic.cut_s(),
            speculative_late_lifts=self._late_lifts + len(self._lifted_played),
        )

    def memory_bytes(self) -> int:
        """Approximate bytes held by this call's delay line (bounded by construction)."""
        return self._ring.nbytes + self._present.nbytes + 64 * len(self._envelope) + 256 * len(self.mutes)


def _frame(window: np.ndarray, fade: int, fs: int, positions: np.ndarray | None) -> np.ndarray:
    """The frame's fs samples out of a window read `fade` samples early: the plain slice on
    whole samples, else linearly interpolated at `positions` (drift slew, pause catch-up)."""
    if positions is None:
        return window[fade : fade + fs]
    idx = positions.astype(np.int64)
    frac = (positions - idx).astype(np.float32)
    base = window[idx].astype(np.float32, copy=False)
    return base + frac * (window[idx + 1].astype(np.float32, copy=False) - base)
