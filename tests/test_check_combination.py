"""How the checks' hits combine: "any" keeps every hit, "weighted" needs enough support per word."""

from __future__ import annotations

import pytest

from moderation.check_combination import CombinationConfig, combine
from moderation.hits import Hit


def hit(words: tuple[int, ...], source: str, score: float) -> Hit:
    return Hit(words, source, "x", score, 0.5, "d", "v")  # type: ignore[arg-type]


HITS = [hit((0,), "keyword", 1.0), hit((2, 3), "text_model", 0.7), hit((3,), "classifier", 0.6)]


def test_any_keeps_every_hit() -> None:
    assert combine(HITS, CombinationConfig()) == HITS


def test_weighted_mutes_a_word_when_the_checks_on_it_add_up() -> None:
    config = CombinationConfig(
        rule="weighted", weights={"keyword": 1.0, "text_model": 0.8, "classifier": 0.8}, threshold=0.75
    )
    out = combine(HITS, config)
    # word 0: keyword 1.0; word 2: 0.56 (text model alone, unsure); word 3: 0.56 + 0.48 (both agree).
    assert [(h.source, h.words) for h in out] == [("keyword", (0,)), ("text_model", (3,)), ("classifier", (3,))]
    sure = [hit((2,), "text_model", 0.95)]
    assert combine(sure, config) == sure  # 0.76: a sure model mutes on its own


def test_a_check_weighted_zero_never_mutes_alone() -> None:
    config = CombinationConfig(rule="weighted", weights={"keyword": 1.0, "text_model": 0.0}, threshold=0.5)
    assert combine([hit((1,), "text_model", 1.0)], config) == []


@pytest.mark.parametrize(
    "bad, message",
    [
        (CombinationConfig(rule="sometimes"), "checks.rule"),  # type: ignore[arg-type]
        (CombinationConfig(weights={"kor": 1.0}), "checks.weights.kor: unknown check"),
        (CombinationConfig(weights={"keyword": -1.0}), "out of range"),
        (CombinationConfig(threshold=0.0), "checks.threshold"),
    ],
)
def test_bad_settings_name_the_key(bad: CombinationConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bad.validate()
