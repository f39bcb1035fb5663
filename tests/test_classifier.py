"""AbuseClassifier: the real transformers path on a tiny random kor_unsmile look-alike, and
word attribution with a test-double scorer.

Random weights give noise scores: tests on the tiny model check structure (loading, shapes,
sigmoid, labels, int8, thresholds, errors), never content. Attribution is checked with
KeywordKeyedScorer, a TEST DOUBLE that scores a planted word as abuse.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from moderation.classifier import AbuseClassifier, ModelUnavailable, TransformersScorer, attribute, window_starts
from moderation.classifier_config import DEFAULT_ABUSIVE_LABELS, UNSMILE_LABELS, ClassifierConfig
from moderation.hits import Hit
from tests import tiny_bert
from tests.tiny_bert import KeywordKeyedScorer

ABUSE = "악플/욕설"
SENTENCES = ["안녕하세요 고객님 무엇을 도와드릴까요", "요금이 이중으로 청구된 것 같은데요", "네", ""]


@pytest.fixture(scope="module")
def fp32(tiny_bert_model: Path) -> AbuseClassifier:
    return AbuseClassifier.load(ClassifierConfig(model=str(tiny_bert_model), device="cpu", int8=False))


@pytest.fixture(scope="module")
def int8(tiny_bert_model: Path) -> AbuseClassifier:
    return AbuseClassifier.load(ClassifierConfig(model=str(tiny_bert_model), device="cpu", int8=True))


def double(planted=("씨발",), **config) -> tuple[AbuseClassifier, KeywordKeyedScorer]:
    scorer = KeywordKeyedScorer(set(planted))
    return AbuseClassifier(scorer, UNSMILE_LABELS, ClassifierConfig(**config), version="double@1"), scorer


# --- config ----------------------------------------------------------------------------------


def test_config_defaults_are_valid() -> None:
    cfg = ClassifierConfig()
    cfg.validate()
    assert cfg.model == "smilegate-ai/kor_unsmile"
    assert set(cfg.thresholds) == set(UNSMILE_LABELS) and all(v == 0.5 for v in cfg.thresholds.values())
    assert ABUSE in cfg.abusive_labels and "clean" not in cfg.abusive_labels
    assert ClassifierConfig(thresholds={ABUSE: 0.7}).threshold_for("남성") == 0.5


@pytest.mark.parametrize(
    "change, key",
    [
        ({"thresholds": {"욕": 0.5}}, 'classifier.thresholds."욕"'),
        ({"thresholds": {ABUSE: 1.5}}, 'classifier.thresholds."악플/욕설"'),
        ({"abusive_labels": ["clean"]}, "classifier.abusive_labels"),
        ({"abusive_labels": ["욕"]}, "classifier.abusive_labels"),
        ({"abusive_labels": []}, "classifier.abusive_labels"),
        ({"max_words": 1}, "classifier.max_words"),
        ({"batch_max": 0}, "classifier.batch_max"),
        ({"queue_max": 0}, "classifier.queue_max"),
        ({"device": "tpu"}, "classifier.device"),
        ({"overflow": "block"}, "classifier.overflow"),
        ({"model": ""}, "classifier.model"),
    ],
)
def test_config_errors_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(ValueError, match=re.escape(key)):
        dataclasses.replace(ClassifierConfig(), **change).validate()


# --- the real loading and inference path ------------------------------------------------------


def test_loads_through_from_pretrained(fp32: AbuseClassifier, tiny_bert_model: Path) -> None:
    from transformers import BertForSequenceClassification

    scorer = fp32.scorer
    assert isinstance(scorer, TransformersScorer)
    assert isinstance(scorer.model, BertForSequenceClassification)
    assert scorer.model.config.problem_type == "multi_label_classification"
    assert fp32.labels == UNSMILE_LABELS  # read from the model's id2label
    assert fp32.version.startswith(f"{tiny_bert_model}#sha256:") and not fp32.version.endswith("+int8")
    assert fp32.device == "cpu" and scorer.max_length == 300  # KcBERT's 300 positions
    # The tokenizer is the KcBERT WordPiece from the folder, Hangul intact.
    tok = scorer.tokenizer
    assert len(tok) == tiny_bert.vocab_size() == 30000
    pieces = tok.tokenize("씨발 뭐하는 거야")
    assert pieces == ["씨", "##발", "뭐하는", "거야"]
    assert tok.unk_token_id not in tok("고객님 주문하신 상품")["input_ids"]


def test_scores_are_the_sigmoid_of_the_logits(fp32: AbuseClassifier) -> None:
    import torch

    scores = fp32.scores(SENTENCES)
    assert scores.shape == (len(SENTENCES), 10)
    assert np.all((scores > 0) & (scores < 1))
    scorer = fp32.scorer
    enc = scorer.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = scorer.model(**enc).logits
    np.testing.assert_allclose(scores, torch.sigmoid(logits).numpy(), atol=1e-5)
    # Batching and order do not change a sentence's score (sorted by length inside).
    np.testing.assert_allclose(fp32.scores(SENTENCES[::-1])[::-1], scores, atol=1e-5)
    assert fp32.scores([]).shape == (0, 10)


def test_forward_passes_are_chunked(tiny_bert_model: Path) -> None:
    clf = AbuseClassifier.load(ClassifierConfig(model=str(tiny_bert_model), int8=False, forward_batch=3))
    before = clf.scorer.forward_passes
    assert clf.scores(["가나다"] * 7).shape == (7, 10)
    assert clf.scorer.forward_passes - before == 3


def test_int8_variant(int8: AbuseClassifier, fp32: AbuseClassifier) -> None:
    import torch

    linears = [m for m in int8.scorer.model.modules() if type(m).__name__ == "Linear"]
    assert linears and all(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in linears)
    assert not any(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear for m in int8.scorer.model.modules())
    assert int8.version.endswith("+int8")
    scores = int8.scores(SENTENCES)
    assert scores.shape == (len(SENTENCES), 10) and np.all((scores > 0) & (scores < 1))
    np.testing.assert_allclose(scores, fp32.scores(SENTENCES), atol=0.02)
    assert all(isinstance(h, Hit) for h in int8.judge("야 이 씨발 뭐하는 거야".split()))


def test_thresholds_and_abusive_labels_are_honoured(tiny_bert_model: Path, fp32: AbuseClassifier) -> None:
    words = "요금이 이중으로 청구된 것 같은데요".split()
    base = ClassifierConfig(model=str(tiny_bert_model), int8=False)
    everything = AbuseClassifier(
        fp32.scorer,
        fp32.labels,
        dataclasses.replace(base, thresholds={label: 0.0 for label in UNSMILE_LABELS}),
        version=fp32.version,
    )
    hits = everything.judge(words)
    assert [h.category for h in hits] == [x for x in UNSMILE_LABELS if x in DEFAULT_ABUSIVE_LABELS]
    for hit in hits:
        assert hit.source == "classifier" and hit.detail == hit.category and hit.threshold == 0.0
        assert hit.version == fp32.version
        assert hit.words == tuple(sorted(hit.words)) and set(hit.words) <= set(range(len(words)))
    nothing = AbuseClassifier(
        fp32.scorer, fp32.labels, dataclasses.replace(base, thresholds={label: 1.0 for label in UNSMILE_LABELS})
    )
    assert nothing.judge(words) == []
    # Just under / just over the sentence's own score.
    s = float(fp32.scores([" ".join(words)])[0, UNSMILE_LABELS.index(ABUSE)])
    for threshold, expected in ((s - 1e-4, [ABUSE]), (s + 1e-4, [])):
        clf = AbuseClassifier(
            fp32.scorer,
            fp32.labels,
            dataclasses.replace(
                base, thresholds={label: (threshold if label == ABUSE else 1.0) for label in UNSMILE_LABELS}
            ),
        )
        hits = clf.judge(words)
        assert [h.category for h in hits] == expected
        if hits:
            assert hits[0].score == pytest.approx(s, abs=1e-5) and hits[0].threshold == threshold
    # Only the configured labels fire; clean never.
    only = AbuseClassifier(
        fp32.scorer,
        fp32.labels,
        dataclasses.replace(base, thresholds={label: 0.0 for label in UNSMILE_LABELS}, abusive_labels=["종교"]),
    )
    assert [h.category for h in only.judge(words)] == ["종교"]


# --- loading failures -------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _unavailable(config: ClassifierConfig, match: str, **kwargs) -> str:
    with pytest.raises(ModelUnavailable, match=match) as info:
        AbuseClassifier.load(config, **kwargs)
    return str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    _unavailable(ClassifierConfig(model=str(tmp_path / "nope")), "does not exist")
    _unavailable(ClassifierConfig(model="./nope-either", models_dir=str(tmp_path)), "does not exist")
    _unavailable(ClassifierConfig(model="kor_unsmile", models_dir=str(tmp_path)), "neither a folder")
    (tmp_path / "empty").mkdir()
    message = _unavailable(ClassifierConfig(model=str(tmp_path / "empty")), "incomplete")
    assert "config.json" in message and "model.safetensors" in message and "tokenizer.json" in message


def test_corrupt_folders(tiny_bert_model: Path, tmp_path: Path) -> None:
    bad_config = _copy(tiny_bert_model, tmp_path / "bad-config")
    (bad_config / "config.json").write_text("{ not json", encoding="utf-8")
    _unavailable(ClassifierConfig(model=str(bad_config)), "cannot load")

    truncated = _copy(tiny_bert_model, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    _unavailable(ClassifierConfig(model=str(truncated)), "cannot load")

    bad_tokenizer = _copy(tiny_bert_model, tmp_path / "bad-tokenizer")
    (bad_tokenizer / "tokenizer.json").write_text("garbage", encoding="utf-8")
    (bad_tokenizer / "vocab.txt").unlink()
    _unavailable(ClassifierConfig(model=str(bad_tokenizer)), "tokenizer")


def test_lowercasing_tokenizer_is_refused(tiny_bert_model: Path, tmp_path: Path) -> None:
    # An old-style folder (vocab.txt only) whose tokenizer lowercases: Hangul decomposes to [UNK].
    folder = _copy(tiny_bert_model, tmp_path / "lowercase")
    (folder / "tokenizer.json").unlink()
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.update(do_lower_case=True, strip_accents=None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    _unavailable(ClassifierConfig(model=str(folder)), r"maps Korean to \[UNK\]")


def test_checkpoint_without_the_classifier_head_is_refused(tiny_bert_model: Path, tmp_path: Path) -> None:
    from transformers import BertModel

    folder = _copy(tiny_bert_model, tmp_path / "no-head")
    (folder / "model.safetensors").unlink()
    model = BertModel.from_pretrained(str(tiny_bert_model), local_files_only=True)
    model.save_pretrained(str(folder))
    cfg = json.loads((tiny_bert_model / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")  # keep the labels
    _unavailable(ClassifierConfig(model=str(folder)), "lacks weights classifier")


def test_model_without_the_configured_labels(tiny_bert_model: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_bert_model, tmp_path / "other-labels")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["id2label"] = {str(i): f"topic {i}" for i in range(10)}
    cfg["label2id"] = {f"topic {i}": i for i in range(10)}
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    _unavailable(ClassifierConfig(model=str(folder)), "has no label")


def test_hub_id_offline_without_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    config = ClassifierConfig(models_dir=str(tmp_path / "models"))  # smilegate-ai/kor_unsmile
    message = _unavailable(config, "not in .* nor in the Hugging Face cache")
    assert "smilegate-ai--kor_unsmile" in message
    _unavailable(config, "offline mode is on", allow_download=True)


def test_hub_id_from_models_dir_and_cache(
    tiny_bert_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # <models_dir>/<owner>--<name>, with the revision a pull recorded.
    models = tmp_path / "models"
    local = _copy(tiny_bert_model, models / "smilegate-ai--kor_unsmile")
    (local / "callguard-model.json").write_text(json.dumps({"revision": "0123456789abcdef"}))
    clf = AbuseClassifier.load(ClassifierConfig(models_dir=str(models), int8=False))
    assert clf.version == "smilegate-ai/kor_unsmile@0123456789ab"
    # The Hugging Face cache layout: the snapshot's commit is the revision.
    cache = tmp_path / "hf-cache"
    repo = cache / "models--smilegate-ai--kor_unsmile"
    sha = "f597423eeff8e6da99cad85cbe3a81adf5225637"
    _copy(tiny_bert_model, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    clf = AbuseClassifier.load(ClassifierConfig(models_dir=str(tmp_path / "elsewhere")))
    assert clf.version == "smilegate-ai/kor_unsmile@f597423eeff8+int8"
    assert clf.scores(["안녕"]).shape == (1, 10)


# --- attribution (test double) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "words, planted_at",
    [
        ("씨발 뭐 이런 서비스가 다 있어".split(), (0,)),
        ("뭐 이런 씨발 서비스가 다 있어".split(), (2,)),
        ("뭐 이런 서비스가 다 있어 씨발".split(), (5,)),
        ("뭐 이런 씨발 씨발 서비스가 다 있어".split(), (2, 3)),  # back to back
        ("씨발 이런 서비스가 다 있어 씨발".split(), (0, 5)),  # far apart
        (["씨발"], (0,)),
    ],
)
def test_attribution_finds_the_planted_words(words: list[str], planted_at: tuple[int, ...]) -> None:
    clf, scorer = double()
    hits = clf.judge(words)
    assert len(hits) == 1
    hit = hits[0]
    assert hit.words == planted_at
    assert (hit.source, hit.category, hit.detail, hit.version) == ("classifier", ABUSE, ABUSE, "double@1")
    assert hit.score == pytest.approx(scorer.score_of(" ".join(words)), abs=1e-6) and hit.threshold == 0.5
    # One pass for the sentence, one for all its leave-one-out variants (none for one word).
    assert len(scorer.calls) == (2 if len(words) > 1 else 1)
    if len(words) > 1:
        assert len(scorer.calls[1]) == len(words)


def test_attribution_with_a_two_word_planted_phrase_and_empty_words() -> None:
    clf, _ = double(planted={"개새끼", "씨발놈"})
    assert clf.judge(["", "야", " ", "개새끼"])[0].words == (3,)
    assert clf.judge(["개새끼", "씨발놈", "아"])[0].words == (0, 1)
    assert clf.judge(["", " "]) == [] and clf.judge([]) == []


def test_clean_utterance_costs_one_pass() -> None:
    clf, scorer = double()
    assert clf.judge("안녕하세요 주문 확인 부탁드려요".split()) == []
    assert len(scorer.calls) == 1


def test_spread_out_abuse_falls_back_to_the_whole_window() -> None:
    clf, _ = double()  # three planted words: removing one leaves 0.961 (drop 0.031 < min_drop)
    words = "씨발 너 씨발 진짜 씨발".split()
    assert clf.judge(words)[0].words == tuple(range(5))


def test_thresholds_with_the_double() -> None:
    clf, _ = double(thresholds={ABUSE: 0.9})
    assert clf.judge("이런 씨발 서비스".split()) == []  # 0.804
    assert clf.judge("씨발 씨발 서비스".split())[0].words == (0, 1)  # 0.961


def test_long_utterances_are_judged_in_windows() -> None:
    clf, scorer = double(max_words=16)
    words = [f"단어{i}" for i in range(70)]
    for i in (0, 35, 69):
        words[i] = "씨발"
    hits = clf.judge(words)
    assert len(hits) == 1 and hits[0].words == (0, 35, 69)
    assert max(len(t.split()) for call in scorer.calls for t in call) <= 16
    assert len(scorer.calls) == 2  # all windows in one pass, all their variants in one more


def test_eager_attribution_is_one_pass() -> None:
    clf, scorer = double(attribution="eager")
    assert clf.judge("뭐 이런 씨발 서비스가".split())[0].words == (2,)
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 1 + 4


def test_judge_many_merges_utterances_into_two_passes() -> None:
    clf, scorer = double()
    utterances = ["안녕하세요".split(), "야 씨발 뭐야".split(), "씨발 진짜".split(), "네 감사합니다".split()]
    results = clf.judge_many(utterances)
    assert [[h.words for h in hits] for hits in results] == [[], [(1,)], [(0,)], []]
    assert len(scorer.calls) == 2 and len(scorer.calls[0]) == 4 and len(scorer.calls[1]) == 3 + 2


def test_attribute_rules() -> None:
    # A single carrier.
    assert attribute(0.9, np.array([0.9, 0.1, 0.88]), 0.5) == ([1], "carrier")
    # Below the threshold but a tiny drop is no carrier (score near the threshold).
    assert attribute(0.52, np.array([0.49, 0.51, 0.20]), 0.5) == ([2], "carrier")
    # A large share of the score without crossing the threshold.
    assert attribute(0.99, np.array([0.45, 0.98, 0.97]), 0.3) == ([0], "carrier")
    # Repeated abuse: top-k by drop.
    assert attribute(0.96, np.array([0.8, 0.96, 0.8, 0.95]), 0.5, top_k=2) == ([0, 2], "top_k")
    # Nothing drops: the whole window.
    assert attribute(0.9, np.array([0.9, 0.89, 0.9]), 0.5) == ([0, 1, 2], "window")


def test_window_starts() -> None:
    assert window_starts(5, 32) == [0]
    assert window_starts(32, 32) == [0]
    assert window_starts(33, 32) == [0, 1]
    assert window_starts(70, 16) == [0, 8, 16, 24, 32, 40, 48, 54]


def test_scores_from_worker_threads(fp32: AbuseClassifier) -> None:
    expected = fp32.scores(SENTENCES)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                np.testing.assert_allclose(fp32.scores(SENTENCES), expected, atol=1e-5)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
