"""`callguard models train-text`: retrain the shipped text model from the corpora and QA marks.

    callguard models train-text --corpora ../shared/data/hate-speech [--marks marks.tsv] --out DIR

Reads the CC BY-SA 4.0 corpora the shipped model was trained on (a folder holding any of
korean-hate-speech/, apeach/, k-mhas/ as they are published; see moderation/
text_model_data/MODEL_CARD.md) and the QA marks (the `text<TAB>0|1` TSV the QA page
exports: 1 missed abuse, 0 a false positive), trains the hashed n-gram model
(moderation/text_model.py) and writes it to DIR. Every sentence is put in the held-out
split (10 %), the validation split (10 %) or the training split by a hash of its text,
so a sentence and its duplicates never land on two sides and a rerun splits the same
way. The model is fitted on the training split; each label's threshold is the one with
the best F1 on the validation split ("abusive": at precision >= 0.8; calibrate), written
to model.json (the config's text_model.thresholds override it); the held-out split is
only measured. Every mark is trained on (they are few and meant). It prints the held-out
figures of the model in force before (the shipped one, or --base DIR) and of the new
one, side by side, and how each does on the marks. The QA loop: mark, retrain,
`callguard replay` yesterday's calls under a config naming the new folder, compare.
Point text_model.model_dir at DIR to use it.

Labels: "abusive" is any abuse or hate a corpus marks; "악플/욕설" is abuse aimed at no
group (an insult at a person), by each corpus's own annotation: korean-hate-speech's
bias "none", K-MHaS with no group label (origin, politics, age, gender, race, religion).
No UnSmile data chose the mapping or the thresholds.

Training: the features of moderation.text_model.default_features (character and jamo
n-grams of each word, log counts), each scaled by its naive Bayes log-count ratio for
the label (nb_scale; folded into the weights, so inference is unchanged); one
L2-regularised logistic regression per label, fitted with L-BFGS (scipy) on the sparse
feature matrix; a sentence with no value for a label (APEACH has no insult label) is
left out of that label's loss. The keyword gate for 악플/욕설 (insult_gate), also from
the validation split, is written beside the thresholds. Marks weigh --marks-weight times a
corpus sentence: a reviewer's mark is rare and meant.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moderation.check_loading import load_keywords
from moderation.keyword_config import KeywordConfig
from moderation.text_model import (
    INSULT_GATE,
    MAX_NGRAM,
    Features,
    TextModel,
    TextModelError,
    default_features,
    read_model,
    sentence_features,
    write_model,
)
from moderation.text_model_config import TEXT_MODEL_LABELS, TextModelConfig
from offline.eval_text import EvalError, files_as_insult, read_labelled

DEFAULT_DIM = 1 << 19
HELD_OUT_PERCENT = 10
VALIDATION_PERCENT = 10
# The least precision a calibrated threshold may have on the validation split (calibrate):
# for the label that mutes by default (text_model.labels).
MIN_PRECISION = {"abusive": 0.8}
# K-MHaS labels that name a group: 0 origin, 2 politics, 4 age, 5 gender, 6 race, 7 religion
# (1 physical appearance and 3 profanity are aimed at a person).
KMHAS_GROUPS = frozenset({"0", "2", "4", "5", "6", "7"})
# Naive Bayes feature scaling (nb_scale). Validation split, "abusive" at the calibrated
# threshold: F1 0.762 without (beta 0), 0.773 with 0.5, 0.771 with 1.0.
NB_BETA = 0.5
# L2 regularisation, on the scaled features. Same split and figure, with NB_BETA: 0.779 at
# 3e-6, 0.775 at 1e-5 (and 0.773 at 1e-6 with beta 0.75).
L2 = 3e-6


@dataclass
class Corpus:
    """Sentences with a target per label: 1, 0, or -1 where the source does not say."""

    texts: list[str] = field(default_factory=list)
    targets: list[tuple[int, ...]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)

    def add(self, source: str, text: str, abusive: int, insult: int, weight: float = 1.0) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.texts.append(text)
        self.targets.append((abusive, insult))
        self.weights.append(weight)
        self.sources[source] = self.sources.get(source, 0) + 1

    def extend(self, other: Corpus) -> None:
        self.texts += other.texts
        self.targets += other.targets
        self.weights += other.weights

    def subset(self, keep: list[int]) -> Corpus:
        out = Corpus()
        out.texts = [self.texts[i] for i in keep]
        out.targets = [self.targets[i] for i in keep]
        out.weights = [self.weights[i] for i in keep]
        return out


def read_corpora(folder: Path) -> Corpus:
    """The corpora under `folder`, in their published formats; raises EvalError when none is there."""
    corpus = Corpus()
    khs = folder / "korean-hate-speech"
    for name in ("train.tsv", "dev.tsv"):
        if (khs / name).is_file():
            with (khs / name).open(encoding="utf-8") as f:
                for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                    hate = (row.get("hate") or "").strip()
                    abusive = int(hate != "none")
                    # Abuse with no group named: an insult at a person (UnSmile's 악플/욕설).
                    insult = int(abusive and row.get("bias") == "none")
                    corpus.add("korean-hate-speech", row.get("comments") or "", abusive, insult)
    apeach = folder / "apeach" / "test.csv"
    if apeach.is_file():
        with apeach.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                corpus.add("apeach", row.get("text") or "", int(row.get("class") == "Spoiled"), -1)
    for name in ("kmhas_train.txt", "kmhas_valid.txt", "kmhas_test.txt"):
        path = folder / "k-mhas" / name
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    labels = {x.strip() for x in (row.get("label") or "").split(",")}
                    abusive = int("8" not in labels)
                    # Abuse aimed at no group (only profanity or appearance): an insult.
                    insult = int(abusive and not labels & KMHAS_GROUPS)
                    corpus.add("k-mhas", row.get("document") or "", abusive, insult)
    if not corpus.texts:
        raise EvalError(f"{folder}: none of korean-hate-speech/, apeach/, k-mhas/ in their published formats")
    return corpus


def add_marks(corpus: Corpus, path: Path, weight: float) -> int:
    """The QA page's marks export (or any text<TAB>0|1 file); raises EvalError."""
    data = read_labelled(path)
    for text, flag in zip(data.texts, data.abusive):
        # A missed abuse is abuse; whether it is an insult the mark does not say.
        corpus.add("marks", text, int(flag), 0 if not flag else -1, weight)
    return len(data.texts)


