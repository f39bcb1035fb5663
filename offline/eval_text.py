"""`callguard eval-text FILE`: how well the configured text checks find abuse in labelled text.

FILE is UnSmile-format TSV (a header `문장` then label columns: 여성/가족 남성 성소수자
인종/국적 연령 지역 종교 기타 혐오 악플/욕설 clean, maybe 개인지칭) or two columns
`text<TAB>0|1` (1 = abusive; no header, or a header such as `text<TAB>label`).

Every sentence is checked as the moderation checks an utterance: its words
(sentence.split()) go to the keyword matcher, the shipped text model and the classifier
(kor_unsmile); it is flagged when a check returns any hit. Figures, for the configured
moderation (the checks together, under the [checks] rule) and for each check alone:
- binary: abusive (any label but clean, or 1) against clean: precision, recall, F1;
- per label (UnSmile files): for each model, each of its labels the file has, a label
  predicted when its score reaches its threshold (classifier.thresholds,
  text_model.thresholds; the text model's "악플/욕설" head); the keyword lists have
  categories of their own: profanity, insult, threat and sexual harassment are UnSmile's
  악플/욕설 (abuse aimed at no group), so a hit of theirs predicts 악플/욕설; a hate hit
  (a group's slur) is group hate, which UnSmile labels by the group, so it does not.
  In the combined figures, where the shipped text model is loaded, a keyword hit counts as
  악플/욕설 only when the model's 악플/욕설 head reaches the gate chosen on its validation
  split (model.json keyword_insult_gate): a swear word in a sentence aimed at a group
  (the head scores those low) is that group's hate, not an insult.
When a model cannot be loaded (kor_unsmile's weights are not on this machine), the
figures leave it out and the output says why.

The check-loading helpers here (load_checks) are shared with `callguard eval-calls`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from moderation.call_moderator import PrefixCheck, TextCheck
from moderation.check_combination import CombinationConfig, combine
from moderation.check_loading import load_classifier, load_keywords, load_text_model
from moderation.classifier_config import CLEAN_LABEL
from moderation.hits import Hit
from moderation.keywords import KeywordMatcher
from relay.config import Config

SENTENCE_COLUMN = "문장"
# UnSmile's label for insults and profanity: what every keyword category is.
KEYWORD_LABEL = "악플/욕설"
# The keyword category whose entries name a group (hate.txt): not UnSmile's 악플/욕설.
GROUP_CATEGORY = "hate"
# Classifier sentences per judge_many() call.
CLASSIFIER_CHUNK = 64


def files_as_insult(hits: Sequence[Hit]) -> bool:
    """Whether keyword hits predict 악플/욕설: any hit of a category but group hate."""
    return any(h.category != GROUP_CATEGORY for h in hits)


class EvalError(Exception):
    """A file, manifest or model an evaluation cannot use; the message says which and why."""


# --------------------------------------------------------------------------- the data


@dataclass
class LabelledText:
    format: Literal["unsmile", "binary"]
    texts: list[str]
    abusive: np.ndarray  # bool (n,): any label but clean, or 1
    labels: list[str] = field(default_factory=list)  # label columns (UnSmile files)
    truth: np.ndarray | None = None  # bool (n, len(labels))


def read_labelled(path: str | Path) -> LabelledText:
    """An UnSmile TSV or a `text<TAB>0|1` file; raises EvalError naming the line at fault."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvalError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path}: not UTF-8 text ({exc})") from None
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(raw.split("\n"), 1) if line.strip()]
    if not lines:
        raise EvalError(f"{path}: empty file")
    first = lines[0][1].split("\t")
    if first[0].strip() == SENTENCE_COLUMN:
        return _read_unsmile(path, first, lines[1:])
    return _read_binary(path, lines)


