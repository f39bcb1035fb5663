"""Guard against Whisper's inventions on silence and noise.

Whisper trained on captioned video: on silence, hum or line noise it writes subtitle
credits and sign-offs ("시청해주셔서 감사합니다"), and on hard audio it can loop one phrase
over and over. A segment is dropped when:
- Whisper itself doubts there was speech: no_speech_prob > no_speech_threshold and
  avg_logprob < logprob_threshold (Whisper's own rule, both conditions together);
- its normalised text is one of the configured phrases (config.hallucinations), whole;
- it is a repeat loop: one unit (a word n-gram, or a run of characters for Korean
  written without spaces) repeated LOOP_MIN_REPEATS times or more and making up nearly
  all of the text;
- (when the caller says so) it lies wholly outside audio the VAD called speech.
Before those rules, a segment is cut before its first run of COLLAPSED_RUN_MIN words
aligned to no time, or of PACKED_RUN_WORDS words within PACKED_RUN_S (faster than anyone
speaks), and loses its collapsed tail: COLLAPSED_MIN_WORDS or more words
at its end aligned to no time at all (under COLLAPSED_WORD_S each), with the words before
them that, together with them, repeat earlier words of the segment. Whisper piles text it
invents past the end of what it heard onto the window's last instant: "Put me through to
your manager right now Put me through to your manager right now", the second time with
seven words at 17.17 s, agreed on by two passes (bench/stt_lag.py, --lang en). A segment
left with no words is dropped as "collapsed".

Dropping only ever removes text that is not a word the customer said, as far as can be
told; a real "감사합니다" alone is dropped too, which costs the moderation nothing (it is not
abuse). The repeat rule needs many repeats, so a customer repeating a swear word three or
four times is still heard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from moderation.agreement import normalise
from moderation.speech import EngineSegment, EngineWord
from moderation.stt_config import SttConfig

LOOP_MIN_REPEATS = 5
LOOP_MIN_COVER = 0.8  # share of the segment's text the repeated unit must make up
COLLAPSED_MIN_WORDS = 2
COLLAPSED_WORD_S = 0.02  # a spoken word, even a clipped one, takes longer
# Three such words in a row, anywhere: the decoder went on past what the alignment can
# place ("charged twice for this. I will charge you" at one instant, agreed on by
# nothing, confirmed by age); what follows them is not to be trusted either.
COLLAPSED_RUN_MIN = 3
# Five words in 0.35 s (14 a second; fast speech is 4-6): a decoder copying its prompt
# onto audio that said something else ("to call you it still does not arrive and nobody
# answers my emails" onto 1.1 s of "I ... I", words 0.02-0.08 s long, so not collapsed,
# then confirmed by age). In real base weights' passes over English espeak-ng calls, the
# five-word windows read that lay under 0.4 s were all invented; real ones 0.5 s or more.
PACKED_RUN_WORDS = 5
PACKED_RUN_S = 0.35


@dataclass(frozen=True)
class Dropped:
    segment: EngineSegment  # what was dropped: a whole segment, or the words cut off its end
    reason: str  # "no_speech" | "blocklist" | "repeat_loop" | "collapsed" | "outside_speech"


# Reasons that say the decoder lost its way, not that nobody spoke: from there on the
# pass tells nothing about the audio.
INVENTED = frozenset({"repeat_loop", "collapsed"})


def segment_text(segment: EngineSegment) -> str:
    if segment.text.strip():
        return segment.text
    return " ".join(w.text.strip() for w in segment.words)


def is_repeat_loop(text: str, min_repeats: int = LOOP_MIN_REPEATS, min_cover: float = LOOP_MIN_COVER) -> bool:
    """True for text that is mostly one unit said min_repeats times or more in a row."""
    words = [w for w in (normalise(t) for t in text.split()) if w]
    chars = normalise(text)
    # Word level: an n-gram (n <= 4) repeated; character level: a short unit repeated.
    return _repeated(words, range(1, 5), min_repeats, min_cover) or _repeated(
        chars, range(1, len(chars) // min_repeats + 1), min_repeats, min_cover
    )


def _repeated(seq: Sequence[Any], sizes: Iterable[int], min_repeats: int, min_cover: float) -> bool:
    """Whether a unit of one of `sizes` repeats back to back over min_cover of `seq`."""
    for size in sizes:
        # The loop must cover min_cover of the sequence, so it starts near the beginning.
        for i in range(0, min(len(seq) - size * min_repeats, int(len(seq) * (1 - min_cover))) + 1):
            unit = seq[i : i + size]
            k = 1
            while seq[i + k * size : i + (k + 1) * size] == unit:
                k += 1
            if k >= min_repeats and k * size >= min_cover * len(seq):
                return True
    return False


def without_collapsed(segment: EngineSegment) -> EngineSegment:
    """The segment cut before its first run of COLLAPSED_RUN_MIN words that take no time
    or of PACKED_RUN_WORDS words packed into PACKED_RUN_S, or else before the
    COLLAPSED_MIN_WORDS or more no-time words at its end; either way also without the
    words just before the cut that repeat, with what follows, what the segment said
    earlier."""
    words = segment.words
    collapsed = [w.end - w.start < COLLAPSED_WORD_S for w in words]
    cut = next((i for i in range(len(words)) if _invented_run_at(words, collapsed, i)), len(words))
    if cut == len(words):
        while cut > 0 and collapsed[cut - 1]:
            cut -= 1
        if len(words) - cut < COLLAPSED_MIN_WORDS:
            return segment
    norm = [normalise(w.text) for w in words]
    while cut > 0 and _occurs_in(norm[cut - 1 :], norm[: cut - 1]):
        cut -= 1
    kept = words[:cut]
    return replace(segment, words=kept, text=" ".join(w.text.strip() for w in kept))


def _invented_run_at(words: Sequence[EngineWord], collapsed: list[bool], i: int) -> bool:
    """Whether a run of words no one could have said starts at words[i]."""
    run = collapsed[i : i + COLLAPSED_RUN_MIN]
    if len(run) == COLLAPSED_RUN_MIN and all(run):
        return True
    last = i + PACKED_RUN_WORDS - 1
    return last < len(words) and words[last].end - words[i].start < PACKED_RUN_S


def _occurs_in(part: list[str], seq: list[str]) -> bool:
    n = len(part)
    return any(seq[i : i + n] == part for i in range(len(seq) - n + 1))


class HallucinationGuard:
    def __init__(self, config: SttConfig) -> None:
        self.no_speech_threshold = config.no_speech_threshold
        self.logprob_threshold = config.logprob_threshold
        self.phrases = frozenset(p for p in (normalise(h) for h in config.hallucinations) if p)

    def reason(self, segment: EngineSegment) -> str | None:
        """Why the segment should be dropped, or None to keep it."""
        if segment.no_speech_prob > self.no_speech_threshold and segment.avg_logprob < self.logprob_threshold:
            return "no_speech"
        text = segment_text(segment)
        norm = normalise(text)
        if not norm:
            return None
        if norm in self.phrases:
            return "blocklist"
        if is_repeat_loop(text):
            return "repeat_loop"
        return None

    def filter(
        self,
        segments: list[EngineSegment],
        has_speech: Callable[[float, float], bool] | None = None,
    ) -> tuple[list[EngineSegment], list[Dropped]]:
        """Splits segments into kept and dropped. has_speech(start, end), in the segments'
        own time base, says whether the VAD heard speech there; segments it rejects are
        dropped as "outside_speech"."""
        kept: list[EngineSegment] = []
        dropped: list[Dropped] = []
        for seg in segments:
            trimmed = without_collapsed(seg)
            if len(trimmed.words) < len(seg.words):
                cut = seg.words[len(trimmed.words) :]
                text = " ".join(w.text.strip() for w in cut)
                dropped.append(Dropped(replace(seg, words=cut, text=text), "collapsed"))
                if not trimmed.words:
                    continue
            seg = trimmed
            why = self.reason(seg)
            if why is None and has_speech is not None:
                start, end = span(seg)
                if not has_speech(start, end):
                    why = "outside_speech"
            if why is None:
                kept.append(seg)
            else:
                dropped.append(Dropped(seg, why))
        return kept, dropped


def span(segment: EngineSegment) -> tuple[float, float]:
    """The segment's time span, from its words where it has any."""
    if segment.words:
        return min(w.start for w in segment.words), max(w.end for w in segment.words)
    return segment.start, segment.end
