"""Local store of faster-whisper models: `callguard models pull|list`, and name -> folder.

A model is named as faster-whisper names it (tiny, base, small, medium, large-v3, ...) or
by a Hugging Face repo id of a CTranslate2 Whisper (owner/name). `pull` fetches it on a
connected machine into <models_dir>/<name> (a repo id's "/" becomes "--"); the folder can
then be copied to servers that have no route to the hub. `resolve` is what the engine
uses: a folder when there is one, else the name (faster-whisper then uses its own cache
or the hub).

Imports nothing heavy at module level: the relay can catch ModelUnavailable without
loading faster-whisper.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moderation import model_fetch

# What a faster-whisper model folder needs (vocabulary.json or vocabulary.txt).
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")
# What pull fetches (faster-whisper's own download list).
ALLOW_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
# Written by pull once every file is in place: repo id, exact revision, time.
MARKER = "callguard-model.json"

# faster-whisper's size -> repo mapping, used when faster_whisper.utils is not importable.
_FALLBACK_REPOS = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}


class ModelUnavailable(RuntimeError):
    """The speech model cannot be fetched or loaded; the message says why and what to do.

    The relay keeps relaying calls, shows "moderation unavailable" and applies the delay
    line's undecided policy."""


@dataclass(frozen=True)
class ModelInfo:
    name: str  # folder name under models_dir
    path: Path
    size_bytes: int
    complete: bool  # model.bin, config.json, tokenizer.json and a vocabulary file present
    missing: list[str] = field(default_factory=list)
    repo_id: str | None = None  # from pull's marker, when pulled by callguard
    revision: str | None = None


def known_repos() -> dict[str, str]:
    """faster-whisper's model names and the hub repos they come from."""
    try:
        from faster_whisper.utils import _MODELS

        return dict(_MODELS)
    except Exception:  # noqa: BLE001 - not installed, or the private name moved
        return dict(_FALLBACK_REPOS)


def repo_for(name: str) -> str:
    """Hub repo id for a faster-whisper size name or a repo id (owner/name)."""
    if "/" in name:
        return name
    repos = known_repos()
    if name not in repos:
        raise ModelUnavailable(
            f"unknown model name {name!r}: use one of {', '.join(repos)} or a hub repo id (owner/name)"
        )
    return repos[name]


def folder_name(name: str) -> str:
    """The folder under models_dir that holds model `name`."""
    return name.strip("/").replace("/", "--")


def looks_like_path(model: str) -> bool:
    """True for an explicit filesystem path (absolute, ./, ../, ~), not a name or repo id."""
    return os.path.isabs(model) or model.startswith(("./", "../", "~", ".\\", "..\\")) or model in (".", "..")


def missing_files(path: str | os.PathLike[str]) -> list[str]:
    """Files a faster-whisper model folder lacks (empty when it looks complete)."""
    folder = Path(path)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        missing.append("vocabulary.json|vocabulary.txt")
    return missing


