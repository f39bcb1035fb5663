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

A live change of delay_s or max_s (a supervisor, relay/calls/call.py) is `rebase`: the
delay applied at that instant stays as it is, so nothing jumps, and the difference to the
new base becomes the extra. Below the new base (a rise) playout stretches until it is
reached (the rebuild, as a pending decision does, whatever is pending); above it (a fall)
the customer's pauses are cut until it is back (the catch-up, as after a decision).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from relay.config import DelayConfig

_HIST_BIN_S = 0.01
# Stretches not yet collected (take_stretches): the oldest go first if nobody collects.
_KEEP_STRETCHES = 256
# Credit a stretch may bank while no good splice point comes (80 ms of input): past that
# it falls behind its rate rather than catching up in a run of long splices.
_CREDIT_CAP_S = 0.08


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
        self.min_step = min_step
        self.extra = 0  # samples of delay beyond the base delay (below it during a rebuild)
        self.credit = 0.0  # input samples the stretch may still save (its rate bound)
        self.stretched_frames = 0
        self.cut_samples = 0
        self._hist: list[int] = []
        self._runs: deque[Stretch] = deque(maxlen=_KEEP_STRETCHES)
        self._run_start: float | None = None  # media seconds where the current stretch began
        self._run_end = 0.0
        self._base_frames = 0  # played at the base delay: counted apart, it is most of them
        self._delay_sum = 0.0  # seconds of delay, summed over the frames not counted there
        self._configure(config)

    def _configure(self, config: DelayConfig) -> None:
        rate, frame_samples = self.rate, self.frame_samples
        self.base_s = config.delay_s
        self.max_extra = max(0, round((config.max_s - config.delay_s) * rate))
        self.enabled = self.max_extra > self.min_step
        self.lead_s = config.stretch_lead_s
        # Input samples a stretched frame saves, on average: fs * (1 - min_rate).
        self.gain_per_frame = frame_samples * (1.0 - config.stretch_min_rate)
        self._credit_cap = max(_CREDIT_CAP_S * rate, self.gain_per_frame)
        self.catchup_extra = round(frame_samples * (config.catchup_rate - 1.0))
        self.gate = 32768.0 * 10.0 ** (config.pause_gate_dbfs / 20.0)
        bins = math.ceil(max(config.max_s, config.delay_s) / _HIST_BIN_S) + 2
        self._hist.extend([0] * (bins - len(self._hist)))

    def rebase(self, config: DelayConfig) -> None:
        """New delay settings during the call (see the module docstring): the delay applied
        now is kept, and moves to the new base by stretching or by catch-up."""
        self.settle()
        now_s = self.delay_s
        # The frames played at the old base keep their delay in the figures.
        self._hist[self._bin(self.base_s)] += self._base_frames
        self._delay_sum += self._base_frames * self.base_s
        self._base_frames = 0
        self._configure(config)
        self.extra = round((now_s - self.base_s) * self.rate)

    @property
    def rebuilding(self) -> bool:
        """Below the base delay after a rise: playout stretches until it is reached."""
        return self.extra < 0

    @property
    def delay_s(self) -> float:
        """The delay applied now."""
        return self.base_s + self.extra / self.rate

    def stretch_budget(self, media_s: float, pending: bool = True) -> int:
        """Called on a frame (playing from media_s) while a decision is pending or the delay
        rebuilds: the most input samples this frame may save (0: none). The budget accrues
        at gain_per_frame per frame, so over any stretch the playout rate stays at or above
        min_rate."""
        if pending and self.extra + self.min_step <= self.max_extra:
            room = self.max_extra - self.extra  # as long as it may grow
        elif self.extra < 0:
            # The rebuild: up to the base, at most one splice past it (the next pause takes it back).
            room = max(-self.extra, self.min_step)
        else:
            self.settle()
            return 0
        if self._run_start is None:
            self._run_start = media_s
        self._run_end = media_s + self.frame_samples / self.rate
        self.stretched_frames += 1
        self.credit = min(self.credit + self.gain_per_frame, self._credit_cap)
        return max(0, min(math.floor(self.credit), room))

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
        delay = self.delay_s
        self._hist[self._bin(delay)] += 1
        self._delay_sum += delay

    def _bin(self, delay_s: float) -> int:
        return min(round(delay_s / _HIST_BIN_S), len(self._hist) - 1)

    def _frames(self) -> int:
        return self._base_frames + sum(self._hist)

    def mean_s(self) -> float:
        frames = self._frames()
        return (self._delay_sum + self._base_frames * self.base_s) / frames if frames else self.base_s

    def p95_s(self) -> float:
        """The 95th percentile of the applied delay, to 10 ms."""
        frames = self._frames()
        if not frames:
            return self.base_s
        base_bin = self._bin(self.base_s)
        seen = 0
        for k, count in enumerate(self._hist):
            seen += count + (self._base_frames if k == base_bin else 0)
            if seen >= 0.95 * frames:
                return self.base_s if k == base_bin else k * _HIST_BIN_S
        return self.base_s + self.max_extra / self.rate

    def stretched_s(self) -> float:
        """Seconds of playout that ran slowed (pitch kept)."""
        return self.stretched_frames * self.frame_samples / self.rate

    def cut_s(self) -> float:
        """Seconds of the customer's pauses cut to bring the delay back."""
        return self.cut_samples / self.rate
