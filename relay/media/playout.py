"""The playout judgement: for each sample about to be played, is it muted, and is it
still undecided?

One rule, used by the delay line on every rendered frame (and so by the offline
simulation, which reads back what the delay line judged):
- muted: inside an active mute span;
- undecided: at or past the watermark (not yet transcribed and judged), or inside audio
  the transcription skipped (never judged, whatever the watermark says). A watermark of
  math.inf (moderation switched off) clears everything.
What undecided audio becomes (played or silenced) is the undecided policy's, applied by
the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from relay.media.mute_map import MuteMap, sample_at


def judge_samples(
    mutes: MuteMap, unjudged: MuteMap, cleared_until: float, start: int, count: int, rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """(muted, undecided) bool arrays for samples [start, start + count)."""
    mute = mutes.mask(start, count, rate)
    undecided = np.zeros(count, dtype=bool)
    if cleared_until != math.inf:
        first_undecided = sample_at(cleared_until, rate) if cleared_until > 0 else 0
        undecided[min(max(first_undecided - start, 0), count) :] = True
    if len(unjudged):
        undecided |= unjudged.mask(start, count, rate)
    return mute, undecided


@dataclass(frozen=True)
class Played:
    """The media samples one pull consumed, [start, start + len(muted)), as judged then."""

    start: int
    muted: np.ndarray
    undecided: np.ndarray
    mute_undecided: bool  # the undecided policy was "mute"
    # Output sample i is input sample start + i (False where the frame was stretched,
    # resampled for drift, or shortened through a pause).
    aligned: bool = True

    @property
    def silenced(self) -> np.ndarray:
        """Silenced by moderation: muted, or undecided under the policy "mute"."""
        return self.muted | self.undecided if self.mute_undecided else self.muted

    @property
    def unjudged(self) -> np.ndarray:
        """Reached playout unjudged and outside any mute span."""
        return self.undecided & ~self.muted
