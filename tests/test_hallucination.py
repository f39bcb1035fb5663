"""The hallucination guard on hand-made segments."""

from __future__ import annotations

from moderation.hallucination import HallucinationGuard, is_repeat_loop
from moderation.speech import EngineSegment, EngineWord
from moderation.stt_config import SttConfig


def seg(
    text: str, start: float = 0.0, end: float = 1.0, no_speech: float = 0.0, logprob: float = -0.2
) -> EngineSegment:
    parts = text.split()
    step = (end - start) / max(1, len(parts))
    words = [EngineWord(" " + p, start + i * step, start + (i + 1) * step) for i, p in enumerate(parts)]
    return EngineSegment(words, start, end, no_speech, logprob, " " + text)


GUARD = HallucinationGuard(SttConfig())


def test_blocklisted_phrase_is_dropped_however_it_is_spaced() -> None:
    assert GUARD.reason(seg("시청해주셔서 감사합니다")) == "blocklist"
    assert GUARD.reason(seg("시청해 주셔서 감사합니다.")) == "blocklist"
    assert GUARD.reason(seg("시청 해주셔서   감사 합니다!")) == "blocklist"


def test_phrase_inside_real_speech_is_kept() -> None:
    # Only a segment that is the phrase, whole, is dropped.
    assert GUARD.reason(seg("정말 감사합니다 고객님")) is None
    assert GUARD.reason(seg("안녕하세요 상담원입니다")) is None


def test_configured_list_is_used() -> None:
    guard = HallucinationGuard(SttConfig(hallucinations=["자막 by 홍길동"]))
    assert guard.reason(seg("자막 by 홍길동")) == "blocklist"
    assert guard.reason(seg("시청해주셔서 감사합니다")) is None


def test_whisper_no_speech_rule_needs_both_conditions() -> None:
    assert GUARD.reason(seg("어 음", no_speech=0.9, logprob=-1.5)) == "no_speech"
    assert GUARD.reason(seg("어 음", no_speech=0.9, logprob=-0.3)) is None  # confident text
    assert GUARD.reason(seg("어 음", no_speech=0.3, logprob=-1.5)) is None  # speech likely


def test_repeat_loops() -> None:
    assert is_repeat_loop("네 네 네 네 네 네 네")
    assert is_repeat_loop("감사합니다 감사합니다 감사합니다 감사합니다 감사합니다")
    assert is_repeat_loop("좋아요좋아요좋아요좋아요좋아요좋아요")
    assert is_repeat_loop("a b a b a b a b a b")
    assert not is_repeat_loop("네 네 네")
    assert not is_repeat_loop("안녕하세요 상담원입니다 무엇을 도와드릴까요")
    assert GUARD.reason(seg("네 네 네 네 네 네 네")) == "repeat_loop"
    # A customer repeating a swear word a few times is speech, not a loop.
    assert GUARD.reason(seg("씨발 씨발 씨발 씨발")) is None


def test_segments_outside_speech_are_dropped_when_vad_is_given() -> None:
    speech = [(0.0, 1.0)]

    def has_speech(s: float, e: float) -> bool:
        return any(a < e and b > s for a, b in speech)

    inside, outside = seg("안녕하세요", 0.2, 0.8), seg("안녕하세요", 1.5, 2.0)
    kept, dropped = GUARD.filter([inside, outside], has_speech)
    assert kept == [inside]
    assert [(d.segment, d.reason) for d in dropped] == [(outside, "outside_speech")]
    kept, dropped = GUARD.filter([inside, outside])
    assert kept == [inside, outside] and dropped == []


def timed(*words: tuple[str, float, float]) -> EngineSegment:
    ws = [EngineWord(" " + t, a, b) for t, a, b in words]
    return EngineSegment(ws, ws[0].start, ws[-1].end, 0.0, -0.2, " ".join(t for t, _, _ in words))


