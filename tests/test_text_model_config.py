"""[text_model] settings: defaults, the folder, and bad values naming their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.text_model_config import BUILTIN_MODEL_DIR, TextModelConfig


def test_an_empty_folder_means_the_shipped_model(tmp_path: Path) -> None:
    assert TextModelConfig().folder() == BUILTIN_MODEL_DIR
    assert TextModelConfig(model_dir=str(tmp_path)).folder() == tmp_path
    assert TextModelConfig().threshold_for("other") == 0.5
    assert TextModelConfig().threshold_for("abusive", {"abusive": 0.42}) == 0.42  # the model's calibrated one
    assert TextModelConfig(thresholds={"abusive": 0.6}).threshold_for("abusive", {"abusive": 0.42}) == 0.6


@pytest.mark.parametrize(
    "bad, key",
    [
        (TextModelConfig(labels=[]), "text_model.labels"),
        (TextModelConfig(labels=["abusive", "abusive"]), "twice"),
        (TextModelConfig(thresholds={"abusive": 1.5}), 'text_model.thresholds."abusive"'),
        (TextModelConfig(carry_share=2.0), "text_model.carry_share"),
    ],
)
def test_bad_settings_name_the_key(bad: TextModelConfig, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        bad.validate()


def test_a_relative_model_dir_is_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    from relay.config import load_config

    (tmp_path / "site.toml").write_text('[text_model]\nmodel_dir = "retrained"\n', encoding="utf-8")
    assert load_config(tmp_path / "site.toml").text_model.folder() == tmp_path / "retrained"