def read_marker(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def resolve(model: str, models_dir: str | os.PathLike[str]) -> str:
    """Local folder for `model` when there is one, else `model` itself (a name or repo id).

    Order: `model` as a path (absolute or relative to the working directory), then
    <models_dir>/<folder_name(model)>. A path-like `model` that does not exist is
    returned unchanged; the engine reports it as a missing folder."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if looks_like_path(model):
        return str(path)
    local = Path(models_dir).expanduser() / folder_name(model)
    if local.is_dir():
        return str(local)
    return model


def local_folder(
    model: str, models_dir: str | os.PathLike[str], missing: Callable[[str], list[str]], complete: str
) -> str | None:
    """The model's folder on this machine (`model` as a path, or a name under models_dir),
    or None when it has none here (a hub name: the caller looks in the cache).

    A folder lacking files (by `missing`) or a path that does not exist is a
    ModelUnavailable naming what is wrong; `complete` says what a whole folder holds."""
    resolved = resolve(model, models_dir)
    if os.path.isdir(resolved):
        lacking = missing(resolved)
        if lacking:
            raise ModelUnavailable(f"model folder {resolved} is incomplete: missing {', '.join(lacking)} ({complete})")
        return resolved
    if looks_like_path(model):
        raise ModelUnavailable(f"model folder {resolved} does not exist")
    return None


def list_models(models_dir: str | os.PathLike[str]) -> list[ModelInfo]:
    """Model folders under models_dir (hidden and *.partial folders left out), by name."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        size = 0
        for dirpath, dirnames, filenames in os.walk(entry):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # skip hub metadata (.cache)
            for filename in filenames:
                try:
                    size += (Path(dirpath) / filename).stat().st_size
                except OSError:
                    pass
        missing = missing_files(entry)
        marker = read_marker(entry)
        found.append(
            ModelInfo(entry.name, entry, size, not missing, missing, marker.get("repo_id"), marker.get("revision"))
        )
    return found


@dataclass(frozen=True)
class ModelKind:
    """What a kind of model is fetched as: its hub files, and what a whole folder holds."""

    what: str  # "speech model", "classifier": for messages
    patterns: Sequence[str]
    missing: Callable[[str], list[str]]
    repo_for: Callable[[str], str]


WHISPER = ModelKind("speech model", ALLOW_PATTERNS, missing_files, repo_for)


def pull(
    name: str,
    models_dir: str | os.PathLike[str],
    revision: str | None = None,
    kind: ModelKind = WHISPER,
    progress: model_fetch.Progress | None = None,
) -> Path:
    """Fetches model `name` from the hub into <models_dir>/<name>; returns the folder.

    Resumable (re-running continues where a cut-off fetch stopped) and checked against
    the hub's sha256 for every large file; the marker file, written last, records the
    commit and the checksums. Raises ModelUnavailable with the reason on failure."""
    repo_id = kind.repo_for(name)
    dest = Path(models_dir).expanduser() / folder_name(name)
    hint = f"pull it on a machine that reaches the hub (callguard models pull {name}) and copy the folder to {dest}"
    try:
        snap = model_fetch.snapshot(repo_id, revision, kind.patterns)
        (dest / MARKER).unlink(missing_ok=True)
        digests = model_fetch.fetch(snap, dest, progress)
    except (model_fetch.FetchError, OSError) as exc:
        raise ModelUnavailable(f"cannot fetch {kind.what} {name!r} ({repo_id}): {exc}; {hint}") from exc
    missing = kind.missing(str(dest))
    if missing:
        raise ModelUnavailable(
            f"{kind.what} {name!r} ({repo_id}) was fetched into {dest} but lacks {', '.join(missing)}"
            + (": is it a CTranslate2 (faster-whisper) model?" if kind is WHISPER else "")
        )
    marker = {
        "name": name,
        "repo_id": repo_id,
        "revision": snap.revision,
        "pulled_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "sha256": digests,
    }
    (dest / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return dest


def plan(name: str, revision: str | None = None, kind: ModelKind = WHISPER) -> model_fetch.Snapshot:
    """The hub files pull would fetch for `name` (one commit), before any byte of them."""
    try:
        return model_fetch.snapshot(kind.repo_for(name), revision, kind.patterns)
    except model_fetch.FetchError as exc:
        raise ModelUnavailable(f"cannot fetch {kind.what} {name!r} ({kind.repo_for(name)}): {exc}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def model_version(model: str, path: str | os.PathLike[str], weight_files: Sequence[str]) -> str:
    """`model` as configured + the hub revision when known, else a hash of its weights.

    Recorded with every decision, so QA can tell which model said what.
    """
    folder = Path(path)
    revision = read_marker(folder).get("revision")
    if not revision and folder.parent.name == "snapshots":  # Hugging Face cache layout
        revision = folder.name
    if revision:
        return f"{model}@{str(revision)[:12]}"
    digest = hashlib.sha256()
    for name in weight_files:
        file = folder / name
        if file.is_file():
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            break
    return f"{model}#sha256:{digest.hexdigest()[:12]}"
