"""model_store: list, resolve and pull's error paths, on folders the tests create.

Never touches the network: pull is run with HF_HUB_OFFLINE=1, or against a stand-in hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation import model_store
from moderation.model_store import ModelUnavailable
from testkit.stand_in_hub import COMMIT, StandInHub, serving


def make_model(
    folder: Path, files: tuple[str, ...] = ("model.bin", "config.json", "tokenizer.json", "vocabulary.json")
) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_bytes(b"x" * 100)
    return folder


def test_list_models_reports_size_and_completeness(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_model(models / "small")
    make_model(models / "tiny", ("model.bin", "config.json", "vocabulary.txt"))
    make_model(models / "Systran--faster-whisper-base")
    (models / "small" / model_store.MARKER).write_text(
        json.dumps({"repo_id": "Systran/faster-whisper-small", "revision": "abc123"})
    )
    make_model(models / ".cache")  # hub metadata and hidden folders are not models
    (models / "notes.txt").write_text("not a model")
    (models / "small" / ".cache").mkdir()
    (models / "small" / ".cache" / "big.lock").write_bytes(b"y" * 5000)

    found = {m.name: m for m in model_store.list_models(models)}
    assert list(found) == ["Systran--faster-whisper-base", "small", "tiny"]
    small = found["small"]
    assert small.complete and small.missing == []
    assert small.size_bytes == 400 + len((models / "small" / model_store.MARKER).read_bytes())
    assert (small.repo_id, small.revision) == ("Systran/faster-whisper-small", "abc123")
    tiny = found["tiny"]
    assert not tiny.complete and tiny.missing == ["tokenizer.json"]
    assert tiny.path == models / "tiny"


def test_list_models_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert model_store.list_models(tmp_path / "nothing-here") == []


def test_missing_files_names_the_vocabulary(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m", ("model.bin", "config.json", "tokenizer.json"))
    assert model_store.missing_files(folder) == ["vocabulary.json|vocabulary.txt"]


def test_resolve_prefers_a_folder_and_falls_back_to_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    make_model(models / "small")
    make_model(models / "Systran--faster-whisper-base")
    own = make_model(tmp_path / "elsewhere" / "my-ko-model")
    assert model_store.resolve("small", models) == str(models / "small")
    assert model_store.resolve("Systran/faster-whisper-base", models) == str(models / "Systran--faster-whisper-base")
    assert model_store.resolve("medium", models) == "medium"
    assert model_store.resolve(str(own), models) == str(own)
    monkeypatch.chdir(tmp_path)
    assert model_store.resolve("./elsewhere/my-ko-model", models) == "elsewhere/my-ko-model"
    # An explicit path that does not exist stays a path (the engine reports it missing).
    assert model_store.resolve("./gone", models) == "gone"
    assert model_store.looks_like_path("./gone") and model_store.looks_like_path("/abs/x")
    assert not model_store.looks_like_path("small") and not model_store.looks_like_path("Systran/faster-whisper-small")


def test_repo_names_come_from_faster_whisper() -> None:
    repos = model_store.known_repos()
    assert repos["small"] == "Systran/faster-whisper-small"
    assert model_store.repo_for("large-v3") == repos["large-v3"]
    assert model_store.repo_for("someone/ko-whisper-ct2") == "someone/ko-whisper-ct2"
    with pytest.raises(ModelUnavailable, match="unknown model name 'huge'"):
        model_store.repo_for("huge")
    assert model_store.folder_name("someone/ko-whisper-ct2") == "someone--ko-whisper-ct2"


def whisper_hub(**extra_files: bytes) -> StandInHub:
    files = {"model.bin": b"w" * 4096, "config.json": b"{}", "tokenizer.json": b"{}", "vocabulary.txt": b"a"}
    return StandInHub({"Systran/faster-whisper-base": {**files, **extra_files}})


@pytest.fixture
def no_offline(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return monkeypatch


def test_pull_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as info:
        model_store.pull("small", tmp_path / "models")
    message = str(info.value)
    assert "'small'" in message and "Systran/faster-whisper-small" in message
    assert "HF_HUB_OFFLINE" in message and "callguard models pull small" in message
    assert not (tmp_path / "models" / "small").exists()


def test_pull_of_an_unreachable_hub_names_the_command(tmp_path: Path, no_offline: pytest.MonkeyPatch) -> None:
    no_offline.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelUnavailable, match=r"cannot fetch speech model 'tiny'.*cannot reach.*models pull tiny"):
        model_store.pull("tiny", tmp_path / "models")


def test_pull_writes_the_folder_its_revision_and_checksums(tmp_path: Path, no_offline: pytest.MonkeyPatch) -> None:
    """The success path against the stand-in hub: files land in models/<name>, hub-only files stay out."""
    with serving(whisper_hub(**{"README.md": b"not fetched"})) as hub:
        no_offline.setenv("HF_ENDPOINT", hub.url)
        dest = model_store.pull("base", tmp_path / "models")
    assert dest == tmp_path / "models" / "base"
    assert not (dest / "README.md").exists()
    [info] = model_store.list_models(tmp_path / "models")
    assert info.complete and info.revision == COMMIT and info.repo_id == "Systran/faster-whisper-base"
    marker = model_store.read_marker(dest)
    assert set(marker["sha256"]) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert model_store.resolve("base", tmp_path / "models") == str(dest)
    assert model_store.model_version("base", dest, ["model.bin"]) == f"base@{COMMIT[:12]}"


def test_pull_of_a_non_ctranslate2_repo_says_so(tmp_path: Path, no_offline: pytest.MonkeyPatch) -> None:
    with serving(StandInHub({"openai/whisper-small": {"config.json": b"{}"}})) as hub:
        no_offline.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(ModelUnavailable, match="lacks model.bin.*CTranslate2"):
            model_store.pull("openai/whisper-small", tmp_path / "models")
    [info] = model_store.list_models(tmp_path / "models")
    assert info.name == "openai--whisper-small" and not info.complete
    assert not model_store.read_marker(info.path)  # no marker: never mistaken for a whole model