def _bucket(text: str) -> int:
    return zlib.crc32(text.encode()) % 100


def held_out(text: str) -> bool:
    return _bucket(text) < HELD_OUT_PERCENT


def split(corpus: Corpus) -> tuple[Corpus, Corpus, Corpus]:
    """(training, validation, held out), by a hash of each sentence."""
    buckets = [_bucket(t) for t in corpus.texts]
    edge = HELD_OUT_PERCENT + VALIDATION_PERCENT
    test = [i for i, b in enumerate(buckets) if b < HELD_OUT_PERCENT]
    validation = [i for i, b in enumerate(buckets) if HELD_OUT_PERCENT <= b < edge]
    train = [i for i, b in enumerate(buckets) if b >= edge]
    return corpus.subset(train), corpus.subset(validation), corpus.subset(test)


def calibrate(model: TextModel, validation: Corpus) -> dict[str, float]:
    """Per label, the threshold (0.05-0.95, step 0.01) with the best F1 on `validation`,
    for the label that mutes by default among those with precision >= MIN_PRECISION (the
    best F1 of all where none has it); none for a label the split has no positive of.

    The precision floor is for calls: the F1-best "abusive" threshold of the model before
    tm-7c7dc5e81ea4 (0.37) muted a lone 네 (0.39) and 2.24 % of the clean speech of the
    synthetic calls, the floor's (0.56) 0.23 %, as the keyword lists alone, for 0.013 of
    held-out F1. (tm-7c7dc5e81ea4: 0.48 is both the F1-best and the floor's.)
    "악플/욕설" mutes only where text_model.labels names it; there the floor would cost
    most of its recall (held-out F1 0.555 -> 0.333)."""
    out: dict[str, float] = {}
    if not validation.texts:
        return out
    probs = model.scores(validation.texts)
    targets = np.asarray(validation.targets).reshape(len(validation.texts), len(TEXT_MODEL_LABELS))
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    for k, label in enumerate(TEXT_MODEL_LABELS):
        known = targets[:, k] >= 0
        truth = targets[known, k] == 1
        if not truth.any():
            continue
        p = probs[known, model.labels.index(label)]
        pred = p[None, :] >= grid[:, None]
        tp = (pred & truth).sum(axis=1)
        f1 = 2 * tp / np.maximum(pred.sum(axis=1) + truth.sum(), 1)
        precise = tp >= MIN_PRECISION.get(label, 0.0) * np.maximum(pred.sum(axis=1), 1)
        out[label] = float(grid[int(np.argmax(np.where(precise, f1, -1.0) if precise.any() else f1))])
    return out


