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
