"""Call media time from a sender's RTP timestamps, and the sender-to-server transit envelope.

MediaClock answers "where in the call does this frame belong", from pts alone, so loss
leaves a gap and reordering lands in place. TransitEnvelope answers "how late do the
fastest frames arrive", which is what playout is anchored to and what reveals the sender's
clock drift. Both are pure and cheap; the delay line owns one of each per call.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable

from relay.media.audio_format import RATE

_PTS_MODULUS = 1 << 32
_PTS_HALF = 1 << 31


def pts_delta(pts: int, ref: int) -> int:
    """Signed difference pts - ref of two 32-bit RTP timestamps, across a wrap."""
    return (pts - ref + _PTS_HALF) % _PTS_MODULUS - _PTS_HALF


class MediaClock:
    """Maps a sender's pts (48 kHz RTP units) to call media time: samples since the call's first frame."""

    def __init__(self, rate: int = RATE, reanchor_threshold_s: float = 2.0) -> None:
        self.rate = rate
        self.reanchor_threshold_s = reanchor_threshold_s
        self._threshold = round(reanchor_threshold_s * rate)
        self._started = False
        self._source: Hashable = None
        self._ref_pts = 0
        self._ref_media = 0
        self._newest_end = 0
        self.reanchors = 0

    @property
    def newest_end(self) -> int:
        """Media sample just past the newest audio placed so far."""
        return self._newest_end

    def place(
        self,
        pts: int,
        source: Hashable,
        arrival: float,
        expected_media: int | None,
        samples: int = 0,
    ) -> int:
        """Media sample index of this frame's first sample.

        `arrival` is not used for placement (pts alone decides, by design) but is part of
        the call so a future policy can weigh it. `samples` is the frame length, needed so
        a re-anchor never lands on top of audio already placed; callers placing frames of
        known length should pass it.
        """
        pts %= _PTS_MODULUS
        if not self._started:
            self._started = True
            media = 0
        elif source != self._source:
            # A new receiver (customer reconnected): its pts starts over somewhere random.
            media = self._reanchor(expected_media)
        else:
            step = pts_delta(pts, self._ref_pts)
            media = self._ref_media + step
            if abs(step) > self._threshold and not self._is_sender_pause(step, media, expected_media):
                media = self._reanchor(expected_media)
        self._source = source
        self._ref_pts = pts
        self._ref_media = media
        self._newest_end = max(self._newest_end, media + samples)
        return media

    def _is_sender_pause(self, step: int, media: int, expected_media: int | None) -> bool:
        # A forward step that the wall clock confirms (the sender stopped sending for a
        # while, e.g. DTX or a muted microphone) is a gap in one timeline, not a new one:
        # re-anchoring it would shift everything after it by the arrival jitter.
        return step > 0 and expected_media is not None and abs(media - expected_media) <= self._threshold

    def _reanchor(self, expected_media: int | None) -> int:
        self.reanchors += 1
        if expected_media is None:
            return self._newest_end
        # Never before audio already placed: overlapping timelines would overwrite each other.
        return max(int(expected_media), self._newest_end)


class TransitEnvelope:
    """Lower envelope of transit = arrival - media time, over one-second buckets of arrival.

    The minimum per bucket is the frame that met no queueing; the minimum over the last few
    buckets is the anchor playout follows, and the slope of the bucket minima over up to a
    minute is the sender's clock error. Memory is a fixed number of buckets.
    """

    def __init__(
        self,
        bucket_s: float = 1.0,
        level_buckets: int = 3,
        slope_buckets: int = 60,
        min_slope_buckets: int = 8,
    ) -> None:
        self.bucket_s = bucket_s
        self.level_buckets = level_buckets
        self.min_slope_buckets = min_slope_buckets
        # (bucket index, arrival of the minimum, minimum transit)
        self._buckets: deque[tuple[int, float, float]] = deque(maxlen=slope_buckets)

    def __len__(self) -> int:
        return len(self._buckets)

    def reset(self) -> None:
        self._buckets.clear()

    def add(self, arrival: float, transit: float) -> None:
        index = math.floor(arrival / self.bucket_s)
        if self._buckets and index <= self._buckets[-1][0]:
            # Same bucket, or an arrival clock that stepped back: fold into the newest one.
            last_index, _, last_min = self._buckets[-1]
            if transit < last_min:
                self._buckets[-1] = (last_index, arrival, transit)
            return
        self._buckets.append((index, arrival, transit))

    def level(self) -> float | None:
        """Minimum transit over the newest few buckets; None before any frame."""
        if not self._buckets:
            return None
        newest = self._buckets[-1][0]
        best = math.inf
        for index, _, transit in reversed(self._buckets):
            if index <= newest - self.level_buckets:
                break
            best = min(best, transit)
        return best

    def slope(self) -> float | None:
        """d(transit)/d(arrival) of the bucket minima (least squares); None with too few."""
        # The newest bucket is still filling: its minimum is biased high, and at the end of
        # the baseline that bias would tilt the slope by tens of ppm.
        done = list(self._buckets)[:-1]
        if len(done) < self.min_slope_buckets:
            return None
        xs = [b[1] for b in done]
        ys = [b[2] for b in done]
        n = len(xs)
        mx = sum(xs) / n
        my = sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx < (self.min_slope_buckets * self.bucket_s) ** 2 / 12:
            return None  # bunched arrivals: too short a baseline to tell drift from jitter
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
        return sxy / sxx
