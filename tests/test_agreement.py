"""LocalAgreement-2 on hand-made hypotheses (media time)."""

from __future__ import annotations

from moderation.agreement import LocalAgreement, normalise
from moderation.speech import Word


def hyp(*items: tuple[str, float, float]) -> list[Word]:
    return [Word(t, s, e, False) for t, s, e in items]


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


def test_normalise_ignores_spacing_punctuation_case_and_width() -> None:
    assert normalise(" 시청해 주셔서, 감사합니다! ") == normalise("시청해주셔서 감사합니다")
    assert normalise("Ｈｅｌｌｏ") == "hello"  # NFKC folds full-width letters
    assert normalise("...") == ""
    assert normalise("네") != normalise("내")


def test_first_hypothesis_confirms_nothing() -> None:
    la = LocalAgreement()
    assert la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7))) == []
    assert texts(la.tail) == ["a", "b"]


def test_common_prefix_of_two_hypotheses_is_confirmed() -> None:
    la = LocalAgreement()
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7)))
    got = la.insert(hyp(("a", 0.0, 0.3), ("b", 0.41, 0.72), ("c", 0.8, 1.0)))
    assert texts(got) == ["a", "b"]
    assert all(w.confirmed for w in got)
    assert got[1].end == 0.72  # the newer hypothesis's timing
    assert texts(la.tail) == ["c"] and not la.tail[0].confirmed
    assert la.committed_end == 0.72


def test_revised_word_waits_for_two_agreeing_hypotheses() -> None:
    la = LocalAgreement()
    la.insert(hyp(("a", 0.0, 0.3), ("X", 0.4, 0.7)))
    assert texts(la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7)))) == ["a"]  # X != b
    assert texts(la.tail) == ["b"]
    assert texts(la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7), ("c", 0.8, 1.0)))) == ["b"]
    assert texts(la.tail) == ["c"]


def test_disagreement_stops_confirmation_even_if_later_words_agree() -> None:
    la = LocalAgreement()
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7), ("c", 0.8, 1.0)))
    got = la.insert(hyp(("a", 0.0, 0.3), ("B2", 0.4, 0.7), ("c", 0.8, 1.0)))
    assert texts(got) == ["a"]
    assert texts(la.tail) == ["B2", "c"]


def test_agreement_compares_normalised_text() -> None:
    la = LocalAgreement()
    la.insert(hyp(("안녕하세요.", 0.0, 0.5)))
    assert texts(la.insert(hyp(("안녕하세요", 0.0, 0.5)))) == ["안녕하세요"]


def test_same_text_far_apart_in_time_is_not_agreement() -> None:
    la = LocalAgreement(max_shift_s=1.0)
    la.insert(hyp(("네", 0.0, 0.2)))
    assert la.insert(hyp(("네", 2.0, 2.2))) == []


def test_re_transcribed_confirmed_words_are_not_confirmed_again() -> None:
    la = LocalAgreement()
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7)))
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7)))
    assert la.committed_end == 0.7
    # The buffer still holds a and b; they come back (b with a shifted start) plus c.
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.65, 0.72), ("c", 0.8, 1.0)))
    got = la.insert(hyp(("a", 0.0, 0.3), ("b", 0.66, 0.72), ("c", 0.8, 1.0), ("d", 1.1, 1.3)))
    assert texts(got) == ["c"]


def test_finalize_confirms_tail_before_a_time() -> None:
    la = LocalAgreement()
    la.insert(hyp(("a", 0.0, 0.3), ("b", 0.4, 0.7), ("c", 1.5, 1.8)))
    got = la.finalize(before=1.0)
    assert texts(got) == ["a", "b"] and all(w.confirmed for w in got)
    assert texts(la.tail) == ["c"]
    assert texts(la.finalize()) == ["c"]
    assert la.tail == []
