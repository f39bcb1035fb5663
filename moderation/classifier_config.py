"""Settings of the kor_unsmile abuse classifier ([classifier] in the server's config).

Field types stay within what relay/config.py builds from TOML (str, int, float, bool,
Literal, list[str], dict[str, float]); validate() raises ValueError naming the key
relative to [classifier], as SttConfig does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from moderation.config_range import check_range

# kor_unsmile's labels in the model's own order (its config.json id2label; also the column
# order of the UnSmile TSV). The model's config is authoritative at load time; this list
# is what config validation knows and the fallback for a config with generic LABEL_i names.
UNSMILE_LABELS: tuple[str, ...] = (
    "여성/가족",
    "남성",
    "성소수자",
    "인종/국적",
    "연령",
    "지역",
    "종교",
    "기타 혐오",
    "악플/욕설",
    "clean",
)
CLEAN_LABEL = "clean"
DEFAULT_THRESHOLD = 0.5

# Which labels count as abuse toward the counselor, by default. The counselor is the one
# who hears it, so the defaults are the labels that attack a person: insults and
# profanity (악플/욕설), sexist and family insults (여성/가족: "니애미"-type insults and
# abuse of a female counselor), hate against men (남성), age-based put-downs (연령:
# "어린 게", "늙은이"), and other hate (기타 혐오: disability, occupation). Group labels
# that mostly fire on *mentions* of a group in a service call (성소수자, 인종/국적, 지역, 종교:
# "중국에서 배송", "경상도 지점") are off by default to keep clean speech unmuted; a site
# can add them. "clean" can never be one.
DEFAULT_ABUSIVE_LABELS: tuple[str, ...] = ("악플/욕설", "여성/가족", "남성", "연령", "기타 혐오")


@dataclass(frozen=True)
class ClassifierConfig:
    enabled: bool = True
    # "local": the model runs in this process. "ray": on the shared inference tier
    # (`callguard stt-tier`, Ray Serve) at tier_url, which batches the requests of every
    # relay node; the model and threshold settings below are then the tier's. A request
    # the tier has not answered in tier_timeout_s fails: that window is judged by the
    # other checks, and the classifier is not asked again for tier_retry_s.
    backend: Literal["local", "ray"] = "local"
    tier_url: str = "http://127.0.0.1:8000/classifier"
    tier_timeout_s: float = 0.5
    tier_retry_s: float = 2.0
    # A hub repo id (fetched beforehand on a connected machine into
    # <models_dir>/<owner>--<name>, or already in the Hugging Face cache), a folder name
    # under models_dir, or a path to a transformers model folder (config.json, weights,
    # tokenizer files). The server never downloads.
    model: str = "smilegate-ai/kor_unsmile"
    models_dir: str = "models"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Dynamic int8 quantisation of the Linear layers on CPU (bert-base, one short sentence:
    # ~73 ms fp32 -> ~14 ms int8 on 2 threads). Ignored on cuda. Scores move slightly;
    # the model version records "+int8" so QA can tell.
    int8: bool = True
    # torch intra-op threads for the whole process (0: leave torch's default). Shared
    # with nothing else torch runs; CTranslate2 (Whisper) has its own threads.
    threads: int = 0
    # Per-label probability a label must reach (score >= threshold); labels not named use
    # DEFAULT_THRESHOLD. TOML: thresholds = { "악플/욕설" = 0.5, "여성/가족" = 0.6 }
    thresholds: dict[str, float] = field(default_factory=lambda: {label: DEFAULT_THRESHOLD for label in UNSMILE_LABELS})
    abusive_labels: list[str] = field(default_factory=lambda: list(DEFAULT_ABUSIVE_LABELS))
    # Word attribution (leave-one-out; see moderation/classifier.py for the rule).
    # "on_hit": score the utterances first, re-score the leave-one-out variants only of
    # those over a threshold (a second forward pass, only for abusive utterances);
    # "eager": score utterances and all their variants in one go (one pass, n+1 times the
    # compute for every utterance: lower latency for hits, much more CPU).
    attribution: Literal["on_hit", "eager"] = "on_hit"
    # A word carries a label when removing it drops the label's score by at least
    # min_drop AND either below the threshold or by at least carry_share of the score.
    carry_share: float = 0.5
    min_drop: float = 0.05
    # No single carrier (abuse said twice, or spread out): the top-k words by drop (each
    # dropping at least min_drop); no such word: the whole window.
    fallback_top_k: int = 2
    # Utterances longer than this many words are judged in overlapping windows of
    # max_words (stride max_words // 2): bounds tokens per sequence and variants per pass.
    max_words: int = 32
    # Batching across calls (moderation/classifier_batch.py): a batch closes after
    # batch_wait_ms from its oldest request or at batch_max utterances.
    batch_max: int = 8
    batch_wait_ms: float = 10.0
    # Requests waiting for a batch (not counting the one running); past it the oldest
    # waiting request is dropped ("drop_oldest": it is the stalest, most likely past its
    # playout already) or the new one refused ("refuse"); either fails with
    # ClassifierOverloaded.
    queue_max: int = 64
    overflow: Literal["drop_oldest", "refuse"] = "drop_oldest"
    # Sequences per forward pass; a batch with more (sentences + variants) runs as a few.
    forward_batch: int = 64

    def threshold_for(self, label: str) -> float:
        return float(self.thresholds.get(label, DEFAULT_THRESHOLD))

    def validate(self) -> None:
        """Raises ValueError naming the key (relative to [classifier])."""
        if not self.model:
            raise ValueError("classifier.model must name a model or a folder")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"classifier.device must be one of 'auto', 'cpu', 'cuda', not {self.device!r}")
        if self.backend not in ("local", "ray"):
            raise ValueError(f"classifier.backend must be 'local' or 'ray', not {self.backend!r}")
        if not self.tier_url.startswith(("http://", "https://")):
            raise ValueError(f"classifier.tier_url must start with http:// or https://, not {self.tier_url!r}")
        check_range("classifier.tier_timeout_s", self.tier_timeout_s, 0.05, 10.0)
        check_range("classifier.tier_retry_s", self.tier_retry_s, 0.05, 60.0)
        if self.attribution not in ("on_hit", "eager"):
            raise ValueError(f"classifier.attribution must be 'on_hit' or 'eager', not {self.attribution!r}")
        if self.overflow not in ("drop_oldest", "refuse"):
            raise ValueError(f"classifier.overflow must be 'drop_oldest' or 'refuse', not {self.overflow!r}")
        check_range("classifier.threads", self.threads, 0, 256)
        for label, value in self.thresholds.items():
            key = f'classifier.thresholds."{label}"'
            if label not in UNSMILE_LABELS:
                raise ValueError(f"{key}: unknown label (kor_unsmile's are {', '.join(UNSMILE_LABELS)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number")
            check_range(key, value, 0.0, 1.0)
        if not self.abusive_labels:
            raise ValueError(
                "classifier.abusive_labels must name at least one label "
                "(set classifier.enabled = false to turn the classifier off)"
            )
        for label in self.abusive_labels:
            if label == CLEAN_LABEL:
                raise ValueError("classifier.abusive_labels: 'clean' cannot count as abuse")
            if label not in UNSMILE_LABELS:
                raise ValueError(
                    f"classifier.abusive_labels: unknown label {label!r} "
                    f"(kor_unsmile's are {', '.join(UNSMILE_LABELS)})"
                )
        if len(set(self.abusive_labels)) != len(self.abusive_labels):
            raise ValueError("classifier.abusive_labels names a label twice")
        check_range("classifier.carry_share", self.carry_share, 0.0, 1.0)
        check_range("classifier.min_drop", self.min_drop, 0.0, 1.0)
        check_range("classifier.fallback_top_k", self.fallback_top_k, 1, 16)
        check_range("classifier.max_words", self.max_words, 2, 256)
        check_range("classifier.batch_max", self.batch_max, 1, 256)
        check_range("classifier.batch_wait_ms", self.batch_wait_ms, 0.0, 1000.0)
        check_range("classifier.queue_max", self.queue_max, 1, 100000)
        check_range("classifier.forward_batch", self.forward_batch, 1, 4096)
