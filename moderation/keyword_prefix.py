"""Provisional keyword hits on a word still being spoken: the window's text ends in the
first characters of a list entry ("씨바.." of 씨발놈아, "병시.." of 병신, "죽여.." of
죽여버린다).

A streaming transcriber's newest, unconfirmed tail often holds only a word's first
syllables. Waiting for the whole word costs its length in decision time, which a short
delay does not have; a prefix of an entry is evidence enough to mute speculatively from
the word's onset. The policy makes such a span provisional (the word is unconfirmed), so
it is lifted when the next pass shows a different word; the call moderator keeps a
prefix hit only while it reaches into the provisional tail (moderation/call_moderator.py).

`min_chars` (KeywordConfig.prefix_min_chars) is the trade-off: one syllable would mute
every clean word that begins like an abusive one (병원, 지난번, 미리) until it is
confirmed; two already tell 병원 from 병신. A prefix starts at a word's start (mid-word
fragments match too much by chance) and is matched in the same folded text as the
complete entries, so spacing and disguises fold alike. A recogniser may hear a syllable
before its final consonant ("병시" on the way to 병신), so a prefix may end in the entry's
next syllable without that consonant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from moderation.hits import Hit
from moderation.normalise import SYLLABLE_FIRST, SYLLABLE_LAST, Normalised

SOURCE: Final = "keyword_prefix"


@dataclass(frozen=True)
class PrefixIndex:
    """Every proper prefix of every folded non-allowlist entry -> (category, entry text)."""

    prefixes: dict[str, tuple[str, str]]
    complete: frozenset[str]  # the folded entries themselves: matched whole, never as prefixes
    longest: int

    @classmethod
    def build(cls, forms: Iterable[tuple[str, str, str]]) -> PrefixIndex:
        """`forms`: (folded form, category, entry text) of the non-allowlist entries."""
        prefixes: dict[str, tuple[str, str]] = {}
        complete: set[str] = set()
        longest = 0
        for form, category, text in sorted(forms):
            complete.add(form)
            longest = max(longest, len(form))
            for k in range(len(form)):
                if k:
                    prefixes.setdefault(form[:k], (category, text))
                opened = _without_final(form[k])
                if opened is not None:
                    prefixes.setdefault(form[:k] + opened, (category, text))
        return cls(prefixes, frozenset(complete), longest)

    def hits(self, norm: Normalised, min_chars: int, version: str) -> list[Hit]:
        """Hits for the entry prefixes the text ends in, starting at a word's start."""
        text, index = norm.text, norm.index
        n = len(text)
        found = []
        for start in range(max(0, n - self.longest + 1), n - min_chars + 1):
            if start > 0 and index[start - 1] == index[start]:
                continue  # inside a word
            tail = text[start:]
            entry = self.prefixes.get(tail)
            if entry is None or tail in self.complete:
                continue
            category, detail = entry
            covered = tuple(range(index[start], index[n - 1] + 1))
            found.append(Hit(covered, SOURCE, category, 1.0, 1.0, f"{detail} (prefix {tail})", version))
        return found


def _without_final(c: str) -> str | None:
    """The Hangul syllable without its final consonant (신 -> 시); None if it has none."""
    code = ord(c)
    if not SYLLABLE_FIRST <= code <= SYLLABLE_LAST:
        return None
    final = (code - SYLLABLE_FIRST) % 28
    return chr(code - final) if final else None
