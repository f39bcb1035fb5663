"""`callguard models train-text`: retraining on a tiny corpus written here (never the shared corpora),
with QA marks, figures before and after, and a folder the server can load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moderation.text_model import TextModel
from moderation.text_model_config import TextModelConfig
from offline import train_text
from relay.cli import main

RUDE = ["멍청이", "바보", "쓰레기"]
NICE = ["감사합니다", "배송", "주문"]


def write_corpora(folder: Path, n: int = 40) -> Path:
    """The three corpora's published formats, a few invented sentences each."""
    (folder / "korean-hate-speech").mkdir(parents=True)
    (folder / "apeach").mkdir()
    (folder / "k-mhas").mkdir()
    khs = ["comments\tcontain_gender_bias\tbias\thate"]
    apeach = ["text,user_age,user_gender,text_topic,class,age,text_topic_eng"]
    kmhas = ["document\tlabel"]
    for i in range(n):
        rude, nice = RUDE[i % 3], NICE[i % 3]
        khs += [f"너 {rude} {i}번\tFalse\tnone\toffensive", f"{nice} 잘 받았어요 {i}\tFalse\tnone\tnone"]
        apeach += [f"이 {rude} 같은 {i},30,female,t,Spoiled,30,t", f"{nice} 확인 {i},30,female,t,Default,30,t"]
        kmhas += [f"진짜 {rude}네 {i}\t3", f"오늘 {nice} 했어요 {i}\t8"]
    (folder / "korean-hate-speech" / "train.tsv").write_text("\n".join(khs) + "\n", encoding="utf-8")
    (folder / "apeach" / "test.csv").write_text("\n".join(apeach) + "\n", encoding="utf-8")
    (folder / "k-mhas" / "kmhas_valid.txt").write_text("\n".join(kmhas) + "\n", encoding="utf-8")
    return folder


def train(tmp_path: Path, *extra: str) -> list[str]:
    return ["models", "train-text", "--corpora", str(tmp_path / "corpora"), "--dim", "4096", "--max-iter", "60", *extra]


def test_train_text_writes_a_model_the_server_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_corpora(tmp_path / "corpora")
    out = tmp_path / "model"
    held = tmp_path / "held.tsv"
    assert main(train(tmp_path, "--out", str(out), "--held-out-tsv", str(held))) == 0
    printed = capsys.readouterr().out
    assert "sentences: 240 (korean-hate-speech 80, apeach 80, k-mhas 80)" in printed
    assert "before P" in printed and "abusive" in printed and "the marks" not in printed and f"wrote {out}" in printed
    model = TextModel.load(TextModelConfig(model_dir=str(out), thresholds={"abusive": 0.5}))
    assert model.version.startswith("tm-") and model.version in printed
    hits = model.judge("상담원 이 멍청이 야".split())
    assert [h.category for h in hits] == ["abusive"] and hits[0].words == (2,)
    assert model.judge("주문 감사합니다".split()) == []
    lines = held.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel" and all(line.rsplit("\t", 1)[1] in ("0", "1") for line in lines[1:])
    assert all(train_text.held_out(line.rsplit("\t", 1)[0]) for line in lines[1:])
    # Thresholds chosen on the validation split, used unless the config names one.
    calibrated = TextModel.load(TextModelConfig(model_dir=str(out)))
    assert set(calibrated.calibrated) == {"abusive", "악플/욕설"} and "validation split" in printed
    assert calibrated.threshold_for("abusive") == calibrated.calibrated["abusive"]
    assert model.threshold_for("abusive") == 0.5
    # The keyword gate for 악플/욕설, also from the validation split, at most the head's threshold.
    assert calibrated.insult_gate is not None and 0.0 <= calibrated.insult_gate <= calibrated.calibrated["악플/욕설"]
    assert "keyword hits count as 악플/욕설" in printed


def test_naive_bayes_scaling_favours_the_features_that_tell_the_classes_apart() -> None:
    from scipy import sparse

    # Feature 0 only in the positives, 1 in all four sentences, 2 in one of each.
    x = sparse.csr_matrix(np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0]], dtype=float))
    y, weight = np.array([1, 1, 0, 0]), np.ones(4)
    scale = train_text.nb_scale(x, y, weight, 0.5)
    assert scale[0] > 1.5 * scale[1] and scale[1] == pytest.approx(scale[2])  # 1 and 2: as common in both
    assert train_text.nb_scale(x, y, weight, 0.0).tolist() == [1.0, 1.0, 1.0]  # beta 0: plain logistic


def test_the_three_splits_are_disjoint_and_stable() -> None:
    corpus = train_text.Corpus()
    for i in range(400):
        corpus.add("k-mhas", f"문장 {i}", i % 2, -1)
    first = train_text.split(corpus)
    texts = [set(part.texts) for part in first]
    assert sum(len(t) for t in texts) == 400 and not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert all(20 <= len(t) <= 60 for t in texts[1:])  # about 10 % each
    assert [part.texts for part in train_text.split(corpus)] == [part.texts for part in first]


def test_marks_move_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA false positive lowers that sentence's score; a missed abuse raises its own."""
    write_corpora(tmp_path / "corpora")
    marks = tmp_path / "marks.tsv"
    marks.write_text("text\tlabel\n바보 상자 주문할게요\t0\n당신 말투 짜증나\t1\n", encoding="utf-8")
    assert main(train(tmp_path, "--out", str(tmp_path / "a"))) == 0
    assert main(train(tmp_path, "--out", str(tmp_path / "b"), "--marks", str(marks), "--marks-weight", "20")) == 0
    assert "marks 2" in capsys.readouterr().out
    before = TextModel.load(TextModelConfig(model_dir=str(tmp_path / "a")))
    after = TextModel.load(TextModelConfig(model_dir=str(tmp_path / "b")))
    texts = ["바보 상자 주문할게요", "당신 말투 짜증나"]
    old, new = before.scores(texts)[:, 0], after.scores(texts)[:, 0]
    assert new[0] < old[0] and new[1] > old[1]


def test_a_folder_without_corpora_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corpora").mkdir()
    assert main(train(tmp_path, "--out", str(tmp_path / "m"))) == 2
    assert "none of korean-hate-speech/" in capsys.readouterr().err
