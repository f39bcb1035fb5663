"""Evidence that words are abusive, from any text check, for the policy to turn into mutes.

Checks work on an utterance's words as the transcriber gave them; a hit names the words
that carry it (by index), so the policy can mute those words' media time and nothing else,
and records why, so QA can see what fired and at which threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# "text_model": the model shipped in the package (moderation/text_model.py); "classifier":
# kor_unsmile. "undecided": audio the transcription never reached (skipped under load),
# muted by policy; "manual": a counselor's or supervisor's mute (a span, a dump, a hold).
# "keyword_prefix": the first characters of a list entry ending the window, on a word still
# being spoken (moderation/keyword_prefix.py): provisional evidence.
Source = Literal["keyword", "keyword_prefix", "text_model", "classifier", "undecided", "manual"]


@dataclass(frozen=True)
class Hit:
    words: tuple[int, ...]  # indices into the checked word list, ascending
    source: Source
    category: str  # keyword category (profanity, insult, threat, sexual_harassment) or a model's label
    score: float  # 1.0 for a keyword; the classifier's probability for the label
    threshold: float  # what the score had to reach
    detail: str  # the list entry or label that fired: for QA, never shown to the counselor
    version: str  # keyword lists' content hash, or the model's version

    def record(self) -> dict[str, Any]:
        """The hit as the call log and replays keep it for QA."""
        return {
            "source": self.source,
            "category": self.category,
            "score": self.score,
            "threshold": self.threshold,
            "detail": self.detail,
            "version": self.version,
            "words": list(self.words),
        }
