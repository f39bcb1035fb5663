"""One call's moderation: which words to judge after each transcription pass, and the spans.

Text checks judge sentences, not lone words (a classifier needs context; a phrase list
needs the neighbours), so every pass judges a window: the recent confirmed words of the
current stretch of speech plus the provisional tail. Hits on it go through the policy;
the span book says what to add and what to lift. The live relay and the offline
evaluation drive this the same way:

    window = moderator.window(update)          # after each TranscriptUpdate
    context = moderator.context(window)        # the words said just before it, as text
    hits = keywords(texts, context) + text_model(texts, context)  # texts = [w.text for w in window]
    changes = moderator.decide(window, hits, update.skipped)  # spans to add, spans to lift
    ledger.apply(changes)                       # moderation/span_ledger.py: into the mute sink

Context: harassment and threats are often abusive only after what came before (목소리
예쁘네 ... 오늘 밤에 만날래). Words that leave the judged window (a pause ended their
sentence, or the window is full) stay as context for a while: at most CONTEXT_BEFORE_WORDS
words, none that ended more than CONTEXT_BEFORE_S before the window starts. A check may
read them, but its hits index the window only, so a hit on context mutes only the current
words; the earlier words were judged, and muted or not, when they were current.

Audio the transcriber skipped (never transcribed, so never judged) is muted here too when
the undecided policy is "mute" (mute_skipped), so those mutes are decisions like any other:
published, logged, shown to QA.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from moderation.hits import Hit
from moderation.policy import Changes, Decision, PolicyConfig, SpanBook, plan, skipped_decision
from moderation.speech import TranscriptUpdate, Word

# Any text check: the words of a window and the words said just before it (context, which
# a check may ignore) in; hits with indices into the window's words out.
TextCheck = Callable[[list[str], Sequence[str]], list[Hit]]
# The keyword lists' entry starts on a word still being spoken: the window's words alone.
PrefixCheck = Callable[[list[str]], list[Hit]]

# A pause this long ends a sentence: older words leave the judged window.
SENTENCE_GAP_S = 1.0
# At most this many confirmed words of context (a classifier's input stays short).
CONTEXT_WORDS = 24
# The earlier words a check may see as context (a few utterances): bounded in count and age.
CONTEXT_BEFORE_WORDS = 16
CONTEXT_BEFORE_S = 15.0


class CallModerator:
    def __init__(
        self, policy: PolicyConfig, clock: Callable[[], float] = time.time, mute_skipped: bool = False
    ) -> None:
        self._book = SpanBook(policy)
        self.mute_skipped = mute_skipped  # changes with the undecided policy (a live change)
        self._policy = policy
        self._clock = clock
        self._confirmed: deque[Word] = deque(maxlen=CONTEXT_WORDS)
        self._earlier: deque[Word] = deque(maxlen=CONTEXT_BEFORE_WORDS)  # left the window
        self._provisional: list[Word] = []
        self.decisions: list[Decision] = []  # every span added, in order: the call's record

    def window(self, update: TranscriptUpdate) -> list[Word]:
        """The words to judge after `update`: the current sentence's confirmed words and the tail."""
        for word in update.confirmed:
            if self._confirmed and word.start - self._confirmed[-1].end >= SENTENCE_GAP_S:
                self._end_sentence()
            if len(self._confirmed) == CONTEXT_WORDS:
                self._earlier.append(self._confirmed[0])
            self._confirmed.append(word)
        self._provisional = list(update.provisional)
        if (
            self._provisional
            and self._confirmed
            and self._provisional[0].start - self._confirmed[-1].end >= SENTENCE_GAP_S
        ):
            self._end_sentence()
        return list(self._confirmed) + self._provisional

    def _end_sentence(self) -> None:
        self._earlier.extend(self._confirmed)
        self._confirmed.clear()

    def context(self, window: Sequence[Word]) -> list[str]:
        """The words said before `window` that a check may read with it (see the module docstring)."""
        if not window:
            return []
        since = window[0].start - CONTEXT_BEFORE_S
        return [w.text for w in self._earlier if w.end >= since and w.end <= window[0].start]

    def tail_hits(self, window: list[Word], prefix_check: PrefixCheck | None) -> list[Hit]:
        """`prefix_check`'s hits (entry starts, KeywordMatcher.match_prefixes) on a window
        that ends in a word still being spoken, those reaching into the provisional tail:
        the start of an entry is evidence only while the word may still become it."""
        if prefix_check is None or not window or window[-1].confirmed:
            return []
        first_tail = next(i for i, w in enumerate(window) if not w.confirmed)
        return [h for h in prefix_check([w.text for w in window]) if h.words and h.words[-1] >= first_tail]

    def decide(self, window: list[Word], hits: list[Hit], skipped: Sequence[tuple[float, float]] = ()) -> Changes:
        now = self._clock()
        changes = self._book.review(plan(window, hits, self._policy, now=now))
        if self.mute_skipped:
            changes.add.extend(skipped_decision(a, b, now) for a, b in skipped if b > a)
        self.decisions.extend(changes.add)
        return changes

    def judge(
        self, update: TranscriptUpdate, checks: list[TextCheck], prefix_check: PrefixCheck | None = None
    ) -> Changes:
        """window, checks and decide in one go, for callers whose checks are synchronous."""
        window = self.window(update)
        texts, context = [w.text for w in window], self.context(window)
        hits = [hit for check in checks for hit in check(texts, context)] if texts else []
        return self.decide(window, hits + self.tail_hits(window, prefix_check), update.skipped)
