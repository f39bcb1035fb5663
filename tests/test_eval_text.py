"""`callguard eval-text`: figures checked by hand on small files, and a run on UnSmile."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from moderation.classifier import AbuseClassifier
from moderation.classifier_config import UNSMILE_LABELS
from moderation.hits import Hit
from offline import eval_text
from offline.eval_text import Checks, EvalError, evaluate_text, read_labelled
from relay.config import Config

HEADER = ["문장", *UNSMILE_LABELS, "개인지칭"]

# (sentence, its labels). Keyword double flags 1 5 7; classifier double flags 1 2 4.
ROWS = [
    ("너 진짜 씨발 바보", {"악플/욕설"}),  # 1
    ("여자는 집에나 있어", {"여성/가족"}),  # 2
    ("배송 언제 와요", {"clean"}),  # 3
    ("바보 같은 날씨네", {"clean"}),  # 4
    ("멍청이 같은 놈", {"악플/욕설", "개인지칭"}),  # 5
    ("그 지역 사람들은 다 그래", {"지역"}),  # 6
    ("씨발 오늘 날씨 좋다", {"clean"}),  # 7
    ("남자들은 다 똑같아", {"남성"}),  # 8
]


def keyword_double(words: list[str], context: Sequence[str] = ()) -> list[Hit]:
    """Test double for the keyword matcher: a hit on 멍청이 and on any word holding 씨발."""
    return [
        Hit((i,), "keyword", "insult", 1.0, 1.0, w, "double")
        for i, w in enumerate(words)
        if w == "멍청이" or "씨발" in w
    ]


def scorer_double(texts: list[str]) -> np.ndarray:
    """Test double for kor_unsmile: 악플/욕설 0.9 when 바보 is said, 여성/가족 0.8 when 여자
    is, clean 0.9 when neither; every other label 0."""
    out = np.zeros((len(texts), len(UNSMILE_LABELS)), dtype=np.float32)
    col = {label: i for i, label in enumerate(UNSMILE_LABELS)}
    for r, text in enumerate(texts):
        out[r, col["악플/욕설"]] = 0.9 if "바보" in text else 0.1
        out[r, col["여성/가족"]] = 0.8 if "여자" in text else 0.0
        out[r, col["clean"]] = 0.9 if "바보" not in text and "여자" not in text else 0.1
    return out


def double_checks(keywords: bool = True, classifier: bool = True) -> Checks:
    checks = Checks(info={})
    if keywords:
        checks.keywords = keyword_double
        checks.info["keywords"] = {"available": True, "version": "double"}
    if classifier:
        checks.classifier = AbuseClassifier(scorer_double, UNSMILE_LABELS, version="double")
        checks.info["classifier"] = {"available": True, "version": "double"}
    return checks


def write_unsmile(path: Path) -> Path:
    lines = ["\t".join(HEADER)]
    for text, labels in ROWS:
        lines.append("\t".join([text] + ["1" if h in labels else "0" for h in HEADER[1:]]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_binary(path: Path, header: bool) -> Path:
    lines = ["text\tlabel"] if header else []
    lines += [f"{text}\t{0 if labels == {'clean'} else 1}" for text, labels in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def figures(m: dict) -> tuple:
    return m["tp"], m["fp"], m["fn"], m["precision"], m["recall"], m["f1"]


def test_unsmile_figures_are_the_hand_computed_ones(tmp_path: Path) -> None:
    data = read_labelled(write_unsmile(tmp_path / "small.tsv"))
    assert data.format == "unsmile" and data.labels == HEADER[1:]
    assert data.abusive.tolist() == [True, True, False, False, True, True, False, True]
    report = evaluate_text(data, double_checks())
    res = report["results"]
    assert report["sentences"] == 8 and report["abusive"] == 5 and report["classifier_available"]
    # Binary: truth 1 2 5 6 8. Keywords flag 1 5 7, the classifier 1 2 4, together 1 2 4 5 7.
    assert figures(res["keywords"]["binary"]) == (2, 1, 3, 0.6667, 0.4, 0.5)
    assert figures(res["classifier"]["binary"]) == (2, 1, 3, 0.6667, 0.4, 0.5)
    assert figures(res["combined"]["binary"]) == (3, 2, 2, 0.6, 0.6, 0.6)
    assert res["combined"]["binary"]["tn"] == 1 and res["combined"]["checks"] == ["keywords", "classifier"]
    # Keywords predict 악플/욕설 (truth 1 5) and nothing else.
    assert list(res["keywords"]["labels"]) == ["악플/욕설"]
    assert figures(res["keywords"]["labels"]["악플/욕설"]) == (2, 1, 0, 0.6667, 1.0, 0.8)
    # The classifier, per label at threshold 0.5: 악플/욕설 on 1 4, 여성/가족 on 2, clean on 3 5 6 7 8.
    cls = res["classifier"]["labels"]
    assert list(cls) == list(UNSMILE_LABELS)  # 개인지칭 is not a label of the model
    assert figures(cls["악플/욕설"]) == (1, 1, 1, 0.5, 0.5, 0.5)
    assert figures(cls["여성/가족"]) == (1, 0, 0, 1.0, 1.0, 1.0)
    assert figures(cls["clean"]) == (2, 3, 1, 0.4, 0.6667, 0.5)  # 2*0.4*(2/3) / (0.4 + 2/3)
    assert figures(cls["남성"]) == (0, 0, 1, None, 0.0, None) and cls["남성"]["support"] == 1
    assert figures(cls["종교"]) == (0, 0, 0, None, None, None)
    # Together, 악플/욕설 is the classifier's 1 4 or a keyword hit 1 5 7.
    assert figures(res["combined"]["labels"]["악플/욕설"]) == (2, 2, 0, 0.5, 1.0, 0.6667)


@pytest.mark.parametrize("header", [True, False])
def test_binary_file_figures(tmp_path: Path, header: bool) -> None:
    data = read_labelled(write_binary(tmp_path / "bin.tsv", header))
    assert data.format == "binary" and len(data.texts) == 8 and data.texts[0] == "너 진짜 씨발 바보"
    report = evaluate_text(data, double_checks())
    assert figures(report["results"]["combined"]["binary"]) == (3, 2, 2, 0.6, 0.6, 0.6)
    assert figures(report["results"]["keywords"]["binary"]) == (2, 1, 3, 0.6667, 0.4, 0.5)
    assert "labels" not in report["results"]["keywords"]


def test_without_classifier_the_combined_figures_are_the_keywords(tmp_path: Path) -> None:
    report = evaluate_text(read_labelled(write_unsmile(tmp_path / "small.tsv")), double_checks(classifier=False))
    res = report["results"]
    assert res["classifier"] is None and not report["classifier_available"]
    assert res["combined"]["checks"] == ["keywords"] and res["combined"]["binary"] == res["keywords"]["binary"]


def test_bad_files_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("좋은 말\t0\n나쁜 말\t2\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"bad.tsv:2: the label must be 0 or 1"):
        read_labelled(bad)
    bad.write_text("문장\t악플/욕설\tclean\n문장 하나\t1\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"bad.tsv:2: 2 columns"):
        read_labelled(bad)


def test_command_prints_json_and_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    eval_text.add_arguments(parser)
    path = write_unsmile(tmp_path / "small.tsv")
    assert eval_text.main(parser.parse_args([str(path), "--json", "--no-classifier"]), Config()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checks"]["keywords"]["available"] and report["results"]["keywords"]["binary"]["tp"] >= 1
    assert report["checks"]["classifier"] == {"available": False, "reason": "left out (--no-classifier)"}
    assert eval_text.main(parser.parse_args([str(path), "--no-classifier"]), Config()) == 0
    assert "악플/욕설" in capsys.readouterr().out
    assert eval_text.main(parser.parse_args([str(tmp_path / "missing.tsv")]), Config()) == 2


def test_the_shipped_text_model_is_reported_alone_and_in_the_combined_figures(tmp_path: Path) -> None:
    from moderation.check_loading import load_text_model
    from moderation.text_model_config import TextModelConfig

    checks = double_checks(classifier=False)
    checks.text_model = load_text_model(TextModelConfig()).check
    assert checks.text_model is not None
    report = evaluate_text(read_labelled(write_unsmile(tmp_path / "small.tsv")), checks)
    res = report["results"]
    assert report["text_model_available"] and res["combined"]["checks"] == ["keywords", "text_model"]
    flagged = res["text_model"]["binary"]["flagged"]
    assert res["combined"]["binary"]["flagged"] >= max(flagged, res["keywords"]["binary"]["flagged"])
    assert "악플/욕설" in res["text_model"]["labels"]  # the model's insult head, scored per label


def test_the_weighted_rule_needs_checks_to_agree(tmp_path: Path) -> None:
    from moderation.check_combination import CombinationConfig

    checks = double_checks()
    # kor_unsmile double scores 0.9: 0.5 * 0.9 alone is under 0.8; a keyword (1.0 * 1.0) alone is over.
    checks.combination = CombinationConfig(rule="weighted", weights={"keyword": 1.0, "classifier": 0.5}, threshold=0.8)
    res = evaluate_text(read_labelled(write_unsmile(tmp_path / "small.tsv")), checks)["results"]
    # Keywords flag 1 5 7; the classifier 1 2 4 adds nothing alone: the keywords' figures.
    assert figures(res["combined"]["binary"]) == figures(res["keywords"]["binary"])
    assert len(checks.as_list()) == 1  # the moderator runs one check that combines them
    assert checks.as_list()[0]("여자 는".split()) == []


def test_a_hate_list_hit_is_group_hate_not_insult(tmp_path: Path) -> None:
    """UnSmile labels a group's slur by the group: it counts for the binary figure, not for 악플/욕설."""

    def slur_double(words: list[str], context: Sequence[str] = ()) -> list[Hit]:
        return [Hit((0,), "keyword", "hate", 1.0, 1.0, words[0], "double")] if words[0] == "짱깨" else []

    path = tmp_path / "slur.tsv"
    rows = [("짱깨 들", "인종/국적"), ("좋은 하루", "clean")]
    lines = ["\t".join(HEADER)] + ["\t".join([t] + ["1" if h == lab else "0" for h in HEADER[1:]]) for t, lab in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checks = Checks(info={"keywords": {"available": True, "version": "double"}}, keywords=slur_double)
    res = evaluate_text(read_labelled(path), checks)["results"]["keywords"]
    assert res["binary"]["tp"] == 1 and res["labels"]["악플/욕설"]["fp"] == 0


class GatingTextModelDouble:
    """Test double for the shipped text model: flags nothing, scores 악플/욕설 0.7 where 놈 is
    said (0.1 elsewhere), under a head threshold of 0.9 and a keyword gate of 0.5."""

    labels = ("abusive", "악플/욕설")
    insult_gate = 0.5

    def judge_many(self, utterances: list[list[str]]) -> list[list[Hit]]:
        return [[] for _ in utterances]

    def scores(self, texts: list[str]) -> np.ndarray:
        return np.array([[0.0, 0.7 if "놈" in t else 0.1] for t in texts])

    def threshold_for(self, label: str) -> float:
        return 0.9


def test_a_keyword_hit_counts_as_insult_only_over_the_text_models_gate(tmp_path: Path) -> None:
    """Combined 악플/욕설: the keyword hits (1 5 7) where the model's head reaches its gate (5)."""
    checks = double_checks(classifier=False)
    checks.text_model = GatingTextModelDouble()
    checks.info["text_model"] = {"available": True, "version": "double"}
    res = evaluate_text(read_labelled(write_unsmile(tmp_path / "small.tsv")), checks)["results"]
    assert figures(res["keywords"]["labels"]["악플/욕설"]) == (2, 1, 0, 0.6667, 1.0, 0.8)  # alone: ungated
    assert figures(res["combined"]["labels"]["악플/욕설"]) == (1, 0, 1, 1.0, 0.5, 0.6667)
    assert figures(res["combined"]["binary"]) == figures(res["keywords"]["binary"])  # the gate files, never mutes
