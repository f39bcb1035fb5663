"""The text model shipped in the package: it loads with numpy alone, judges, and names the words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moderation.check_loading import load_text_model
from moderation.keyword_config import KeywordConfig
from moderation.keywords import KeywordMatcher
from moderation.text_model import (
    Features,
    TextModel,
    TextModelError,
    default_features,
    read_model,
    sentence_features,
    word_features,
    word_form,
    write_model,
)
from moderation.text_model_config import BUILTIN_MODEL_DIR, TEXT_MODEL_LABELS, TextModelConfig
from tests.context_model import write_context_model


@pytest.fixture(scope="module")
def shipped() -> TextModel:
    return TextModel.load(TextModelConfig())


def test_the_shipped_model_is_package_data_with_its_card(shipped: TextModel) -> None:
    assert shipped.folder == BUILTIN_MODEL_DIR and shipped.labels == TEXT_MODEL_LABELS
    assert shipped.version.startswith("tm-")
    card = (BUILTIN_MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in card and "K-MHaS" in card and "APEACH" in card
    size = sum(p.stat().st_size for p in BUILTIN_MODEL_DIR.iterdir())
    assert size < 8_000_000


def test_the_loader_reports_ready_off_and_unavailable(tmp_path: Path) -> None:
    assert load_text_model(TextModelConfig()).state == "ready"
    assert load_text_model(TextModelConfig(enabled=False)).state == "off"
    missing = load_text_model(TextModelConfig(model_dir=str(tmp_path)))
    assert missing.state == "unavailable" and "model.json" in missing.detail


@pytest.mark.parametrize(
    "text, carriers",
    [
        ("이 새끼야 빨리 환불해 줘", {"새끼야"}),
        ("아 진짜 병신 같은 회사네 빨리 처리해 주세요", {"병신"}),
    ],
)
def test_abuse_is_muted_on_the_words_that_carry_it(shipped: TextModel, text: str, carriers: set[str]) -> None:
    words = text.split()
    hits = shipped.judge(words)
    assert [h.source for h in hits] == ["text_model"] and hits[0].category == "abusive"
    assert {words[i] for i in hits[0].words} >= carriers
    assert len(hits[0].words) < len(words)  # never the whole utterance for one swear word
    assert hits[0].score >= hits[0].threshold == shipped.threshold_for("abusive") and hits[0].version == shipped.version


@pytest.mark.parametrize(
    "text",
    ["안녕하세요 지난주에 주문한 냉장고가 아직 안 왔어요", "요금제 변경 하고 싶은데요", "고객님 잠시만 기다려 주세요"],
)
def test_ordinary_service_calls_are_left_alone(shipped: TextModel, text: str) -> None:
    assert shipped.judge(text.split()) == []


def test_word_contributions_add_up_to_the_score(shipped: TextModel) -> None:
    words = "너 진짜 미친 거 아니야 이 새끼야".split()
    logits, per_word = shipped.contributions(words)
    assert per_word.shape == (len(TEXT_MODEL_LABELS), len(words))
    np.testing.assert_allclose(logits, shipped.files.bias + per_word.sum(axis=1), rtol=1e-6)
    direct = shipped.scores([" ".join(words)])[0]
    np.testing.assert_allclose(direct, 1 / (1 + np.exp(-logits)), rtol=1e-6)


@pytest.mark.parametrize("spec", [Features(1 << 12), default_features(1 << 12)], ids=["format 1", "jamo, log counts"])
def test_features_are_per_word_and_normalised(spec: Features) -> None:
    ids, values, owner = sentence_features(["씨이이발", "뭐야", "뭐야"], spec)
    # A drawn-out spelling folds as the keyword lists fold it: the same features as 씨발.
    same, _, _ = sentence_features(["씨발", "뭐야", "뭐야"], spec)
    assert sorted(ids.tolist()) == sorted(same.tolist())
    assert set(owner.tolist()) == {0, 1, 2}
    totals: dict[int, float] = {}
    for f, v in zip(ids.tolist(), values.tolist()):
        totals[f] = totals.get(f, 0.0) + v
    assert abs(sum(v * v for v in totals.values()) - 1.0) < 1e-9


def test_jamo_ngrams_bring_a_vowel_variant_closer() -> None:
    def common(spec: Features) -> int:
        a, b = (set(sentence_features([w], spec)[0].tolist()) for w in ("씌발", "씨발"))
        return len(a & b)

    assert common(default_features(1 << 12)) > common(Features(1 << 12))


def test_a_folder_from_train_text_is_used_in_place_of_the_shipped_one(tmp_path: Path) -> None:
    dim = 64
    weights = np.zeros((2, dim), dtype=np.float32)
    write_model(tmp_path, TEXT_MODEL_LABELS, weights, np.array([5.0, -5.0]), {"version": "tm-everything"})
    model = TextModel.load(TextModelConfig(model_dir=str(tmp_path)))
    assert model.version == "tm-everything"
    hits = model.judge(["아무", "말"])
    assert [h.category for h in hits] == ["abusive"] and hits[0].words == (0, 1)  # the bias alone: every word


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda d: (d / "model.json").write_text("{}"), "not a callguard"),
        (lambda d: (d / "weights.npz").unlink(), "no weights.npz"),
        (
            lambda d: (d / "model.json").write_text(
                json.dumps({**json.loads((d / "model.json").read_text()), "dim": 7})
            ),
            "do not fit",
        ),
    ],
)
def test_a_broken_folder_names_the_file(tmp_path: Path, spoil, message: str) -> None:  # type: ignore[no-untyped-def]
    write_model(tmp_path, TEXT_MODEL_LABELS, np.zeros((2, 16), np.float32), np.zeros(2), {"version": "v"})
    read_model(tmp_path)
    spoil(tmp_path)
    with pytest.raises(TextModelError, match=message):
        read_model(tmp_path)


def test_a_label_the_model_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TextModelError, match="text_model.labels"):
        TextModel.load(TextModelConfig(labels=["여성/가족"]))


@pytest.fixture(scope="module")
def context_model(tmp_path_factory: pytest.TempPathFactory) -> TextModel:
    folder = write_context_model(tmp_path_factory.mktemp("context-model"))
    return TextModel.load(TextModelConfig(model_dir=str(folder)))


def test_context_makes_a_hit_on_the_current_words_only(context_model: TextModel) -> None:
    assert context_model.judge("목소리 예쁘네".split()) == []
    assert context_model.judge("오늘 밤에 만날래".split()) == []
    (hit,) = context_model.judge("오늘 밤에 만날래".split(), ["목소리", "예쁘네"])
    assert hit.words == (2,) and hit.score >= hit.threshold and hit.detail.endswith("after context")
    # Context that adds nothing to the current words mutes nothing.
    assert context_model.judge("네 알겠습니다".split(), ["목소리", "예쁘네"]) == []


def test_context_abusive_on_its_own_does_not_spill_onto_the_next_words(context_model: TextModel) -> None:
    assert context_model.judge("예쁘네 만날래".split())  # abusive alone: judged (and muted) when it was said
    assert context_model.judge("오늘 만날래".split(), ["예쁘네", "만날래"]) == []


def test_the_keyword_allowlist_is_the_models_too(shipped: TextModel) -> None:
    keywords = KeywordMatcher(KeywordConfig())
    allowing = shipped.with_allowlist(keywords.allowed_words)
    words = "저는 병신년생 이에요".split()
    assert keywords.allowed_words(words) == {1} and keywords.match(words) == []
    alone, allowed = shipped.scores([" ".join(words)])[0, 0], allowing.scores([" ".join(words)])[0, 0]
    assert allowing.judge(words) == [] and allowed < min(alone, 0.3)  # 병신 in it no longer counts
    _, per_word = allowing.contributions(words)
    assert per_word[:, 1].tolist() == [0.0, 0.0]  # the allowlisted word adds nothing
    (hit,) = allowing.judge("야 이 병신 새끼야".split())
    assert hit.category == "abusive"  # outside the allowlist's matches, nothing changes
    loaded = load_text_model(TextModelConfig(), keywords).check
    assert loaded is not None and loaded.judge(words) == []


def test_a_current_word_that_only_tips_the_context_over_is_not_muted(tmp_path: Path) -> None:
    """Context just under the threshold (예쁘네 carries it) and a lone 네 that lifts the joined
    score over it: 네 is no carrier of the joined sentence (2.2 against 예쁘네's 5.7, under
    carry_share 0.8), so nothing is muted. (만날래 after 예쁘네 is: test_context_makes_a_hit_...)"""
    weights = np.zeros((len(TEXT_MODEL_LABELS), 1 << 12), dtype=np.float32)
    for word in ("예쁘네", "만날래", "네"):
        for f in word_features([word_form(word)], Features(1 << 12))[0]:
            weights[0, f] = 3.0
    write_model(tmp_path, TEXT_MODEL_LABELS, weights, np.array([-7.0, -30.0]), {"version": "tm-tipping-double"})
    model = TextModel.load(TextModelConfig(model_dir=str(tmp_path), thresholds={"abusive": 0.6}))
    context = "목소리 정말 예쁘네".split()
    assert model.judge(context) == [] and model.judge(["네"]) == []
    assert float(model.scores([" ".join([*context, "네"])])[0, 0]) >= 0.6  # together over the threshold
    assert model.judge(["네"], context) == []
