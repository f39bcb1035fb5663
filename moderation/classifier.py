"""kor_unsmile (a KcBERT fine-tuned on UnSmile) as a text check that names the words to mute.

kor_unsmile is sentence-level: BertForSequenceClassification with one logit per label,
read through a sigmoid (multi-label: 여성/가족 남성 성소수자 인종/국적 연령 지역 종교 기타 혐오
악플/욕설 clean). To mute words rather than whole utterances, AbuseClassifier finds the
words that carry a label by leave-one-out re-scoring.

Attribution rule, per window (see "Windows") and per abusive label L whose score s on the
window reaches its threshold t; s_i is the score of the window without word i, and
d_i = s - s_i how much removing it lowers the score:
1. carriers: words with d_i >= min_drop and (s_i < t or d_i >= carry_share * s): on their
   own they make the window abusive, or hold a large share of its score;
2. no carrier (the abuse is repeated, "씨발 씨발", or needs several words together):
   the fallback_top_k words with the largest drops, each with d_i >= min_drop;
3. no word drops the score by min_drop (spread out; or the window is one word): the whole
   window.
All variants of every flagged window of every utterance in a call to judge_many() are
scored in one scorer call (the scorer splits it into forward passes of forward_batch
sequences). Known limit: a weaker carrier next to a strong one (removing it leaves the
window abusive and drops it little) can be missed; the keyword lists cover those words.

Windows: an utterance of more than max_words (non-empty) words is judged in windows of
max_words with stride max_words // 2 (the last one aligned to the end), so cost per
utterance is bounded and every word is seen with context on both sides. Hits of the same
label from overlapping windows merge into one Hit (union of words, highest score).

The classes are synchronous; run them in worker threads (moderation/classifier_batch.py
is the async front the relay calls). torch and transformers are imported when a model is
loaded, not at import time: the relay can catch ModelUnavailable without them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moderation import model_store
from moderation.classifier_config import CLEAN_LABEL, UNSMILE_LABELS, ClassifierConfig
from moderation.hits import Hit
from moderation.model_store import ModelUnavailable

__all__ = ["AbuseClassifier", "TransformersScorer", "Scorer", "ModelUnavailable", "attribute", "window_starts"]

log = logging.getLogger(__name__)

# texts -> probabilities, shape (len(texts), number of labels), in the labels' order.
Scorer = Callable[[list[str]], np.ndarray]

CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
# What a hub snapshot needs (the HF cache, or `allow_download`).
ALLOW_PATTERNS = [
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
]
# Korean that a KcBERT WordPiece vocabulary must not map to [UNK] (a tokenizer with
# do_lower_case/strip_accents on decomposes Hangul into jamo and loses everything).
_TOKENIZER_PROBE = "안녕하세요 고객님 주문하신 상품"
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


# --- the real scorer: transformers -------------------------------------------------------


class TransformersScorer:
    """Scorer over a transformers sequence-classification model and its tokenizer.

    Thread-safe: forward passes from several threads may overlap (torch releases the
    GIL); tokenisation is serialised (a fast tokenizer's padding/truncation state is
    shared). Counts its forward passes (`forward_passes`) and sequences (`sequences`)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        labels: Sequence[str],
        *,
        device: str = "cpu",
        max_length: int = 512,
        forward_batch: int = 64,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.device = device
        self.max_length = int(max_length)
        self.forward_batch = max(1, int(forward_batch))
        self.int8 = False  # set by from_folder when it quantised the model
        self.forward_passes = 0
        self.sequences = 0
        self._tok_lock = threading.Lock()
        self._count_lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        # Similar lengths together: less padding per pass.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for begin in range(0, len(order), self.forward_batch):
                chunk = order[begin : begin + self.forward_batch]
                with self._tok_lock:
                    enc = self.tokenizer(
                        [texts[i] for i in chunk],
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    )
                enc = {k: v.to(self.device) for k, v in enc.items()}
                logits = self.model(**enc).logits
                out[chunk] = torch.sigmoid(logits.float()).cpu().numpy()
                with self._count_lock:
                    self.forward_passes += 1
                    self.sequences += len(chunk)
        return out

    @classmethod
    def from_folder(cls, path: str, config: ClassifierConfig) -> TransformersScorer:
        """Loads tokenizer and model from a local folder; ModelUnavailable on any failure."""
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(f"torch/transformers cannot be imported: {type(exc).__name__}: {exc}") from exc
        where = f"model {config.model!r} from {path}"
        device = config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ModelUnavailable(
                f"classifier.device = 'cuda' but torch sees no CUDA device (torch {torch.__version__})"
            )
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - OSError, ValueError, JSON errors, tokenizers errors
            raise ModelUnavailable(
                f"cannot load the tokenizer of {where}: {type(exc).__name__}: {model_store.first_line(exc)}"
            ) from exc
        probe = tokenizer(_TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
        if not probe or all(i == tokenizer.unk_token_id for i in probe):
            raise ModelUnavailable(
                f"the tokenizer of {where} maps Korean to [UNK]: it must be KcBERT's "
                f"WordPiece vocabulary with do_lower_case = false"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    path, local_files_only=True, output_loading_info=True
                )
        except Exception as exc:  # noqa: BLE001 - corrupt or truncated weights, bad config
            raise ModelUnavailable(f"cannot load {where}: {type(exc).__name__}: {model_store.first_line(exc)}") from exc
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            # from_pretrained fills what the checkpoint lacks with random weights (e.g. a
            # base KcBERT with no classification head): scores would be noise.
            raise ModelUnavailable(
                f"{where} lacks weights {', '.join(missing[:4])}"
                f"{' ...' if len(missing) > 4 else ''}: not a fine-tuned classifier"
            )
        labels = _labels_of(model.config)
        max_length = min(int(getattr(model.config, "max_position_embeddings", 512) or 512), 512)
        if getattr(tokenizer, "model_max_length", None) and tokenizer.model_max_length < max_length:
            max_length = int(tokenizer.model_max_length)
        model.eval()
        if device == "cpu" and config.int8:
            model = quantize_int8(model)
        try:
            model.to(device)
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(f"cannot move {where} to {device}: {type(exc).__name__}: {exc}") from exc
        scorer = cls(model, tokenizer, labels, device=device, max_length=max_length, forward_batch=config.forward_batch)
        scorer.int8 = device == "cpu" and config.int8
        return scorer


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every nn.Linear (weights int8, activations quantised
    per batch): the usual 3-5x speed-up for BERT on CPU. torch marks the eager API
    deprecated in favour of torchao; it still works in 2.13, its warnings are silenced."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torch.quantization is the old home of quantize_dynamic; its stubs no longer name it.
        quantize = getattr(torch.ao.quantization, "quantize_dynamic", None) or torch.quantization.quantize_dynamic  # type: ignore[attr-defined]
        return quantize(model, {torch.nn.Linear}, dtype=torch.qint8)


def _labels_of(model_config: Any) -> tuple[str, ...]:
    num = int(getattr(model_config, "num_labels", 0) or 0)
    id2label = getattr(model_config, "id2label", None) or {}
    labels = tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(num))
    if labels and all(_GENERIC_LABEL.match(x) for x in labels):
        if num == len(UNSMILE_LABELS):
            log.warning("model config has generic labels %s..; assuming kor_unsmile's order", labels[:2])
            return UNSMILE_LABELS
        raise ModelUnavailable(
            f"model config names no labels (id2label: {labels[:3]} ...) and has {num}, "
            f"not kor_unsmile's {len(UNSMILE_LABELS)}"
        )
    return labels


