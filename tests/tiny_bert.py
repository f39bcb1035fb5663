"""Randomly-initialised kor_unsmile look-alikes, built on the fly (no weights can be fetched).

The model is the real architecture (BertForSequenceClassification, multi-label, kor_unsmile's
10 labels with their real id2label/label2id) on the real KcBERT WordPiece vocabulary
(tests/data/kcbert-vocab), with random weights: scores are noise, the code path
(from_pretrained, tokenizer, sigmoid, int8) is the real one.

Pitfalls handled here:
- transformers 5.x: BertTokenizer(vocab_file=...) silently ignores vocab_file and builds a
  specials-only vocabulary (everything becomes [UNK]); the vocabulary goes in as `vocab=`;
- KcBERT needs do_lower_case=False: BERT's lowercasing also strips accents (NFD), which
  decomposes Hangul syllables into jamo that the vocabulary does not have.

Use `tiny_bert_fixture` (body of a session-scoped pytest fixture), `build_tiny_bert()` or
`build_bert_model()` (in memory, for bench/classifier_speed.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from moderation.classifier_config import UNSMILE_LABELS

ROOT = Path(__file__).resolve().parent.parent
KCBERT_DIR = Path(__file__).resolve().parent / "data" / "kcbert-vocab"
VOCAB_TXT = KCBERT_DIR / "vocab.txt"


# (hidden, layers, heads, intermediate)
SIZES = {
    "test": (32, 2, 2, 64),
    "base": (768, 12, 12, 3072),  # bert-base / KcBERT-base / kor_unsmile
}


def vocab_size() -> int:
    with open(VOCAB_TXT, encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def kcbert_tokenizer() -> Any:
    from transformers import BertTokenizer

    tok = BertTokenizer(vocab=str(VOCAB_TXT), do_lower_case=False, strip_accents=False)
    max_pos = json.loads((KCBERT_DIR / "config.json").read_text())["max_position_embeddings"]
    tok.model_max_length = max_pos
    return tok


def build_bert_model(size: str = "test", seed: int = 0) -> Any:
    """A random BertForSequenceClassification of `size` with kor_unsmile's head and labels."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    hidden, layers, heads, inter = SIZES[size]
    kc = json.loads((KCBERT_DIR / "config.json").read_text())
    config = BertConfig(
        vocab_size=vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=kc["max_position_embeddings"],
        type_vocab_size=kc["type_vocab_size"],
        num_labels=len(UNSMILE_LABELS),
        id2label=dict(enumerate(UNSMILE_LABELS)),
        label2id={label: i for i, label in enumerate(UNSMILE_LABELS)},
        problem_type="multi_label_classification",
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval()


def build_tiny_bert(out_dir: str | os.PathLike, size: str = "test", seed: int = 0) -> Path:
    """Writes a kor_unsmile-like folder (config.json, model.safetensors, tokenizer files,
    vocab.txt) to out_dir. Never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    build_bert_model(size, seed).save_pretrained(tmp)
    kcbert_tokenizer().save_pretrained(tmp)
    shutil.copy(VOCAB_TXT, tmp / "vocab.txt")  # as the hub repo has it, next to tokenizer.json
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


_BUILT: dict[str, Path] = {}


def tiny_bert_fixture(tmp_path_factory: Any) -> Path:
    """Body of a session-scoped fixture: the path of a tiny kor_unsmile-like folder.

        tiny_bert = pytest.fixture(scope="session")(tiny_bert.tiny_bert_fixture)

    Built once per session (about a second) even when several modules declare it."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILT or not (_BUILT[key] / "config.json").is_file():
        started = time.monotonic()
        _BUILT[key] = build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "kor_unsmile-test")
        built_s = time.monotonic() - started
        if built_s > 1:
            print(f"[tiny bert built in {built_s:.1f} s at {_BUILT[key]}]")
    return _BUILT[key]


class KeywordKeyedScorer:
    """TEST DOUBLE for the model: scores 악플/욕설 (or `label`) high for any text that
    contains a planted word, higher the more it contains (1 - 0.98 * 0.2**count: none
    0.02, one 0.804, two 0.961, three 0.992); `clean` is the complement, other labels
    0.01. Records every call (its texts and thread) and can be held at a gate, so tests
    can count passes, see where they ran, and fill a queue."""

    def __init__(
        self,
        planted: set[str] | frozenset[str],
        label: str = "악플/욕설",
        labels: tuple[str, ...] = UNSMILE_LABELS,
        delay_s: float = 0.0,
    ) -> None:
        import threading

        self.planted = frozenset(planted)
        self.labels = labels
        self.column = labels.index(label)
        self.delay_s = delay_s
        self.calls: list[list[str]] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a call starts (before waiting at the gate)
        self.fail_with: BaseException | None = None

    def score_of(self, text: str) -> float:
        count = sum(1 for token in text.split() if token in self.planted)
        return 1.0 - 0.98 * 0.2**count

    def __call__(self, texts: list[str]):
        import threading
        import time as _time

        import numpy as np

        self.calls.append(list(texts))
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        self.gate.wait(10)
        if self.delay_s:
            _time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        out = np.full((len(texts), len(self.labels)), 0.01, dtype=np.float32)
        for row, text in enumerate(texts):
            score = self.score_of(text)
            out[row, self.column] = score
            if "clean" in self.labels:
                out[row, self.labels.index("clean")] = 1.0 - score
        return out