def test_an_invented_repeat_piled_on_the_window_end_is_cut() -> None:
    # As real base weights gave it (bench/stt_lag.py --lang en): the utterance, then its
    # repeat with every word but the first at the window's last instant.
    said = [("put", 14.3, 15.1), ("me", 15.1, 15.3), ("through", 15.3, 15.5), ("now", 16.4, 16.8)]
    invented = [("put", 16.8, 17.17), ("me", 17.17, 17.17), ("through", 17.17, 17.17), ("now", 17.17, 17.17)]
    kept, dropped = GUARD.filter([timed(*said, *invented)])
    assert [w.text.strip() for w in kept[0].words] == ["put", "me", "through", "now"]
    assert kept[0].text == "put me through now"
    # What was cut off is reported, so the transcriber knows the pass went astray there.
    assert [(d.reason, [w.text.strip() for w in d.segment.words]) for d in dropped] == [
        ("collapsed", ["put", "me", "through", "now"])
    ]


def test_a_tail_that_takes_no_time_is_cut_even_without_a_repeat() -> None:
    kept, _ = GUARD.filter([timed(("hello", 0.0, 0.4), ("there", 0.4, 0.8), ("big", 0.8, 0.8), ("dog", 0.8, 0.8))])
    assert [w.text.strip() for w in kept[0].words] == ["hello", "there"]


def test_one_clipped_word_is_kept_and_a_wholly_collapsed_segment_is_dropped() -> None:
    # A single word aligned to no time happens on real speech (a clipped last syllable).
    one = timed(("hello", 0.0, 0.4), ("there", 0.4, 0.4))
    assert GUARD.filter([one])[0] == [one]
    kept, dropped = GUARD.filter([timed(("a", 3.0, 3.0), ("b", 3.0, 3.0))])
    assert kept == [] and [d.reason for d in dropped] == ["collapsed"]


def test_a_run_of_words_that_take_no_time_cuts_the_segment_wherever_it_lies() -> None:
    # As real base weights gave it on a cold utterance start (bench/stt_lag.py --lang en):
    # seven words at one instant mid-segment, then more invented text with times again.
    said = [("I", 31.5, 32.04), ("want", 32.04, 32.2), ("charged", 32.2, 32.56)]
    piled = [("twice", 32.56, 32.56), ("for", 32.56, 32.56), ("this.", 32.56, 32.56), ("I", 32.56, 32.56)]
    after = [("charge", 32.56, 32.76), ("you", 32.76, 33.06), ("twice", 33.06, 33.22)]
    kept, _ = GUARD.filter([timed(*said, *piled, *after)])
    assert [w.text.strip() for w in kept[0].words] == ["I", "want", "charged"]
    # Two such words in the middle are not a run: a fast "I'm gonna" can align so.
    two = timed(("so", 0.0, 0.3), ("I'm", 0.3, 0.3), ("gonna", 0.3, 0.3), ("go", 0.3, 0.6))
    assert GUARD.filter([two])[0] == [two]


def test_words_packed_faster_than_anyone_speaks_cut_the_segment() -> None:
    # As real base weights gave it (bench/stt_lag.py --lang en, real time): the prompt's
    # sentence copied onto 1.1 s of audio, each word 0.04-0.08 s long, so not collapsed.
    said = [("I", 0.0, 0.3)]
    copied = "to call you it still does not arrive and nobody answers my emails".split()
    invented = [(w, 0.3 + 0.06 * k, 0.3 + 0.06 * (k + 1)) for k, w in enumerate(copied)]
    kept, dropped = GUARD.filter([timed(*said, *invented)])
    assert [w.text.strip() for w in kept[0].words] == ["I"]
    assert [d.reason for d in dropped] == ["collapsed"]
    # Five quick words in 0.4 s (fast speech, espeak-ng's "out in the order I" is 0.78 s).
    quick = timed(("out", 0.0, 0.08), ("in", 0.08, 0.14), ("the", 0.14, 0.2), ("order", 0.2, 0.32), ("I", 0.32, 0.4))
    assert GUARD.filter([quick])[0] == [quick]