def insult_gate(model: TextModel, validation: Corpus, keyword_insult: np.ndarray) -> float | None:
    """The least "악플/욕설" score at which a keyword hit is filed under 악플/욕설 (eval-text's
    combined figure), chosen for the best 악플/욕설 F1 on `validation` of "the head reaches its
    threshold, or a keyword hits and the head reaches the gate" (0.0: every keyword hit).

    Why a gate: 악플/욕설 is abuse aimed at no group. A swear word in a sentence aimed at a
    group (K-MHaS's origin, gender, politics ...; korean-hate-speech's bias) is group hate,
    which the head was trained to score low, so a keyword hit there is not an insult.
    `keyword_insult`: per validation sentence, whether the keyword lists hit with an
    insult category (offline.eval_text.files_as_insult). None: no threshold to gate under."""
    label = "악플/욕설"
    threshold = model.calibrated.get(label)
    if threshold is None or not validation.texts:
        return None
    targets = np.asarray(validation.targets).reshape(len(validation.texts), len(TEXT_MODEL_LABELS))
    known = targets[:, TEXT_MODEL_LABELS.index(label)] >= 0
    truth = targets[known, TEXT_MODEL_LABELS.index(label)] == 1
    p = model.scores(validation.texts)[known, model.labels.index(label)]
    keyword = np.asarray(keyword_insult, dtype=bool)[known]
    grid = np.round(np.arange(0.0, threshold + 1e-9, 0.01), 2)
    pred = (p[None, :] >= threshold) | (keyword[None, :] & (p[None, :] >= grid[:, None]))
    tp = (pred & truth).sum(axis=1)
    f1 = 2 * tp / np.maximum(pred.sum(axis=1) + truth.sum(), 1)
    return float(grid[int(np.argmax(f1))])


def feature_matrix(texts: list[str], spec: Features) -> Any:
    from scipy import sparse

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for r, text in enumerate(texts):
        ids, values, _ = sentence_features(text.split(), spec)
        rows.append(np.full(len(ids), r, dtype=np.int64))
        cols.append(ids)
        vals.append(values)
    matrix = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), spec.dim)
    )
    return matrix.tocsr()  # duplicates (a feature seen twice) are summed


