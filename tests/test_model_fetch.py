"""model_fetch against the stand-in hub on loopback: resume, checksum, progress, offline."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from moderation import model_fetch
from moderation.model_fetch import FetchError
from testkit.stand_in_hub import COMMIT, StandInHub, serving

REPO = "owner/model"
PATTERNS = ["*.json", "model.bin"]


def make_hub() -> StandInHub:
    weights = bytes(range(256)) * 400  # 100 KiB: an "LFS" file with a published sha256
    return StandInHub({REPO: {"model.bin": weights, "config.json": b"{}", "notes.md": b"left out"}})


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with serving(make_hub()) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


def test_snapshot_pins_one_commit_and_keeps_only_the_patterns(hub: StandInHub) -> None:
    snap = model_fetch.snapshot(REPO, None, PATTERNS)
    assert snap.revision == COMMIT
    assert [f.name for f in snap.files] == ["config.json", "model.bin"]
    weights = next(f for f in snap.files if f.name == "model.bin")
    assert weights.sha256 == hashlib.sha256(hub.repos[REPO]["model.bin"]).hexdigest()
    assert snap.size == 2 + 102400


def test_fetch_brings_every_file_and_reports_progress_to_the_total(hub: StandInHub, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    snap = model_fetch.snapshot(REPO, None, PATTERNS)
    digests = model_fetch.fetch(snap, tmp_path / "m", lambda present, total: seen.append((present, total)))
    assert (tmp_path / "m" / "model.bin").read_bytes() == hub.repos[REPO]["model.bin"]
    assert not (tmp_path / "m" / "notes.md").exists() and not (tmp_path / "m" / ".partial").exists()
    assert digests["model.bin"] == snap.files[1].sha256
    assert seen[-1] == (snap.size, snap.size)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)  # never goes backwards


def test_a_cut_off_fetch_resumes_where_it_stopped(hub: StandInHub, tmp_path: Path) -> None:
    hub.cut_after["model.bin"] = 40000
    snap = model_fetch.snapshot(REPO, None, PATTERNS)
    with pytest.raises(FetchError, match="run the same command again"):
        model_fetch.fetch(snap, tmp_path / "m")
    assert model_fetch.bytes_present(tmp_path / "m", snap) >= 40000
    model_fetch.fetch(snap, tmp_path / "m")
    resumed = [r for r in hub.requests if r.path.endswith("/model.bin")][-1]
    assert resumed.range == "bytes=40000-" and resumed.sent == 102400 - 40000
    assert (tmp_path / "m" / "model.bin").read_bytes() == hub.repos[REPO]["model.bin"]


def test_a_checksum_mismatch_discards_the_file(hub: StandInHub, tmp_path: Path) -> None:
    hub.corrupt.add("model.bin")
    snap = model_fetch.snapshot(REPO, None, PATTERNS)
    with pytest.raises(FetchError, match="sha256 .* does not match"):
        model_fetch.fetch(snap, tmp_path / "m")
    assert not (tmp_path / "m" / "model.bin").exists()
    assert model_fetch.bytes_present(tmp_path / "m", snap) < 102400  # the bad part is gone


def test_files_already_in_place_are_not_fetched_again(hub: StandInHub, tmp_path: Path) -> None:
    snap = model_fetch.snapshot(REPO, None, PATTERNS)
    model_fetch.fetch(snap, tmp_path / "m")
    before = len(hub.requests)
    model_fetch.fetch(snap, tmp_path / "m")
    assert len(hub.requests) == before


def test_unknown_repo_and_unreachable_hub_are_fetch_errors(hub: StandInHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        model_fetch.snapshot("nobody/nothing", None, PATTERNS)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(FetchError, match="cannot reach http://127.0.0.1:9"):
        model_fetch.snapshot(REPO, None, PATTERNS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FetchError, match="offline mode"):
        model_fetch.snapshot(REPO, None, PATTERNS)


def test_console_progress_writes_a_line_per_tenth_in_a_log() -> None:
    out = io.StringIO()
    bar = model_fetch.ConsoleProgress("fetching base", out)
    for present in range(0, 1001, 50):
        bar(present * 1000, 1_000_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "fetching base: 0.0 / 1.0 MB (0%)" and lines[-1].endswith("(100%)")
    assert len(lines) == 11
