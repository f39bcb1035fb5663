"""Two sets of mute spans over one call, compared the way QA reads them: added, removed, changed.

A replay (offline/replay.py) re-runs the moderation over a logged call with another config;
QA wants to know what it would have silenced differently. Span by span matching is
fragile (a re-run may split one mute into two touching pieces, or merge two into one),
so spans are grouped into connected components: spans of either side that overlap or
touch belong to one component. A component with spans of only the new side is *added*,
of only the old side *removed*; one with both is *changed*, unless both sides mute the
same audio for the same reasons:

- the same audio: the union of each side's spans, as intervals, has the same count and
  every edge within `tolerance_s` (so a split that silences exactly the same stretch is
  no change: the counselor hears the same thing);
- the same reasons: the same categories (a category gained or lost is a change QA wants
  to see, e.g. the classifier now also fires on a keyword mute).

Pure data in and out: no relay, no database. Times are call media seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["added", "removed", "changed"]

# Transcript replays re-judge the very same words: edges agree to rounding. (Audio replays
# re-time the words, so offline/replay.py passes a wider tolerance for them.)
DEFAULT_TOLERANCE_S = 0.01
# Spans this close count as touching (float noise on edges computed by different sums).
_TOUCH_S = 1e-6


@dataclass(frozen=True)
class Span:
    """One mute span and why, from either side (shaped as a call_decisions row)."""

    span_id: int
    start: float
    end: float
    words: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    hits: tuple[dict[str, Any], ...] = ()

    @property
    def reasons(self) -> list[str]:
        """source:category of every hit, as the delay line and the QA page name them."""
        return sorted({f"{h.get('source')}:{h.get('category')}" for h in self.hits}) or list(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "start": self.start,
            "end": self.end,
            "words": list(self.words),
            "categories": list(self.categories),
            "reasons": self.reasons,
            "hits": [dict(h) for h in self.hits],
        }


@dataclass(frozen=True)
class DiffItem:
    kind: Kind
    start: float  # the component's extent, both sides together
    end: float
    before: tuple[Span, ...]  # the old side's spans in it (empty when added)
    after: tuple[Span, ...]  # the new side's (empty when removed)

    def to_dict(self) -> dict[str, Any]:
        # Words and reasons of the side that stands after the change (the old one when removed).
        side = self.after or self.before
        return {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "words": [w for s in side for w in s.words],
            "categories": _categories(side),
            "reasons": sorted({r for s in side for r in s.reasons}),
            "hits": [dict(h) for s in side for h in s.hits],
            "before": [s.to_dict() for s in self.before],
            "after": [s.to_dict() for s in self.after],
        }


@dataclass
class SpanDiff:
    added: list[DiffItem] = field(default_factory=list)
    removed: list[DiffItem] = field(default_factory=list)
    changed: list[DiffItem] = field(default_factory=list)
    unchanged: int = 0  # components both sides mute alike
    tolerance_s: float = DEFAULT_TOLERANCE_S

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def items(self) -> list[DiffItem]:
        """Every item in media-time order."""
        return sorted(self.added + self.removed + self.changed, key=lambda i: (i.start, i.end))

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [i.to_dict() for i in self.added],
            "removed": [i.to_dict() for i in self.removed],
            "changed": [i.to_dict() for i in self.changed],
            "unchanged": self.unchanged,
            "tolerance_s": self.tolerance_s,
        }


def diff_spans(before: list[Span], after: list[Span], tolerance_s: float = DEFAULT_TOLERANCE_S) -> SpanDiff:
    """What `after` mutes differently from `before`."""
    diff = SpanDiff(tolerance_s=tolerance_s)
    for old, new in _components(before, after):
        start = min(s.start for s in old + new)
        end = max(s.end for s in old + new)
        if not old:
            diff.added.append(DiffItem("added", start, end, (), tuple(new)))
        elif not new:
            diff.removed.append(DiffItem("removed", start, end, tuple(old), ()))
        elif _same(old, new, tolerance_s):
            diff.unchanged += 1
        else:
            diff.changed.append(DiffItem("changed", start, end, tuple(old), tuple(new)))
    return diff


def _components(before: list[Span], after: list[Span]) -> list[tuple[list[Span], list[Span]]]:
    """Spans of both sides grouped by overlap (touching counts), in media-time order."""
    tagged = sorted(
        [(s, False) for s in before] + [(s, True) for s in after], key=lambda t: (t[0].start, t[0].end, t[1])
    )
    groups: list[tuple[list[Span], list[Span]]] = []
    reach = float("-inf")
    for span, is_after in tagged:
        if not groups or span.start > reach + _TOUCH_S:
            groups.append(([], []))
            reach = span.end
        groups[-1][1 if is_after else 0].append(span)
        reach = max(reach, span.end)
    return groups


def _same(old: list[Span], new: list[Span], tolerance_s: float) -> bool:
    if _categories(old) != _categories(new):
        return False
    a, b = _coverage(old, tolerance_s), _coverage(new, tolerance_s)
    return len(a) == len(b) and all(
        abs(x[0] - y[0]) <= tolerance_s and abs(x[1] - y[1]) <= tolerance_s for x, y in zip(a, b)
    )


def _coverage(spans: list[Span], gap_s: float) -> list[tuple[float, float]]:
    """The audio the spans silence, as sorted disjoint intervals (gaps under gap_s closed)."""
    out: list[tuple[float, float]] = []
    for s in sorted(spans, key=lambda s: s.start):
        if out and s.start <= out[-1][1] + gap_s:
            out[-1] = (out[-1][0], max(out[-1][1], s.end))
        else:
            out.append((s.start, s.end))
    return out


def _categories(spans: tuple[Span, ...] | list[Span]) -> list[str]:
    return sorted({c for s in spans for c in s.categories})