def fit_logistic(x: Any, y: np.ndarray, weight: np.ndarray, l2: float, max_iter: int = 300) -> tuple[np.ndarray, float]:
    """Weighted, L2-regularised logistic regression (bias unregularised) by L-BFGS."""
    from scipy.optimize import minimize

    n, dim = x.shape
    total = float(weight.sum())
    xt = x.T.tocsr()

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:dim], params[dim]
        z = x @ w + b
        # log(1 + e^z) - y z, stably
        lse = np.logaddexp(0.0, z)
        value = float(np.dot(weight, lse - y * z)) / total + 0.5 * l2 * float(np.dot(w, w))
        p = 1.0 / (1.0 + np.exp(-z))
        g = weight * (p - y) / total
        grad = np.empty(dim + 1)
        grad[:dim] = xt @ g + l2 * w
        grad[dim] = g.sum()
        return value, grad

    result = minimize(loss, np.zeros(dim + 1), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x[:dim].astype(np.float32), float(result.x[dim])


def nb_scale(x: Any, y: np.ndarray, weight: np.ndarray, beta: float) -> np.ndarray:
    """Each feature's |log-count ratio|**beta (Wang & Manning 2012, "NBSVM"): how much more
    often it occurs in positive than in negative sentences (presence counts, weighted, +1
    smoothing). Fitting on x * s and shipping w * s gives the same scores at inference and
    amounts to a per-feature L2 penalty of 1/s**2: a feature that tells the classes apart
    costs less to use. beta 0: plain logistic regression."""
    if beta == 0.0:
        return np.ones(x.shape[1])
    present = x.copy()
    present.data[:] = 1.0
    pos = np.asarray(present.T @ (weight * (y == 1))).ravel() + 1.0
    neg = np.asarray(present.T @ (weight * (y == 0))).ravel() + 1.0
    ratio = np.log((pos / pos.sum()) / (neg / neg.sum()))
    return np.asarray(np.abs(ratio) ** beta)


def train(
    corpus: Corpus, spec: Features, l2: float = L2, max_iter: int = 300, nb_beta: float = NB_BETA
) -> tuple[np.ndarray, np.ndarray]:
    """(weights (labels, dim), bias (labels,)) for TEXT_MODEL_LABELS."""
    from scipy import sparse

    dim = spec.dim
    x = feature_matrix(corpus.texts, spec)
    targets = np.asarray(corpus.targets, dtype=np.int64).reshape(len(corpus.texts), len(TEXT_MODEL_LABELS))
    sample_weight = np.asarray(corpus.weights, dtype=np.float64)
    weights = np.zeros((len(TEXT_MODEL_LABELS), dim), dtype=np.float32)
    bias = np.zeros(len(TEXT_MODEL_LABELS), dtype=np.float32)
    for k in range(len(TEXT_MODEL_LABELS)):
        known = targets[:, k] >= 0
        if not known.any():
            continue
        xk, yk, wk = x[known], targets[known, k].astype(np.float64), sample_weight[known]
        scale = nb_scale(xk, yk, wk, nb_beta)
        w, b = fit_logistic(xk @ sparse.diags(scale), yk, wk, l2, max_iter)
        weights[k], bias[k] = w * scale, b
    return weights, bias


def figures(model: TextModel, corpus: Corpus) -> dict[str, Any]:
    """Precision, recall, F1 of each label on `corpus` (sentences with a target for it)."""
    if not corpus.texts:
        return {}
    probs = model.scores(corpus.texts)
    targets = np.asarray(corpus.targets).reshape(len(corpus.texts), len(TEXT_MODEL_LABELS))
    out: dict[str, Any] = {}
    for k, label in enumerate(TEXT_MODEL_LABELS):
        if label not in model.labels:
            continue
        known = targets[:, k] >= 0
        truth = targets[known, k] == 1
        pred = probs[known, model.labels.index(label)] >= model.threshold_for(label)
        tp = int(np.count_nonzero(pred & truth))
        fp = int(np.count_nonzero(pred & ~truth))
        fn = int(np.count_nonzero(~pred & truth))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[label] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "n": int(known.sum())}
    return out


def _version(weights: np.ndarray, bias: np.ndarray) -> str:
    digest = hashlib.sha256(weights.astype(np.float16).tobytes() + bias.astype(np.float32).tobytes())
    return "tm-" + digest.hexdigest()[:12]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpora", type=Path, required=True, help="folder with korean-hate-speech/, apeach/, k-mhas/")
    parser.add_argument(
        "--marks", type=Path, action="append", default=[], help="QA marks TSV (text<TAB>0|1); repeatable"
    )
    parser.add_argument("--marks-weight", type=float, default=5.0, help="weight of a mark against a corpus sentence")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    parser.add_argument("--base", type=Path, help="model to compare against (default: text_model.model_dir)")
    parser.add_argument("--dim", type=int, default=DEFAULT_DIM, help="hashed feature buckets")
    parser.add_argument("--max-ngram", type=int, default=MAX_NGRAM, help="longest character n-gram (1-8)")
    parser.add_argument("--l2", type=float, default=L2, help="L2 regularisation")
    parser.add_argument("--max-iter", type=int, default=300, help="L-BFGS iterations per label")
    parser.add_argument(
        "--nb-beta", type=float, default=NB_BETA, help="naive Bayes feature scaling exponent (0: plain logistic)"
    )
    parser.add_argument(
        "--held-out-tsv", type=Path, help="also write the held-out split as text<TAB>0|1, for `callguard eval-text`"
    )


def _keyword_insult(texts: list[str], keywords: KeywordConfig) -> np.ndarray | None:
    """Per sentence, whether the keyword lists file a hit under 악플/욕설; None without lists."""
    matcher = load_keywords(keywords).check
    if matcher is None:
        return None
    return np.array([files_as_insult(matcher.match(t.split())) for t in texts], dtype=bool)


