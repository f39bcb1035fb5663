"""Mute spans in call media time, and the per-sample mask the delay line plays through.

Spans are stored in seconds (the one clock every part of the system shares) and turned
into sample indices only when a frame is rendered, so a span added by moderation, by a
supervisor or by QA replay means the same thing everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sample_at(seconds: float, rate: int) -> int:
    """First sample index n with n / rate >= seconds.

    The epsilon absorbs float error (0.1 * 48000 = 4800.000000000001) so a boundary given
    in seconds lands on the sample a person would expect, not one past it.
    """
    return math.ceil(seconds * rate - 1e-6)


def uncovered_s(start: float, end: float, spans: list[MuteSpan]) -> float:
    """Seconds of [start, end) that none of `spans` covers."""
    if end <= start:
        return 0.0
    total, pos = 0.0, start
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= pos or span.start >= end:
            continue
        total += max(0.0, span.start - pos)
        pos = max(pos, span.end)
        if pos >= end:
            return total
    return total + max(0.0, end - pos)


@dataclass(frozen=True)
class MuteSpan:
    span_id: int
    start: float  # media seconds, inclusive
    end: float  # media seconds, exclusive
    provisional: bool = False
    reason: str = ""


class MuteMap:
    """Active mute spans of one call. Overlaps are allowed: each span is lifted on its own."""

    def __init__(self) -> None:
        self._spans: dict[int, MuteSpan] = {}
        self._next_id = 1
        # Sorted view, rebuilt only after a change: mask() runs 50 times a second.
        self._sorted: list[MuteSpan] = []

    def add(self, start: float, end: float, provisional: bool = False, reason: str = "") -> MuteSpan:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"mute span bounds must be finite, got [{start}, {end})")
        if start < 0:
            raise ValueError(f"mute span starts before the call: start={start}")
        if end <= start:
            raise ValueError(f"mute span is empty: [{start}, {end})")
        span = MuteSpan(self._next_id, float(start), float(end), provisional, reason)
        self._next_id += 1
        self._spans[span.span_id] = span
        self._resort()
        return span

    def lift(self, span_id: int) -> MuteSpan | None:
        span = self._spans.pop(span_id, None)
        if span is not None:
            self._resort()
        return span

    def get(self, span_id: int) -> MuteSpan | None:
        return self._spans.get(span_id)

    def spans(self) -> list[MuteSpan]:
        """Active spans sorted by start."""
        return list(self._sorted)

    def __len__(self) -> int:
        return len(self._spans)

    def mask(self, start_sample: int, count: int, rate: int) -> np.ndarray:
        """Bool array, True where a span covers sample (start_sample + i)."""
        out = np.zeros(count, dtype=bool)
        stop = start_sample + count
        for span in self._sorted:
            s0 = sample_at(span.start, rate)
            if s0 >= stop:
                break  # sorted by start: nothing later can reach into the window
            s1 = sample_at(span.end, rate)
            if s1 <= start_sample:
                continue
            out[max(s0, start_sample) - start_sample : min(s1, stop) - start_sample] = True
        return out

    def provisional_within(self, start_s: float, end_s: float) -> bool:
        """A provisional span overlaps [start_s, end_s)."""
        for span in self._sorted:
            if span.start >= end_s:
                return False
            if span.provisional and span.end > start_s:
                return True
        return False

    def forget_before(self, media_s: float) -> None:
        """Drop spans ending at or before media_s, so a long call keeps bounded memory."""
        stale = [sid for sid, span in self._spans.items() if span.end <= media_s]
        for sid in stale:
            del self._spans[sid]
        if stale:
            self._resort()

    def _resort(self) -> None:
        self._sorted = sorted(self._spans.values(), key=lambda s: (s.start, s.span_id))
