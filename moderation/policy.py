"""From hits on words to mute spans in call media time, with the reasons kept for QA.

The policy is the only place that decides what gets silenced. It takes the words of the
current stretch of speech (confirmed words, then the provisional tail), the hits the text
checks found on them, and answers with the spans to mute: each hit's words, padded a
little on both sides (word timestamps from Whisper are approximate), merged where spans
touch so the counselor hears one clean gap rather than a stutter.

A span drawn from provisional words is provisional: if the next transcription pass
revises those words away, the span is lifted (before playout, it is as if it never was;
after, the miss is the delay line's to count). A span whose words are confirmed stays.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from moderation.hits import Hit
from moderation.speech import Word


@dataclass(frozen=True)
class PolicyConfig:
    # Whisper's word times are good to a few tens of ms: pad so the whole word is covered.
    pad_before_s: float = 0.08
    pad_after_s: float = 0.12
    # Spans closer than this become one: two mutes 0.1 s apart sound like a stutter.
    merge_gap_s: float = 0.25
    # Mute on provisional words (lifted if revised away), or wait for confirmation.
    mute_provisional: bool = True

    def validate(self) -> None:
        for key in ("pad_before_s", "pad_after_s", "merge_gap_s"):
            value = getattr(self, key)
            if not 0.0 <= value <= 2.0:
                raise ValueError(f"policy.{key} = {value} is out of range [0.0, 2.0]")


@dataclass(frozen=True)
class Decision:
    """One mute span and why: kept with the call, shown to QA (never the words to the counselor)."""

    start: float  # media seconds, padded: what is silenced
    end: float
    words: tuple[Word, ...]  # the words that carried the hits
    hits: tuple[Hit, ...]
    provisional: bool
    decided_at: float  # wall clock (time.time()) when the span was decided
    categories: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[float, float]:
        """Identity across passes: the words' own extent (padding is config, not identity);
        a span over audio with no words (never transcribed) is its own extent."""
        return (self.words[0].start, self.words[-1].end) if self.words else (self.start, self.end)

    @property
    def reason(self) -> str:
        """The span's reason as the delay line and the pages see it: categories, no words."""
        return ",".join(sorted({f"{h.source}:{h.category}" for h in self.hits}))


SKIPPED_CATEGORY = "transcription_skipped"


def skipped_decision(start: float, end: float, now: float) -> Decision:
    """A mute for audio the transcription skipped (the machine fell behind): never heard by
    the checks, so it is silenced under the undecided policy "mute", with the reason kept."""
    hit = Hit(
        words=(),
        source="undecided",
        category=SKIPPED_CATEGORY,
        score=1.0,
        threshold=1.0,
        detail="never transcribed: transcription fell behind",
        version="",
    )
    return Decision(
        start=max(0.0, start),
        end=end,
        words=(),
        hits=(hit,),
        provisional=False,
        decided_at=now,
        categories=(SKIPPED_CATEGORY,),
    )


@dataclass
class Changes:
    add: list[Decision] = field(default_factory=list)
    lift: list[Decision] = field(default_factory=list)


def plan(words: list[Word], hits: list[Hit], config: PolicyConfig, now: float | None = None) -> list[Decision]:
    """The spans to mute for `hits` on `words` (indices in the hits refer to `words`)."""
    now = time.time() if now is None else now
    spans: list[tuple[float, float, set[int], Hit]] = []  # (padded start, padded end, word indices, hit)
    for hit in hits:
        hit_words = sorted(i for i in hit.words if 0 <= i < len(words))
        if hit_words:
            spans.append(
                (
                    words[hit_words[0]].start - config.pad_before_s,
                    words[hit_words[-1]].end + config.pad_after_s,
                    set(hit_words),
                    hit,
                )
            )
    spans.sort(key=lambda span: span[0])
    merged: list[tuple[float, set[int], list[Hit]]] = []  # (end, indices, hits), in start order
    for start, end, indices, hit in spans:
        if merged and start - merged[-1][0] <= config.merge_gap_s:
            last_end, last_indices, last_hits = merged[-1]
            merged[-1] = (max(last_end, end), last_indices | indices, last_hits + [hit])
        else:
            merged.append((end, indices, [hit]))
    decisions = []
    for _, indices, group in merged:
        carried = tuple(words[i] for i in sorted(indices))
        decisions.append(
            Decision(
                start=max(0.0, carried[0].start - config.pad_before_s),
                end=carried[-1].end + config.pad_after_s,
                words=carried,
                hits=tuple(group),
                provisional=not all(w.confirmed for w in carried),
                decided_at=now,
                categories=tuple(sorted({h.category for h in group})),
            )
        )
    return decisions


class SpanBook:
    """The spans one call has decided, so each pass only adds what is new and lifts what went.

    Confirmed spans are final. Provisional spans are re-derived every pass: one whose words
    no longer appear is lifted; one whose words became confirmed is replaced by its
    confirmed decision.
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.confirmed: dict[tuple[float, float], Decision] = {}
        self.provisional: dict[tuple[float, float], Decision] = {}

    def review(self, decisions: list[Decision]) -> Changes:
        """`decisions` from plan() over the current words; returns what to add and lift."""
        changes = Changes()
        current_provisional: dict[tuple[float, float], Decision] = {}
        for decision in decisions:
            if decision.provisional and not self.config.mute_provisional:
                continue
            key = decision.key
            if key in self.confirmed:
                continue
            if not decision.provisional:
                if key in self.provisional:
                    changes.lift.append(self.provisional.pop(key))
                uncovered = self._beyond_confirmed(decision)
                self.confirmed[key] = decision
                if uncovered is not None:
                    changes.add.append(uncovered)
            elif key in self.provisional:
                current_provisional[key] = self.provisional.pop(key)
            else:
                current_provisional[key] = decision
                changes.add.append(decision)
        # Whatever provisional span was not seen again was revised away.
        changes.lift.extend(self.provisional.values())
        self.provisional = current_provisional
        return changes

    def _beyond_confirmed(self, decision: Decision) -> Decision | None:
        """The part of `decision` not already muted by a confirmed span, or None.

        A sentence judged again as it grows merges a new word into an earlier span; only the
        new stretch is new, and re-adding the old one would count as a late mute.
        """
        start = decision.start
        for span in sorted(self.confirmed.values(), key=lambda d: d.start):
            if span.start <= start < span.end:
                start = span.end
        if start >= decision.end:
            return None
        return decision if start == decision.start else dataclasses.replace(decision, start=start)