# --- attribution -------------------------------------------------------------------------


def window_starts(n: int, max_words: int) -> list[int]:
    """Starts of the windows over n words: one window when n <= max_words, else stride
    max_words // 2 with the last window ending at the last word."""
    if n <= max_words:
        return [0]
    step = max(1, max_words // 2)
    starts = list(range(0, n - max_words + 1, step))
    if starts[-1] + max_words < n:
        starts.append(n - max_words)
    return starts


def attribute(
    full: float,
    without: np.ndarray,
    threshold: float,
    *,
    carry_share: float = 0.5,
    min_drop: float = 0.05,
    top_k: int = 2,
) -> tuple[list[int], str]:
    """Positions (ascending) of the words carrying a label, and which rule found them
    ("carrier", "top_k" or "window"); see the module docstring."""
    without = np.asarray(without, dtype=np.float64).reshape(-1)
    n = without.size
    if n == 0:
        return [], "window"
    drops = full - without
    strong = drops >= min_drop
    carriers = np.flatnonzero(strong & ((without < threshold) | (drops >= carry_share * full)))
    if carriers.size:
        return [int(i) for i in carriers], "carrier"
    candidates = np.flatnonzero(strong)
    if candidates.size:
        ranked = sorted(candidates, key=lambda i: (-drops[i], i))[:top_k]
        return sorted(int(i) for i in ranked), "top_k"
    return list(range(n)), "window"


@dataclass
class _Window:
    utterance: int
    indices: list[int]  # indices into the utterance's word list
    tokens: list[str]  # the words, stripped

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def without(self, j: int) -> str:
        return " ".join(self.tokens[:j] + self.tokens[j + 1 :])


# --- the classifier ------------------------------------------------------------------------


class AbuseClassifier:
    """Judges utterances with a Scorer; names the words that carry each abusive label.

    `AbuseClassifier.load(config)` builds the real one (kor_unsmile through transformers);
    tests pass any `scorer(texts) -> (n, labels) probabilities` with its `labels`.
    Thread-safe when the scorer is."""

    def __init__(
        self,
        scorer: Scorer,
        labels: Sequence[str],
        config: ClassifierConfig | None = None,
        *,
        version: str = "unversioned",
    ) -> None:
        self.config = config or ClassifierConfig()
        self.scorer = scorer
        self.labels: tuple[str, ...] = tuple(labels)
        self.version = version
        missing = [x for x in self.config.abusive_labels if x not in self.labels]
        if missing:
            raise ValueError(
                f"classifier.abusive_labels {missing} are not labels of the model ({', '.join(self.labels)})"
            )
        # (column, label, threshold) of each abusive label, in the model's label order.
        self.abusive: tuple[tuple[int, str, float], ...] = tuple(
            (i, label, self.config.threshold_for(label))
            for i, label in enumerate(self.labels)
            if label in self.config.abusive_labels and label != CLEAN_LABEL
        )
        self.load_s = 0.0
        self.device = getattr(scorer, "device", "cpu")

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, config: ClassifierConfig, *, allow_download: bool = False, warmup: bool = True) -> AbuseClassifier:
        """The real classifier from config.model (a folder, a folder under models_dir, or a
        hub id in the Hugging Face cache; fetched only with allow_download).

        Raises ModelUnavailable with the reason and what to do; keywords keep working."""
        started = time.monotonic()
        path = _locate(config, allow_download)
        scorer = TransformersScorer.from_folder(path, config)
        missing = [x for x in config.abusive_labels if x not in scorer.labels]
        if missing:
            raise ModelUnavailable(
                f"model {config.model!r} ({path}) has no label(s) {', '.join(missing)} named "
                f"in classifier.abusive_labels; its labels: {', '.join(scorer.labels)}"
            )
        version = model_store.model_version(config.model, path, WEIGHT_FILES) + (
            "+int8" if getattr(scorer, "int8", False) else ""
        )
        classifier = cls(scorer, scorer.labels, config, version=version)
        if warmup:
            try:
                classifier.scores([_TOKENIZER_PROBE])
            except Exception as exc:  # noqa: BLE001 - any failure here means the model is unusable
                raise ModelUnavailable(
                    f"model {config.model!r} loaded from {path} but failed a test pass: {type(exc).__name__}: {exc}"
                ) from exc
        classifier.load_s = time.monotonic() - started
        log.info(
            "abuse classifier %s loaded in %.1f s (device %s, labels %s)",
            version,
            classifier.load_s,
            classifier.device,
            ", ".join(label for _, label, _ in classifier.abusive),
        )
        return classifier

    # --- scoring ---------------------------------------------------------------------------

    def scores(self, texts: list[str]) -> np.ndarray:
        """Probabilities, shape (len(texts), len(self.labels)), columns in self.labels order."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        out = np.asarray(self.scorer(list(texts)))
        if out.shape != (len(texts), len(self.labels)):
            raise ValueError(f"scorer returned shape {out.shape} for {len(texts)} texts and {len(self.labels)} labels")
        return out

    def judge(self, words: list[str], context: Sequence[str] = ()) -> list[Hit]:
        """Hits for one utterance (its words as transcribed); see the module docstring.

        `context` (the words said before) is not read yet: kor_unsmile judges the window."""
        return self.judge_many([words])[0]

    def judge_many(self, utterances: list[list[str]]) -> list[list[Hit]]:
        """Hits per utterance, with every sentence of the lot scored in one scorer call and
        every leave-one-out variant of every flagged window in one more (one call in all
        with attribution = "eager")."""
        cfg = self.config
        windows: list[_Window] = []
        for u, words in enumerate(utterances):
            kept = [(i, w.strip()) for i, w in enumerate(words) if w and w.strip()]
            for start in window_starts(len(kept), cfg.max_words) if kept else []:
                part = kept[start : start + cfg.max_words]
                windows.append(_Window(u, [i for i, _ in part], [w for _, w in part]))
        results: list[list[Hit]] = [[] for _ in utterances]
        if not windows or not self.abusive:
            return results

        def variants(ws: list[int]) -> list[tuple[int, int]]:  # (window, position) to re-score
            return [(w, j) for w in ws if len(windows[w].tokens) > 1 for j in range(len(windows[w].tokens))]

        texts = [w.text for w in windows]
        eager = cfg.attribution == "eager"
        loo_keys = variants(list(range(len(windows)))) if eager else []
        scores = self.scores(texts + [windows[w].without(j) for w, j in loo_keys])
        full, loo_scores = scores[: len(windows)], scores[len(windows) :]
        flagged = [
            (w, col, label, t) for w in range(len(windows)) for col, label, t in self.abusive if full[w, col] >= t
        ]
        if not flagged:
            return results
        if not eager:
            loo_keys = variants(sorted({w for w, *_ in flagged}))
            loo_scores = self.scores([windows[w].without(j) for w, j in loo_keys])
        rows: dict[int, list[int]] = {}
        for row, (w, _j) in enumerate(loo_keys):
            rows.setdefault(w, []).append(row)

        merged: dict[tuple[int, str], tuple[set[int], float, float]] = {}
        for w, col, label, t in flagged:
            window = windows[w]
            s = float(full[w, col])
            if len(window.tokens) > 1:
                without = loo_scores[rows[w], col]
                positions, rule = attribute(
                    s, without, t, carry_share=cfg.carry_share, min_drop=cfg.min_drop, top_k=cfg.fallback_top_k
                )
            else:
                positions, rule = [0], "window"
            log.debug("%s %.3f >= %.3f in %r: words %s (%s)", label, s, t, window.text, positions, rule)
            carriers = {window.indices[p] for p in positions}
            key = (window.utterance, label)
            if key in merged:
                old_words, old_s, _ = merged[key]
                merged[key] = (old_words | carriers, max(old_s, s), t)
            else:
                merged[key] = (carriers, s, t)
        order = {label: i for i, label in enumerate(self.labels)}
        for (u, label), (carriers, s, t) in sorted(merged.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
            results[u].append(
                Hit(
                    words=tuple(sorted(carriers)),
                    source="classifier",
                    category=label,
                    score=s,
                    threshold=t,
                    detail=label,
                    version=self.version,
                )
            )
        return results


# --- locating and versioning ----------------------------------------------------------------


def missing_files(path: str | os.PathLike[str]) -> list[str]:
    """Files a transformers classifier folder lacks (empty when it looks complete)."""
    folder = Path(path)
    missing = [] if (folder / CONFIG_FILE).is_file() else [CONFIG_FILE]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append("model.safetensors|pytorch_model.bin")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer.json|vocab.txt")
    return missing


def hub_repo(name: str) -> str:
    if "/" not in name:
        raise ModelUnavailable(f"classifier {name!r} is not a hub repo id (owner/name, e.g. smilegate-ai/kor_unsmile)")
    return name


# How `callguard models pull --classifier` fetches one (moderation/model_store.py).
KIND = model_store.ModelKind("classifier", ALLOW_PATTERNS, missing_files, hub_repo)


def _locate(config: ClassifierConfig, allow_download: bool) -> str:
    model = config.model
    local = model_store.local_folder(
        model,
        config.models_dir,
        missing_files,
        "a kor_unsmile folder holds config.json, the weights and the tokenizer files of smilegate-ai/kor_unsmile",
    )
    if local is not None:
        return local
    where = os.path.join(config.models_dir, model_store.folder_name(model))
    if "/" not in model:
        raise ModelUnavailable(
            f"model {model!r} is neither a folder under {config.models_dir} nor a hub repo "
            f"id (owner/name, e.g. smilegate-ai/kor_unsmile)"
        )
    hint = (
        f"run `callguard models pull --classifier {model}` on a machine that reaches the hub, "
        f"or copy its folder to {where}"
    )
    try:
        import huggingface_hub
    except Exception as exc:  # noqa: BLE001
        raise ModelUnavailable(
            f"model {model!r} is not in {where} and huggingface_hub cannot be imported ({type(exc).__name__}); {hint}"
        ) from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        path = huggingface_hub.snapshot_download(
            model, local_files_only=offline or not allow_download, allow_patterns=ALLOW_PATTERNS
        )
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes; all mean "not here"
        why = "offline mode is on (HF_HUB_OFFLINE); " if offline and allow_download else ""
        raise ModelUnavailable(
            f"model {model!r} is not in {where} nor in the Hugging Face cache "
            f"({why}{type(exc).__name__}: {model_store.first_line(exc)}); {hint}"
        ) from exc
    missing = missing_files(path)
    if missing:
        raise ModelUnavailable(f"model {model!r} in the Hugging Face cache ({path}) lacks {', '.join(missing)}; {hint}")
    return str(path)
