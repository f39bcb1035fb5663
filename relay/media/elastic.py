"""The elastic delay: how far playout runs behind the base delay now, and the figures.

As broadcast profanity delays do it (Eventide BD600's "delay rebuild" and "catch-up"):
while a decision on audio about to play is still pending, playout slows (a pitch-kept
stretch, relay/media/stretch.py, no slower than min_rate), so the delay grows toward
max_s and the decision has time to land; in the customer's pauses playout runs faster
through the silence (never through speech) until the delay is back at delay_s. The
counselor hears the customer at the base delay except around a pending decision.

"Pending" (decided by the delay line, which owns the cursor): sound (above the pause
gate) within lead_s of playout that no judged text covers yet (past the watermark's
heard_until), or audio that a provisional mute span covers (it may still be lifted).

Pure bookkeeping: the delay line moves the cursor; this holds the extra delay, the
stretch budget and the statistics (mean and p95 of the applied delay, seconds played
stretched, seconds of silence cut), all bounded in memory.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from relay.config import DelayConfig

_HIST_BIN_S = 0.01
# Stretches not yet collected (take_stretches): the oldest go first if nobody collects.
_KEEP_STRETCHES = 256


@dataclass(frozen=True)
class Stretch:
    """Media time that played slowed, and the delay it had grown to by its end (for QA)."""

    start: float
    end: float
    delay_s: float

    def record(self) -> dict[str, float]:
        """As the call log keeps it (an event "stretch") and QA draws it."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "delay_s": round(self.delay_s, 3)}


class ElasticDelay:
    def __init__(self, config: DelayConfig, rate: int, frame_samples: int, min_step: int = 1) -> None:
        """`min_step`: room a stretch needs (the longest splice): it stops that short of max_s."""
        self.rate = rate
        self.frame_samples = frame_samples
        self.base_s = config.delay_s
        self.max_extra = max(0, round((config.max_s - config.delay_s) * rate))
        self.min_step = min_step
        self.enabled = self.max_extra > min_step
        self.lead_s = config.stretch_lead_s
        # Input samples a stretched frame saves, on average: fs * (1 - min_rate).
        self.gain_per_frame = frame_samples * (1.0 - config.stretch_min_rate)
        self.catchup_extra = round(frame_samples * (config.catchup_rate - 1.0))
        self.gate = 32768.0 * 10.0 ** (config.pause_gate_dbfs / 20.0)
        self.extra = 0  # samples of delay beyond the base delay
        self.credit = 0.0  # input samples the stretch may still save (its rate bound)
        self.stretched_frames = 0
        self.cut_samples = 0
        self._hist = [0] * (math.ceil(max(config.max_s, config.delay_s) / _HIST_BIN_S) + 2)
        self._runs: deque[Stretch] = deque(maxlen=_KEEP_STRETCHES)
        self._run_start: float | None = None  # media seconds where the current stretch began
        self._run_end = 0.0
        self._base_frames = 0  # played at the base delay: counted apart, it is most of them
        self._extra_sum = 0  # samples of extra delay, summed over the frames played

    @property
    def delay_s(self) -> float:
        """The delay applied now."""
        return self.base_s + self.extra / self.rate

    def stretch_budget(self, media_s: float) -> int:
        """Called on a frame (playing from media_s) while a decision is pending: the most
        input samples this frame may save (0: none). The budget accrues at gain_per_frame
        per pending frame, so over any stretch the playout rate stays at or above min_rate."""
        if self.extra + self.min_step > self.max_extra:
            self.settle()
            return 0  # as long as it may grow
        if self._run_start is None:
            self._run_start = media_s
        self._run_end = media_s + self.frame_samples / self.rate
        self.stretched_frames += 1
        self.credit = min(self.credit + self.gain_per_frame, 4.0 * self.frame_samples)
        return max(0, min(math.floor(self.credit), self.max_extra - self.extra))

    def settle(self) -> None:
        """A frame with no decision pending: the stretch (if any) is over."""
        self.credit = 0.0
        if self._run_start is not None:
            if self._run_end > self._run_start:
                self._runs.append(Stretch(self._run_start, self._run_end, self.delay_s))
            self._run_start = None

    def take_stretches(self) -> list[Stretch]:
        """The stretches since the last call, the one under way as far as it has got."""
        if self._run_start is not None:
            self._runs.append(Stretch(self._run_start, self._run_end, self.delay_s))
            self._run_start = self._run_end
        runs = list(self._runs)
        self._runs.clear()
        return runs

    def stretched(self, samples: int) -> None:
        self.extra += samples
        self.credit -= samples

    def catchup_room(self) -> int:
        """Input samples a frame through a pause may skip now."""
        return min(self.extra, self.catchup_extra)

    def cut(self, samples: int) -> None:
        self.extra -= samples
        self.cut_samples += samples

    def reset(self) -> None:
        """Nobody is listening (or playout restarts): back to the base delay."""
        self.settle()
        self.extra = 0

    def record_frame(self) -> None:
        if not self.extra:
            self._base_frames += 1
            return
        self._hist[min(round(self.delay_s / _HIST_BIN_S), len(self._hist) - 1)] += 1
        self._extra_sum += self.extra

    def _frames(self) -> int:
        return self._base_frames + sum(self._hist)

    def mean_s(self) -> float:
        frames = self._frames()
        return self.base_s + self._extra_sum / self.rate / frames if frames else self.base_s

    def p95_s(self) -> float:
        """The 95th percentile of the applied delay, to 10 ms."""
        frames = self._frames()
        if not frames:
            return self.base_s
        seen = self._base_frames
        if seen >= 0.95 * frames:
            return self.base_s
        for k, count in enumerate(self._hist):
            seen += count
            if seen >= 0.95 * frames:
                return max(self.base_s, k * _HIST_BIN_S)
        return self.base_s + self.max_extra / self.rate

    def stretched_s(self) -> float:
        """Seconds of playout that ran slowed (pitch kept)."""
        return self.stretched_frames * self.frame_samples / self.rate

    def cut_s(self) -> float:
        """Seconds of the customer's pauses cut to bring the delay back."""
        return self.cut_samples / self.rate
