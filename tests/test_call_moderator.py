from collections.abc import Sequence

from moderation.call_moderator import CONTEXT_BEFORE_S, CONTEXT_BEFORE_WORDS, CONTEXT_WORDS, CallModerator
from moderation.hits import Hit
from moderation.policy import PolicyConfig
from moderation.speech import TranscriptUpdate, Word


def planted(word: str):  # type: ignore[no-untyped-def]
    """Test double check: a keyword hit on every word equal to `word`."""

    def check(texts: list[str], context: Sequence[str] = ()) -> list[Hit]:
        return [Hit((i,), "keyword", "profanity", 1.0, 1.0, word, "test") for i, t in enumerate(texts) if t == word]

    return check


def w(text: str, start: float, confirmed: bool = True) -> Word:
    return Word(text, start, start + 0.3, confirmed)


def test_window_is_the_current_sentence_plus_the_provisional_tail() -> None:
    m = CallModerator(PolicyConfig())
    m.window(TranscriptUpdate(confirmed=[w("안녕", 0.0), w("하세요", 0.4)]))
    window = m.window(TranscriptUpdate(confirmed=[w("환불", 3.0)], provisional=[w("해", 3.4, False)]))
    assert [x.text for x in window] == ["환불", "해"]  # the pause before 환불 ended the sentence
    many = [w(str(i), 4.0 + 0.35 * i) for i in range(CONTEXT_WORDS + 5)]
    assert len(m.window(TranscriptUpdate(confirmed=many))) == CONTEXT_WORDS


def test_provisional_hit_then_revision_then_confirmation() -> None:
    m = CallModerator(PolicyConfig(), clock=lambda: 42.0)
    check = [planted("씨발")]
    first = m.judge(TranscriptUpdate(confirmed=[w("야", 1.0)], provisional=[w("씨발", 1.4, False)]), check)
    assert [(d.words[0].text, d.provisional) for d in first.add] == [("씨발", True)]
    revised = m.judge(TranscriptUpdate(provisional=[w("시발점", 1.4, False)]), check)
    assert revised.lift == first.add and not revised.add
    final = m.judge(TranscriptUpdate(confirmed=[w("씨발", 1.4)]), check)
    assert [(d.words[0].text, d.provisional, d.decided_at) for d in final.add] == [("씨발", False, 42.0)]
    assert [d.provisional for d in m.decisions] == [True, False]
    # Judged again in a later window (still the same sentence): no duplicate span.
    assert not m.judge(TranscriptUpdate(confirmed=[w("꺼져", 1.8)]), check).add


def test_context_is_the_earlier_sentences_bounded_in_words_and_seconds() -> None:
    m = CallModerator(PolicyConfig())
    m.window(TranscriptUpdate(confirmed=[w("목소리", 0.0), w("예쁘네", 0.4)]))
    window = m.window(TranscriptUpdate(confirmed=[w("오늘", 3.0), w("밤에", 3.4)]))
    assert [x.text for x in window] == ["오늘", "밤에"] and m.context(window) == ["목소리", "예쁘네"]
    # Later: the first sentence is too old to be context, the second is not.
    late = m.window(TranscriptUpdate(confirmed=[w("네", 3.7 + CONTEXT_BEFORE_S - 1.0)]))
    assert m.context(late) == ["오늘", "밤에"]
    many = [w(str(i), 40.0 + 0.35 * i) for i in range(CONTEXT_WORDS + CONTEXT_BEFORE_WORDS + 3)]
    window = m.window(TranscriptUpdate(confirmed=many))
    # Words pushed out of a full window are context too, and only the newest of them.
    assert m.context(window) == [x.text for x in many[-CONTEXT_WORDS - CONTEXT_BEFORE_WORDS : -CONTEXT_WORDS]]


def test_checks_get_the_context_and_their_hits_index_the_window() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    def check(texts: list[str], context: Sequence[str] = ()) -> list[Hit]:
        seen.append((texts, list(context)))
        return [Hit((len(texts) - 1,), "text_model", "abusive", 0.9, 0.6, "abusive", "t")] if context else []

    m = CallModerator(PolicyConfig())
    assert not m.judge(TranscriptUpdate(confirmed=[w("목소리", 0.0), w("예쁘네", 0.4)]), [check]).add
    (decision,) = m.judge(TranscriptUpdate(confirmed=[w("만날래", 3.0)]), [check]).add
    assert seen[-1] == (["만날래"], ["목소리", "예쁘네"]) and [x.text for x in decision.words] == ["만날래"]