def _read_unsmile(path: str | Path, header: list[str], lines: list[tuple[int, str]]) -> LabelledText:
    labels = [h.strip() for h in header[1:]]
    if not labels:
        raise EvalError(f"{path}: the header names no label columns after {SENTENCE_COLUMN}")
    texts: list[str] = []
    rows: list[list[bool]] = []
    for n, line in lines:
        parts = line.split("\t")
        if len(parts) < len(labels) + 1:
            raise EvalError(f"{path}:{n}: {len(parts)} columns, the header has {len(labels) + 1}")
        values = parts[len(parts) - len(labels) :]
        try:
            row = [_flag(v) for v in values]
        except ValueError:
            raise EvalError(f"{path}:{n}: label values must be 0 or 1, got {values}") from None
        texts.append("\t".join(parts[: len(parts) - len(labels)]))
        rows.append(row)
    truth = np.array(rows, dtype=bool).reshape(len(rows), len(labels))
    abusive_cols = [i for i, label in enumerate(labels) if label != CLEAN_LABEL]
    abusive = np.asarray(truth[:, abusive_cols].any(axis=1))
    return LabelledText("unsmile", texts, abusive, labels, truth)


def _read_binary(path: str | Path, lines: list[tuple[int, str]]) -> LabelledText:
    texts: list[str] = []
    flags: list[bool] = []
    for k, (n, line) in enumerate(lines):
        if "\t" not in line:
            raise EvalError(
                f"{path}:{n}: expected `text<TAB>0|1` (or an UnSmile header starting with {SENTENCE_COLUMN})"
            )
        text, value = line.rsplit("\t", 1)
        try:
            flag = _flag(value)
        except ValueError:
            if k == 0:
                continue  # a header such as text<TAB>label
            raise EvalError(f"{path}:{n}: the label must be 0 or 1, got {value.strip()!r}") from None
        texts.append(text)
        flags.append(flag)
    if not texts:
        raise EvalError(f"{path}: no labelled lines")
    return LabelledText("binary", texts, np.array(flags, dtype=bool))


def _flag(value: str) -> bool:
    v = value.strip()
    if v in ("0", "1"):
        return v == "1"
    raise ValueError(v)


# ------------------------------------------------------------------------- the checks


@dataclass
class Checks:
    """The configured text checks, each None when it could not be loaded (info says why)."""

    keywords: TextCheck | None = None
    text_model: Any | None = None  # a TextModel (judge, scores, labels, threshold_for)
    prefixes: PrefixCheck | None = None  # entry starts, for a word still being spoken
    classifier: Any | None = None  # an AbuseClassifier (judge, judge_many, scores, labels, config)
    info: dict[str, Any] = field(default_factory=dict)
    combination: CombinationConfig = field(default_factory=CombinationConfig)

    def loaded(self) -> list[tuple[str, TextCheck]]:
        pairs: list[tuple[str, TextCheck | None]] = [
            ("keywords", self.keywords),
            ("text_model", self.text_model.judge if self.text_model is not None else None),
            ("classifier", self.classifier.judge if self.classifier is not None else None),
        ]
        return [(name, check) for name, check in pairs if check is not None]

    def as_list(self) -> list[TextCheck]:
        """The checks as the moderator runs them; under rule "weighted", one check that
        runs them all and combines their hits (moderation/check_combination.py)."""
        checks = [check for _, check in self.loaded()]
        if self.combination.rule == "any" or not checks:
            return checks
        combination = self.combination

        def combined(words: list[str], context: Sequence[str] = ()) -> list[Hit]:
            return combine([hit for check in checks for hit in check(words, context)], combination)

        return [combined]

    def names(self) -> list[str]:
        return [name for name, _ in self.loaded()]


def load_checks(config: Config, *, keywords: bool = True, classifier: bool = True, text_model: bool = True) -> Checks:
    """The keyword matcher, the shipped text model and the classifier as the server would
    load them.

    A check that cannot be loaded is left out, with the reason in info; the caller
    decides whether that is fatal (no check at all is)."""
    checks = Checks(combination=config.checks)
    matcher = None
    if keywords:
        matcher, checks.info["keywords"] = _load_keywords(config)
        if matcher is not None:
            checks.keywords, checks.prefixes = matcher.match, matcher.match_prefixes
    else:
        checks.info["keywords"] = {"available": False, "reason": "left out (--no-keywords)"}
    if text_model:
        loaded_model = load_text_model(config.text_model, matcher)
        checks.text_model = loaded_model.check
        checks.info["text_model"] = (
            {"available": True, "version": loaded_model.detail, "folder": str(config.text_model.folder())}
            if loaded_model.check is not None
            else {"available": False, "reason": loaded_model.detail}
        )
    else:
        checks.info["text_model"] = {"available": False, "reason": "left out (--no-text-model)"}
    if classifier:
        checks.classifier, checks.info["classifier"] = _load_classifier(config)
    else:
        checks.info["classifier"] = {"available": False, "reason": "left out (--no-classifier)"}
    return checks


