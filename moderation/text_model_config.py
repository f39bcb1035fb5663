"""Settings of the shipped text model ([text_model] in the server's config).

Field types stay within what relay/config.py builds from TOML; validate() raises
ValueError naming the key relative to [text_model].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from moderation.config_range import check_range

# The model that ships with the package (moderation/text_model_data).
BUILTIN_MODEL_DIR = Path(__file__).resolve().parent / "text_model_data"
# The shipped model's labels: "abusive" (any abuse or hate the corpora mark) and
# "악플/욕설" (insults and profanity, UnSmile's name for them).
TEXT_MODEL_LABELS: tuple[str, ...] = ("abusive", "악플/욕설")
DEFAULT_TEXT_THRESHOLD = 0.5


@dataclass(frozen=True)
class TextModelConfig:
    enabled: bool = True
    # A folder written by `callguard models train-text --out DIR`; empty: the model shipped
    # in the package. A relative path in a config file is taken from that file's folder.
    model_dir: str = ""
    # The labels whose hits mute (each must be one of the model's labels).
    labels: list[str] = field(default_factory=lambda: ["abusive"])
    # Per-label probability a label must reach. A label not named here uses the threshold
    # the model was calibrated with (model.json: chosen by train-text on a validation split
    # of its own training corpora), else 0.5. TOML: thresholds = { abusive = 0.6 }
    thresholds: dict[str, float] = field(default_factory=dict)
    # Word attribution: a word carries a label when its share of the logit is at least
    # carry_share of the largest word's and at least min_contribution (logit units). 0.8:
    # the abusive word, not its neighbours (see relay/default.toml for the figures).
    carry_share: float = 0.8
    min_contribution: float = 0.1

    def threshold_for(self, label: str, calibrated: Mapping[str, float] | None = None) -> float:
        """The threshold in force for `label`: this config's, else the model's calibrated one."""
        if label in self.thresholds:
            return float(self.thresholds[label])
        return float((calibrated or {}).get(label, DEFAULT_TEXT_THRESHOLD))

    def folder(self) -> Path:
        return Path(self.model_dir).expanduser() if self.model_dir.strip() else BUILTIN_MODEL_DIR

    def validate(self) -> None:
        if not self.labels:
            raise ValueError(
                "text_model.labels must name at least one label (set text_model.enabled = false to turn it off)"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("text_model.labels names a label twice")
        for label, value in self.thresholds.items():
            key = f'text_model.thresholds."{label}"'
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number")
            check_range(key, value, 0.0, 1.0)
        check_range("text_model.carry_share", self.carry_share, 0.0, 1.0)
        check_range("text_model.min_contribution", self.min_contribution, 0.0, 10.0)
