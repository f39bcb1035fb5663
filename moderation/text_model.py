"""The text model that ships in the package: hashed character n-grams, one linear head per label.

kor_unsmile is the stronger model, but its weights must be fetched from a hub and it needs
torch; this one loads from package data with numpy alone, in milliseconds, and judges a
sentence in well under a millisecond. It was trained on CC BY-SA 4.0 corpora
(moderation/text_model_data/MODEL_CARD.md; `callguard models train-text` retrains it).

Features are built word by word, so every feature belongs to one word (or, for a word
pair, to two): each word, folded as the keyword lists fold it (moderation/normalise.py),
gives its character 1- to 4-grams with word-boundary marks, its jamo 3- to 5-grams
(format 2), itself as a whole word, and the pair it makes with the word before it.
Feature ids are CRC32 hashes folded into `dim` buckets (no vocabulary to ship). A
sentence's vector holds each feature's log(1 + count) (format 2; the count in format 1),
divided by its L2 norm; a label's score is sigmoid(bias + w . x).

That makes the logit a sum over words, which is the attribution: word i contributes
c_i, the weights of its features times their values (a feature two words share, a pair
or a repeated n-gram, is split between them by their shares of its count). A label's
carriers are the words with c_i >= min_contribution and c_i >= carry_share * max(c);
the words that push the score up the most, never the whole utterance unless every
word does.

Two rules from outside the model:
- The keyword allowlist (false friends: 병신년생, 시발점이): a word an allowlist entry
  matches on (KeywordMatcher.allowed_words) is left out of the sentence, so it adds
  nothing to any score and is never a carrier. One allowlist for every check.
- Context (moderation/call_moderator.py): the words said just before. A label fires on
  the context only when the words alone are under its threshold, the context alone is
  under it too, and context plus words reach it: the combination is what is abusive.
  Its carriers are the joined sentence's carriers (the rule above) that are current
  words, so a hit on context mutes only the current words; none is a carrier (the
  earlier words carry the score, the current ones only tipped it over): no hit.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from moderation.hits import Hit
from moderation.normalise import is_syllable, normalise_word, split_syllable
from moderation.text_model_config import TextModelConfig

# Where the shipped model lies (package data).

WEIGHTS_FILE = "weights.npz"
META_FILE = "model.json"
FORMAT = "callguard-hashed-ngrams-2"
FORMATS = ("callguard-hashed-ngrams-1", FORMAT)  # 1: no jamo n-grams, plain counts
MAX_NGRAM = 4  # the longest character n-gram, unless the model's model.json says otherwise
JAMO_NGRAMS = (3, 5)
# model.json: the least "악플/욕설" score at which eval-text files a keyword hit under
# 악플/욕설 (offline/train_text.py insult_gate); under it the sentence reads as group hate.
INSULT_GATE = "keyword_insult_gate"


# The words of a sentence that an allowlist entry matches on (KeywordMatcher.allowed_words).
AllowedWords = Callable[[list[str]], set[int]]


class TextModelError(ValueError):
    """A model folder that cannot be used; the message names the file and why."""


def word_form(word: str) -> str:
    """A word as the model sees it: folded like the keyword lists fold it, else lower case
    ("" for an empty word, which gets no features)."""
    folded = normalise_word(word)[0] if word else ""
    return folded or word.lower()


@dataclass(frozen=True)
class Features:
    """How a sentence becomes a vector (model.json keeps it with the weights)."""

    dim: int  # hash buckets
    max_ngram: int = MAX_NGRAM  # character 1- to max_ngram-grams of each word
    jamo: tuple[int, int] = (0, 0)  # jamo n-grams of each word, sizes (min, max); (0, 0): none
    sublinear: bool = False  # a feature's value is log(1 + count), not its count

    def meta(self) -> dict[str, Any]:
        jamo = list(self.jamo)
        return {"dim": self.dim, "max_ngram": self.max_ngram, "jamo_ngrams": jamo, "sublinear": self.sublinear}


def default_features(dim: int, max_ngram: int = MAX_NGRAM) -> Features:
    """What train-text fits: jamo 3- to 5-grams (a syllable's consonant and vowel each
    count, so 씨발 and 씌발 share most of theirs) and log counts (held-out F1, each at
    its best threshold on the validation split: 0.761 without them, 0.770 with)."""
    return Features(dim, max_ngram, JAMO_NGRAMS, True)


def _jamo(form: str) -> str:
    return "".join("".join(split_syllable(c)) if is_syllable(c) else c for c in form)


@lru_cache(maxsize=16384)
def _word_ids(form: str, spec: Features) -> tuple[int, ...]:
    """The features of one folded word alone (its n-grams and itself), with repeats."""
    dim = spec.dim
    ids: list[int] = []
    marked = f"<{form}>"
    n = len(marked)
    for size in range(1, spec.max_ngram + 1):
        for start in range(n - size + 1):
            gram = marked[start : start + size]
            if gram in ("<", ">"):
                continue
            ids.append(zlib.crc32(gram.encode()) % dim)
    ids.append(zlib.crc32(b"W" + form.encode()) % dim)
    low, high = spec.jamo
    if high:
        letters = f"<{_jamo(form)}>"
        for size in range(low, high + 1):
            for start in range(len(letters) - size + 1):
                ids.append(zlib.crc32(b"J" + letters[start : start + size].encode()) % dim)
    return tuple(ids)


def word_features(forms: Sequence[str], spec: Features) -> list[list[int]]:
    """Feature ids of each word (folded forms), with repeats: features[i] belong to word i.

    The pair feature (previous word, word) is listed under both of its words, last; the
    caller splits its weight between them."""
    out: list[list[int]] = []
    previous = ""
    for form in forms:
        if not form:  # a word left out (an allowlisted one): no features, no pair across it
            out.append([])
            previous = ""
            continue
        out.append(list(_word_ids(form, spec)))
        if previous:
            pair = zlib.crc32(b"P" + previous.encode() + b" " + form.encode()) % spec.dim
            out[-2].append(pair)
            out[-1].append(pair)
        previous = form
    return out


def sentence_features(words: Sequence[str], spec: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature ids, values, word of each) of one sentence's normalised vector.

    Ids repeat where a feature occurs more than once; the values already hold the L2
    normalisation (and the log of the counts, with `sublinear`), so sum(values * w[ids])
    is w . x. A pair feature appears under both words with half its value each."""
    forms = [word_form(w) for w in words]
    per_word = word_features(forms, spec)
    ids: list[int] = []
    owner: list[int] = []
    share: list[float] = []
    for i, word_ids in enumerate(per_word):
        pairs = (1 if i > 0 and forms[i - 1] and forms[i] else 0) + (
            1 if i + 1 < len(per_word) and forms[i] and forms[i + 1] else 0
        )
        singles = len(word_ids) - pairs
        ids.extend(word_ids)
        owner.extend([i] * len(word_ids))
        share.extend([1.0] * singles + [0.5] * pairs)
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64)
    id_arr = np.asarray(ids, dtype=np.int64)
    share_arr = np.asarray(share, dtype=np.float64)
    _, inverse = np.unique(id_arr, return_inverse=True)
    # The counts of the sentence's own features (a pair counted once, not once per word).
    totals = np.bincount(inverse, weights=share_arr)
    values = np.log1p(totals) if spec.sublinear else totals
    norm = math.sqrt(float(np.sum(values**2))) or 1.0
    # Each occurrence holds its share of its feature's value.
    return id_arr, share_arr * (values / totals)[inverse] / norm, np.asarray(owner, dtype=np.int64)