def _load_keywords(config: Config) -> tuple[KeywordMatcher | None, dict[str, Any]]:
    loaded = load_keywords(config.keywords)
    if loaded.check is None:
        return None, {"available": False, "reason": loaded.detail}
    matcher = loaded.check
    return matcher, {
        "available": True,
        "version": matcher.version,
        "lists": str(matcher.folder),
        "entries": matcher.counts,
    }


def _load_classifier(config: Config) -> tuple[Any | None, dict[str, Any]]:
    loaded = load_classifier(config.classifier)
    if loaded.check is None:
        return None, {"available": False, "reason": loaded.detail}
    return loaded.check, {"available": True, "version": loaded.detail}


# ------------------------------------------------------------------------ the figures


def _metrics(pred: np.ndarray, truth: np.ndarray, with_tn: bool = False) -> dict[str, Any]:
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out: dict[str, Any] = {"precision": _r(precision), "recall": _r(recall), "f1": _r(f1), "tp": tp, "fp": fp, "fn": fn}
    if with_tn:
        out["tn"] = int(np.count_nonzero(~pred & ~truth))
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def evaluate_text(data: LabelledText, checks: Checks) -> dict[str, Any]:
    """The figures as a JSON-able dict (see the module docstring)."""
    started = time.perf_counter()
    words = [text.split() for text in data.texts]
    n = len(words)
    hits: dict[str, list[list[Hit]]] = {}
    label_pred: dict[str, dict[str, np.ndarray]] = {}
    if checks.keywords is not None:
        hits["keywords"] = [checks.keywords(w, ()) if w else [] for w in words]
        label_pred["keywords"] = {KEYWORD_LABEL: np.array([files_as_insult(f) for f in hits["keywords"]], bool)}
    # The text model's 악플/욕설 scores and gate, where it files keyword hits (module docstring).
    insult_gate: tuple[np.ndarray, float] | None = None
    for name, model in (("text_model", checks.text_model), ("classifier", checks.classifier)):
        if model is None:
            continue
        found: list[list[Hit]] = []
        for begin in range(0, n, CLASSIFIER_CHUNK):
            found += model.judge_many(words[begin : begin + CLASSIFIER_CHUNK])
        hits[name] = found
        if data.format == "unsmile":
            scores = (
                np.concatenate(
                    [
                        model.scores([" ".join(w) for w in words[b : b + CLASSIFIER_CHUNK]])
                        for b in range(0, n, CLASSIFIER_CHUNK)
                    ]
                )
                if n
                else np.zeros((0, len(model.labels)))
            )
            threshold = model.threshold_for if name == "text_model" else model.config.threshold_for
            label_pred[name] = {label: scores[:, j] >= threshold(label) for j, label in enumerate(model.labels)}
            gate = getattr(model, "insult_gate", None) if name == "text_model" else None
            if gate is not None and KEYWORD_LABEL in model.labels:
                insult_gate = (scores[:, model.labels.index(KEYWORD_LABEL)], float(gate))
        else:
            label_pred[name] = {}

    def result(names: list[str], flag: np.ndarray, preds: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {"checks": names, "binary": _metrics(flag, data.abusive, with_tn=True)}
        out["binary"]["flagged"] = int(np.count_nonzero(flag))
        if data.format == "unsmile":
            assert data.truth is not None
            out["labels"] = {
                label: {
                    **_metrics(preds[label], data.truth[:, i]),
                    "support": int(np.count_nonzero(data.truth[:, i])),
                }
                for i, label in enumerate(data.labels)
                if label in preds
            }
        return out

    results: dict[str, Any] = {"combined": None, "keywords": None, "text_model": None, "classifier": None}
    for name, found in hits.items():
        results[name] = result([name], np.array([bool(h) for h in found], dtype=bool), label_pred[name])
    if hits:
        combination = checks.combination
        combined_flag = np.array(
            [bool(combine([h for found in hits.values() for h in found[k]], combination)) for k in range(n)],
            dtype=bool,
        ).reshape(n)
        combined_labels: dict[str, np.ndarray] = {}
        for source, preds in label_pred.items():
            for label, pred in preds.items():
                if source == "keywords" and insult_gate is not None:
                    pred = pred & (insult_gate[0] >= insult_gate[1])
                combined_labels[label] = combined_labels.get(label, np.zeros(n, bool)) | pred
        if combination.rule != "any":  # a label counts only where the combination mutes
            combined_labels = {label: pred & combined_flag for label, pred in combined_labels.items()}
        results["combined"] = result(list(hits), combined_flag, combined_labels)
    return {
        "format": data.format,
        "sentences": n,
        "abusive": int(np.count_nonzero(data.abusive)),
        "labels": data.labels,
        "checks": checks.info,
        "combination": combination_view(checks.combination),
        "classifier_available": checks.classifier is not None,
        "text_model_available": checks.text_model is not None,
        "results": results,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def combination_view(config: CombinationConfig) -> dict[str, Any]:
    if config.rule == "any":
        return {"rule": "any"}
    return {"rule": config.rule, "weights": dict(config.weights), "threshold": config.threshold}


def _pad(text: str, width: int) -> str:
    """Left-aligned in `width` terminal columns (Hangul takes two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"{report.get('file', '')}: {report['format']}, {report['sentences']} sentences, {report['abusive']} abusive"
    ]
    for name, info in report["checks"].items():
        state = f"version {info.get('version') or '?'}" if info.get("available") else f"UNAVAILABLE: {info['reason']}"
        lines.append(f"  {name}: {state}")
    lines.append("")
    lines.append(
        f"{_pad('checks', 30)} {_pad('figure', 12)} {'precision':>9} {'recall':>7} {'f1':>7} {'tp':>6} "
        f"{'fp':>6} {'fn':>6} {'support':>7}"
    )

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for key in ("combined", "keywords", "text_model", "classifier"):
        res = report["results"].get(key)
        if res is None:
            continue
        name = key if key != "combined" else f"combined ({'+'.join(res['checks'])})"
        rows = [("abusive", res["binary"], res["binary"]["tp"] + res["binary"]["fn"])]
        rows += [(label, m, m["support"]) for label, m in res.get("labels", {}).items()]
        for figure, m, support in rows:
            lines.append(
                f"{_pad(name, 30)} {_pad(figure, 12)} {fmt(m['precision']):>9} {fmt(m['recall']):>7} "
                f"{fmt(m['f1']):>7} {m['tp']:>6} {m['fp']:>6} {m['fn']:>6} {support:>7}"
            )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="UnSmile TSV (문장 + label columns) or text<TAB>0|1 lines")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-classifier", action="store_true", help="keywords only, even if a classifier loads")
    parser.add_argument("--no-keywords", action="store_true", help="leave the keyword lists out")
    parser.add_argument("--no-text-model", action="store_true", help="leave the shipped text model out")


def main(args: argparse.Namespace, config: Config) -> int:
    try:
        data = read_labelled(args.file)
    except EvalError as exc:
        print(f"callguard eval-text: {exc}", file=sys.stderr)
        return 2
    checks = load_checks(
        config,
        keywords=not getattr(args, "no_keywords", False),
        classifier=not getattr(args, "no_classifier", False),
        text_model=not getattr(args, "no_text_model", False),
    )
    if not checks.names():
        reasons = "; ".join(f"{k}: {v.get('reason')}" for k, v in checks.info.items())
        print(f"callguard eval-text: no text check could be loaded ({reasons})", file=sys.stderr)
        return 2
    report = {"file": str(args.file), **evaluate_text(data, checks)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_table(report))
    return 0
