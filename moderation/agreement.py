"""LocalAgreement-2: confirm a word once two consecutive hypotheses agree on it.

The streaming transcriber re-transcribes a growing audio buffer every chunk. Each pass
gives a full hypothesis for the buffer; the words at its end are unreliable (Whisper sees
half a word, or changes its mind once it hears the rest of the sentence). A word is
confirmed when the previous hypothesis and the new one agree on it, and on every word
before it, counting from the last confirmed word (the idea of ufal/whisper_streaming's
HypothesisBuffer; this is our own implementation).

Words are compared by normalised text (NFKC, case-folded, punctuation and spaces removed)
and must also roughly agree in time, so the same word said twice is not taken for one.
All times here are call media time (seconds); the transcriber maps engine times first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from moderation.speech import Word

# Unicode punctuation, symbols and separators; kept out of comparisons.
_STRIP = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """The form words and phrases are compared in: NFKC, case-folded, no spaces/punctuation."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())


class LocalAgreement:
    """Hypothesis buffer for one call.

    insert(words) takes the newest hypothesis (the words of one pass over the buffer, in
    media time, in order) and returns the words it confirms. `tail` is the provisional
    rest of the latest hypothesis. finalize() confirms the tail without waiting for a
    second opinion (end of an utterance, end of the call, a forced buffer cut).
    """

    def __init__(
        self, *, overlap_s: float = 0.1, dedupe_window_s: float = 1.0, max_ngram: int = 5, max_shift_s: float = 1.0
    ) -> None:
        # New words must start after the last confirmed end, less this much (Whisper's
        # word boundaries wobble by tens of milliseconds between passes).
        self.overlap_s = overlap_s
        # Re-transcribed confirmed words at the head of a hypothesis are recognised by
        # text only when they start this close to the last confirmed end.
        self.dedupe_window_s = dedupe_window_s
        self.max_ngram = max_ngram
        # Two hypotheses agree on a word only if its start moved less than this.
        self.max_shift_s = max_shift_s
        self.committed_end: float = float("-inf")
        self._committed_in_buffer: list[Word] = []  # confirmed words whose audio is still buffered
        self._tail: list[Word] = []

    @property
    def tail(self) -> list[Word]:
        """Provisional words of the latest hypothesis, not yet confirmed."""
        return list(self._tail)

    def insert(self, words: list[Word]) -> list[Word]:
        new = self._new_part(words)
        confirmed: list[Word] = []
        i = 0
        while i < len(new) and i < len(self._tail):
            a, b = self._tail[i], new[i]
            if normalise(a.text) != normalise(b.text) or abs(a.start - b.start) > self.max_shift_s:
                break
            confirmed.append(replace(b, confirmed=True))
            i += 1
        self._tail = [replace(w, confirmed=False) for w in new[i:]]
        self._commit(confirmed)
        return confirmed

    def finalize(self, before: float | None = None) -> list[Word]:
        """Confirm provisional words starting before `before` (all of them when None)."""
        if before is None:
            take, keep = self._tail, []
        else:
            k = 0
            while k < len(self._tail) and self._tail[k].start < before:
                k += 1
            take, keep = self._tail[:k], self._tail[k:]
        confirmed = [replace(w, confirmed=True) for w in take]
        self._tail = keep
        self._commit(confirmed)
        return confirmed

    def finalize_ended(self, t: float) -> list[Word]:
        """Confirm the provisional words, in order, that end by t (the decision-lag bound:
        the newest hypothesis is taken as it stands once its words are old enough)."""
        k = 0
        while k < len(self._tail) and self._tail[k].end <= t:
            k += 1
        confirmed = [replace(w, confirmed=True) for w in self._tail[:k]]
        self._tail = self._tail[k:]
        self._commit(confirmed)
        return confirmed

    def confirmed_in_buffer(self) -> list[Word]:
        """Confirmed words whose audio is still buffered (oldest first)."""
        return list(self._committed_in_buffer)

    def forget_before(self, t: float) -> None:
        """The buffer was cut at t: confirmed words ending by then are no longer re-heard."""
        self._committed_in_buffer = [w for w in self._committed_in_buffer if w.end > t]

    def _commit(self, words: list[Word]) -> None:
        if words:
            self._committed_in_buffer.extend(words)
            self.committed_end = max(self.committed_end, max(w.end for w in words))

    def _new_part(self, words: list[Word]) -> list[Word]:
        """The part of a hypothesis that extends what is confirmed."""
        words = [w for w in words if normalise(w.text)]
        if self.committed_end == float("-inf"):
            return words
        new = [w for w in words if w.start > self.committed_end - self.overlap_s]
        # The last confirmed words may come back at the head with shifted times: drop the
        # longest run of them (by text) that reappears there.
        if new and self._committed_in_buffer and abs(new[0].start - self.committed_end) < self.dedupe_window_s:
            done = [normalise(w.text) for w in self._committed_in_buffer]
            head = [normalise(w.text) for w in new]
            for n in range(min(len(done), len(head), self.max_ngram), 0, -1):
                if done[-n:] == head[:n]:
                    new = new[n:]
                    break
        return new
