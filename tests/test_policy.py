import pytest

from moderation.hits import Hit
from moderation.policy import PolicyConfig, SpanBook, plan
from moderation.speech import Word

CONFIG = PolicyConfig(pad_before_s=0.05, pad_after_s=0.1, merge_gap_s=0.25)


def words(*spec: tuple[str, float, float], confirmed: bool = True) -> list[Word]:
    return [Word(text, start, end, confirmed) for text, start, end in spec]


def hit(*indices: int, category: str = "profanity", source: str = "keyword", score: float = 1.0) -> Hit:
    return Hit(tuple(indices), source, category, score, 0.5 if source == "classifier" else 1.0, "entry", "v1")  # type: ignore[arg-type]


SENTENCE = words(
    ("야", 1.0, 1.2),
    ("이", 1.3, 1.4),
    ("씨발", 1.5, 1.9),
    ("새끼야", 1.95, 2.4),
    ("환불", 3.0, 3.4),
    ("해줘", 3.45, 3.8),
)


def test_a_hit_mutes_its_words_padded_and_nothing_else() -> None:
    (decision,) = plan(SENTENCE, [hit(2)], CONFIG, now=100.0)
    assert (decision.start, decision.end) == pytest.approx((1.45, 2.0))
    assert [w.text for w in decision.words] == ["씨발"]
    assert decision.categories == ("profanity",) and decision.decided_at == 100.0
    assert not decision.provisional


def test_back_to_back_and_overlapping_hits_merge_into_one_span_with_all_reasons() -> None:
    keyword, classifier = hit(2), hit(2, 3, category="악플/욕설", source="classifier", score=0.93)
    (decision,) = plan(SENTENCE, [classifier, keyword], CONFIG)
    assert (decision.start, decision.end) == pytest.approx((1.45, 2.5))
    assert [w.text for w in decision.words] == ["씨발", "새끼야"]
    assert set(decision.hits) == {keyword, classifier}
    assert decision.categories == ("profanity", "악플/욕설")


def test_spans_far_apart_stay_apart_and_near_ones_merge() -> None:
    apart = plan(SENTENCE, [hit(0), hit(4)], CONFIG)
    assert [(d.words[0].text, d.words[-1].text) for d in apart] == [("야", "야"), ("환불", "환불")]
    near = plan(SENTENCE, [hit(0), hit(2)], CONFIG)  # 1.3 - 1.45 gap of padded spans: 0.15 s
    assert len(near) == 1 and near[0].start == pytest.approx(0.95) and near[0].end == pytest.approx(2.0)


def test_start_of_call_is_not_padded_below_zero_and_bad_indices_are_ignored() -> None:
    first = words(("씨발", 0.02, 0.4))
    (decision,) = plan(first, [hit(0), hit(5)], CONFIG)
    assert decision.start == 0.0
    assert plan(first, [hit(7)], CONFIG) == []


def test_provisional_span_is_lifted_when_revised_away_and_kept_when_confirmed() -> None:
    book = SpanBook(CONFIG)
    guess = words(("시발", 5.0, 5.3), confirmed=False)
    first = book.review(plan(guess, [hit(0)], CONFIG))
    assert len(first.add) == 1 and first.add[0].provisional and not first.lift
    # The same provisional words again: nothing new to do.
    again = book.review(plan(guess, [hit(0)], CONFIG))
    assert not again.add and not again.lift
    # Revised to an innocent word: the provisional span goes.
    revised = book.review(plan(words(("시발점", 5.0, 5.4), confirmed=False), [], CONFIG))
    assert revised.lift == first.add and not revised.add
    # Heard again and confirmed: a final span replaces any provisional one.
    book.review(plan(guess, [hit(0)], CONFIG))
    final = book.review(plan(words(("시발", 5.0, 5.3)), [hit(0)], CONFIG))
    assert [d.provisional for d in final.add] == [False] and [d.provisional for d in final.lift] == [True]
    # Confirmed spans are final: a later pass without them lifts nothing.
    assert not book.review([]).lift


def test_provisional_muting_can_be_switched_off() -> None:
    book = SpanBook(PolicyConfig(mute_provisional=False))
    guess = words(("씨발", 5.0, 5.3), confirmed=False)
    assert not book.review(plan(guess, [hit(0)], CONFIG)).add
    assert len(book.review(plan(words(("씨발", 5.0, 5.3)), [hit(0)], CONFIG)).add) == 1


def test_config_validation_names_the_key() -> None:
    with pytest.raises(ValueError, match="policy.pad_after_s"):
        PolicyConfig(pad_after_s=3.0).validate()


def test_a_word_joining_a_confirmed_span_adds_only_the_new_stretch() -> None:
    book = SpanBook(CONFIG)
    (first,) = book.review(plan(SENTENCE[:3], [hit(2)], CONFIG)).add
    assert (first.start, first.end) == pytest.approx((1.45, 2.0))
    # The sentence grows: 새끼야 follows back to back and the policy merges the two words.
    (added,) = book.review(plan(SENTENCE, [hit(2), hit(3)], CONFIG)).add
    assert (added.start, added.end) == pytest.approx((2.0, 2.5))  # not 1.45: that part is muted
    assert [w.text for w in added.words] == ["씨발", "새끼야"]
    # Judged once more, nothing is added again.
    assert not book.review(plan(SENTENCE, [hit(2), hit(3)], CONFIG)).add