def main(args: argparse.Namespace, config: TextModelConfig, keywords: KeywordConfig | None = None) -> int:
    started = time.perf_counter()
    marks = Corpus()
    try:
        corpus = read_corpora(args.corpora)
        for path in args.marks:
            add_marks(marks, path, args.marks_weight)
    except EvalError as exc:
        print(f"callguard models train-text: {exc}", file=sys.stderr)
        return 2
    if not 2 <= args.dim <= 1 << 24 or not 1 <= args.max_ngram <= 8 or not 0.0 <= args.nb_beta <= 2.0:
        print(
            "callguard models train-text: --dim must be in [2, 16777216], --max-ngram in [1, 8], --nb-beta in [0, 2]",
            file=sys.stderr,
        )
        return 2
    train_set, validation_set, test_set = split(corpus)
    train_set.extend(marks)  # every mark is trained on: they are few, and meant
    print(
        f"sentences: {len(corpus.texts)} ({', '.join(f'{k} {v}' for k, v in corpus.sources.items())}); "
        f"marks {len(marks.texts)}; training {len(train_set.texts)}, validation {len(validation_set.texts)}, "
        f"held out {len(test_set.texts)}"
    )
    if args.held_out_tsv is not None:
        lines = ["text\tlabel", *(f"{t}\t{y[0]}" for t, y in zip(test_set.texts, test_set.targets))]
        args.held_out_tsv.parent.mkdir(parents=True, exist_ok=True)
        args.held_out_tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base_config = config if args.base is None else TextModelConfig(model_dir=str(args.base))
    before: dict[str, Any] = {}
    marks_before: dict[str, Any] = {}
    try:
        base = TextModel.load(base_config)
        before, marks_before = figures(base, test_set), figures(base, marks)
    except TextModelError as exc:
        print(f"no model to compare against: {exc}")
    spec = default_features(args.dim, args.max_ngram)
    weights, bias = train(train_set, spec, args.l2, args.max_iter, args.nb_beta)
    meta = {
        "version": _version(weights, bias),
        "trained": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": {**corpus.sources, **({"marks": len(marks.texts)} if marks.texts else {})},
        "training_sentences": len(train_set.texts),
        "validation_sentences": len(validation_set.texts),
        "held_out_sentences": len(test_set.texts),
        "l2": args.l2,
        "nb_beta": args.nb_beta,
        "licence": "CC BY-SA 4.0 (trained on CC BY-SA 4.0 corpora; see MODEL_CARD.md of the shipped model)",
    }
    write_model(args.out, TEXT_MODEL_LABELS, weights, bias, meta, spec)
    # Thresholds from the validation split, as the model scores once written (float16).
    meta["thresholds"] = calibrate(TextModel(read_model(args.out), config, args.out), validation_set)
    write_model(args.out, TEXT_MODEL_LABELS, weights, bias, meta, spec)
    print(f"thresholds (best F1 on the validation split, precision at least {MIN_PRECISION}): {meta['thresholds']}")
    flags = _keyword_insult(validation_set.texts, keywords or KeywordConfig())
    if flags is not None:
        gate = insult_gate(TextModel(read_model(args.out), config, args.out), validation_set, flags)
        if gate is not None:
            meta[INSULT_GATE] = gate
            write_model(args.out, TEXT_MODEL_LABELS, weights, bias, meta, spec)
            print(f"keyword hits count as 악플/욕설 where the 악플/욕설 head reaches {gate} (validation split)")
    new = TextModel(read_model(args.out), config, args.out)
    print(f"held out: {'label':<10} {'before P':>9} {'R':>6} {'F1':>6}   {'after P':>8} {'R':>6} {'F1':>6}   n")
    _print_figures(before, figures(new, test_set))
    if marks.texts:
        print("the marks (trained on, so not held out):")
        _print_figures(marks_before, figures(new, marks))
    print(
        f"wrote {args.out} ({meta['version']}) in {time.perf_counter() - started:.1f} s; "
        f'use it with text_model.model_dir = "{args.out.resolve()}"'
    )
    return 0


def _print_figures(before: dict[str, Any], after: dict[str, Any]) -> None:
    def fmt(m: dict[str, Any], key: str) -> str:
        return f"{m[key]:.3f}" if key in m else "-"

    for label, now in after.items():
        old = before.get(label, {})
        print(
            f"          {label:<10} {fmt(old, 'precision'):>9} {fmt(old, 'recall'):>6} {fmt(old, 'f1'):>6}   "
            f"{fmt(now, 'precision'):>8} {fmt(now, 'recall'):>6} {fmt(now, 'f1'):>6}   {now['n']}"
        )
