"""How the text checks' hits combine into what gets muted ([checks] in the server's config).

"any": every hit of every check mutes its words (the checks are alternatives: a keyword,
the shipped text model or kor_unsmile, each on its own, is enough).
"weighted": a word is muted when the weighted sum of the scores of the hits that cover it
reaches `threshold`: sum(weights[hit.source] * hit.score). A keyword hit scores 1.0, a
model hit its probability; with the defaults a keyword alone mutes, a model alone mutes
only when it is sure, and two models that agree mute. Hits keep only their muted words,
so QA still sees which checks fired on each muted word and with what score. Per-label
thresholds stay with each model ([text_model.thresholds], [classifier.thresholds]): a hit
exists only once its label is over its own threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from moderation.hits import Hit

SOURCES = ("keyword", "text_model", "classifier")


@dataclass(frozen=True)
class CombinationConfig:
    rule: Literal["any", "weighted"] = "any"
    # Used by rule = "weighted" only: a weight per check, and the sum a word must reach.
    weights: dict[str, float] = field(default_factory=lambda: {"keyword": 1.0, "text_model": 0.8, "classifier": 0.8})
    threshold: float = 0.75

    def validate(self) -> None:
        if self.rule not in ("any", "weighted"):
            raise ValueError(f"checks.rule must be 'any' or 'weighted', not {self.rule!r}")
        for source, value in self.weights.items():
            key = f"checks.weights.{source}"
            if source not in SOURCES:
                raise ValueError(f"{key}: unknown check (the checks are {', '.join(SOURCES)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number")
            if not 0.0 <= value <= 10.0:
                raise ValueError(f"{key} = {value} is out of range [0.0, 10.0]")
        if not 0.0 < self.threshold <= 10.0:
            raise ValueError(f"checks.threshold = {self.threshold} is out of range (0.0, 10.0]")


def combine(hits: list[Hit], config: CombinationConfig) -> list[Hit]:
    """The hits that mute under the rule, each cut down to the words it mutes."""
    if config.rule == "any" or not hits:
        return hits
    weight = {source: config.weights.get(source, 0.0) for source in SOURCES}
    support: dict[int, float] = {}
    for hit in hits:
        for i in hit.words:
            support[i] = support.get(i, 0.0) + weight.get(hit.source, 1.0) * hit.score
    muted = {i for i, total in support.items() if total >= config.threshold - 1e-9}
    out = []
    for hit in hits:
        words = tuple(i for i in hit.words if i in muted)
        if words:
            out.append(hit if words == hit.words else dataclasses.replace(hit, words=words))
    return out