@dataclass(frozen=True)
class TextModelFiles:
    labels: tuple[str, ...]
    features: Features
    weights: np.ndarray  # float32 (labels, dim)
    bias: np.ndarray  # float32 (labels,)
    meta: dict[str, Any]


def read_model(folder: Path) -> TextModelFiles:
    """The model in `folder` (model.json + weights.npz). Raises TextModelError."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TextModelError(f"{folder}: no {META_FILE} (a folder written by `callguard models train-text`)") from None
    except (OSError, ValueError) as exc:
        raise TextModelError(f"{folder / META_FILE}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS:
        raise TextModelError(f"{folder / META_FILE}: not a {FORMAT} model")
    try:
        with np.load(folder / WEIGHTS_FILE) as data:
            weights = np.asarray(data["weights"], dtype=np.float32)
            bias = np.asarray(data["bias"], dtype=np.float32)
    except FileNotFoundError:
        raise TextModelError(f"{folder}: no {WEIGHTS_FILE}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise TextModelError(f"{folder / WEIGHTS_FILE}: unreadable ({exc})") from None
    labels = tuple(str(label) for label in meta.get("labels", ()))
    dim = int(meta.get("dim", 0))
    max_ngram = int(meta.get("max_ngram", MAX_NGRAM))
    if not 1 <= max_ngram <= 8:
        raise TextModelError(f"{folder / META_FILE}: max_ngram {max_ngram} is out of range [1, 8]")
    jamo = meta.get("jamo_ngrams", [0, 0])
    if (
        not isinstance(jamo, list)
        or len(jamo) != 2
        or not all(isinstance(x, int) for x in jamo)
        or not (jamo == [0, 0] or 1 <= jamo[0] <= jamo[1] <= 8)
    ):
        raise TextModelError(f"{folder / META_FILE}: jamo_ngrams {jamo!r} is not [0, 0] or [min, max] within [1, 8]")
    if not labels or weights.shape != (len(labels), dim) or bias.shape != (len(labels),):
        raise TextModelError(
            f"{folder}: weights {weights.shape} and bias {bias.shape} do not fit {len(labels)} labels x dim {dim}"
        )
    features = Features(dim, max_ngram, (jamo[0], jamo[1]), bool(meta.get("sublinear", False)))
    return TextModelFiles(labels, features, weights, bias, meta)


def write_model(
    folder: Path,
    labels: Sequence[str],
    weights: np.ndarray,
    bias: np.ndarray,
    meta: dict[str, Any],
    features: Features | None = None,
) -> None:
    """Writes a model folder read_model() takes (weights stored as float16: half the size,
    scores move by less than 0.001). `features`: how it was fitted (default: format 1's)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / WEIGHTS_FILE, weights=weights.astype(np.float16), bias=bias.astype(np.float32))
    spec = features or Features(int(weights.shape[1]), int(meta.get("max_ngram", MAX_NGRAM)))
    if spec.dim != weights.shape[1]:
        raise ValueError(f"features for dim {spec.dim}, weights of dim {weights.shape[1]}")
    full = {**meta, **spec.meta(), "format": FORMAT, "labels": list(labels)}
    (folder / META_FILE).write_text(json.dumps(full, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


class TextModel:
    """The shipped model as a text check: `judge(words)` -> hits on the carrying words.

    Immutable after loading; safe to call from several threads."""

    def __init__(
        self, files: TextModelFiles, config: TextModelConfig, folder: Path, allowed: AllowedWords | None = None
    ) -> None:
        self.files = files
        self.allowed = allowed  # the keyword allowlist (module docstring), when the lists are loaded
        self.config = config
        self.folder = folder
        self.labels = files.labels
        self.version = str(files.meta.get("version") or "text-model")
        unknown = [label for label in config.labels if label not in files.labels]
        if unknown:
            raise TextModelError(
                f"text_model.labels: {', '.join(unknown)} not in the model {folder} ({', '.join(files.labels)})"
            )
        self._judged = [files.labels.index(label) for label in config.labels]
        calibrated = files.meta.get("thresholds")
        self.calibrated: dict[str, float] = (
            {str(k): float(v) for k, v in calibrated.items() if isinstance(v, (int, float)) and 0.0 <= v <= 1.0}
            if isinstance(calibrated, dict)
            else {}
        )
        gate = files.meta.get(INSULT_GATE)
        self.insult_gate: float | None = (
            float(gate)
            if isinstance(gate, (int, float)) and not isinstance(gate, bool) and 0.0 <= gate <= 1.0
            else None
        )

    @classmethod
    def load(cls, config: TextModelConfig, allowed: AllowedWords | None = None) -> TextModel:
        folder = config.folder()
        return cls(read_model(folder), config, folder, allowed)

    def with_allowlist(self, allowed: AllowedWords | None) -> TextModel:
        """The same model under another allowlist (the keyword lists were reloaded)."""
        return TextModel(self.files, self.config, self.folder, allowed)

    def threshold_for(self, label: str) -> float:
        return self.config.threshold_for(label, self.calibrated)

    def contributions(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(logits per label, per-word contributions (labels, words)) of one sentence."""
        return self._contributions(self._left_out(words))

    def _left_out(self, words: Sequence[str]) -> list[str]:
        """`words` with the allowlisted ones emptied (no features)."""
        allowed = self.allowed(list(words)) if self.allowed is not None and words else set()
        return ["" if i in allowed else w for i, w in enumerate(words)]

    def _contributions(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        files = self.files
        ids, values, owner = sentence_features(words, files.features)
        per_word = np.zeros((len(files.labels), len(words)), dtype=np.float64)
        if len(ids):
            parts = files.weights[:, ids] * values
            for row in range(len(files.labels)):
                per_word[row] = np.bincount(owner, weights=parts[row], minlength=len(words))
        return files.bias.astype(np.float64) + per_word.sum(axis=1), per_word

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (len(texts), labels) of whole texts (split at whitespace)."""
        out = np.zeros((len(texts), len(self.labels)))
        for k, text in enumerate(texts):
            logits, _ = self.contributions(text.split())
            out[k] = _sigmoid(logits)
        return out

    def judge(self, words: list[str], context: Sequence[str] = ()) -> list[Hit]:
        """Hits on `words`, judged alone and, where that is not enough, after `context`."""
        if not any(w.strip() for w in words):
            return []
        earlier = [w for w in context if w.strip()]
        joined = self._left_out(earlier + list(words))  # one allowlist scan for the three
        logits, per_word = self._contributions(joined[len(earlier) :])
        if earlier:
            context_logits, _ = self._contributions(joined[: len(earlier)])
            joined_logits, joined_per_word = self._contributions(joined)
        hits = []
        for row in self._judged:
            label = self.labels[row]
            threshold = self.threshold_for(label)
            p = float(_sigmoid(logits[row]))
            if p >= threshold:
                hits.append(self._hit(label, p, threshold, self.carriers(per_word[row]), ""))
            elif earlier and float(_sigmoid(context_logits[row])) < threshold:
                p = float(_sigmoid(joined_logits[row]))
                # The carriers of the joined sentence, by the one rule: a current word must be
                # one of them, or the context's own words carry the score (a lone 네 after a
                # context just under the threshold lifts it over, but is not what is abusive).
                joined_carriers = self.carriers(joined_per_word[row]) if p >= threshold else ()
                current = tuple(i - len(earlier) for i in joined_carriers if i >= len(earlier))
                if current and joined_per_word[row].max() > 0.0:
                    hits.append(self._hit(label, p, threshold, current, " after context"))
        return hits

    def _hit(self, label: str, p: float, threshold: float, carriers: tuple[int, ...], how: str) -> Hit:
        return Hit(carriers, "text_model", label, round(p, 4), threshold, f"{label} {p:.2f}{how}", self.version)

    __call__ = judge  # a TextCheck (moderation.call_moderator)

    def judge_many(self, utterances: list[list[str]]) -> list[list[Hit]]:
        return [self.judge(words) for words in utterances]

    def carriers(self, contributions: np.ndarray) -> tuple[int, ...]:
        """The words that carry a label (see the module docstring); at least the top one."""
        top = float(contributions.max())
        if top <= 0.0:  # the bias alone is over the threshold: nothing to single out
            return tuple(range(len(contributions)))
        floor = max(self.config.min_contribution, self.config.carry_share * top)
        chosen = tuple(int(i) for i in np.flatnonzero(contributions >= floor))
        return chosen or (int(np.argmax(contributions)),)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0))))
