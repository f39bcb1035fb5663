"""Fetching one model snapshot from a Hugging Face-style hub: resumable, checksummed, with progress.

huggingface_hub (2.x) downloads each file into a process-unique temporary file, so a
fetch cut off by a dropped connection or a stopped server starts again from zero: 145 MB
for Whisper base, 3 GB for large-v3. This fetch keeps what arrived in
<dest>/.partial/<file> and asks only for the rest (HTTP Range), checks every large file
against the sha256 the hub publishes for it, and moves a file into place only once it is
whole. Standard library only; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured as
huggingface_hub honours them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEFAULT_ENDPOINT = "https://huggingface.co"
PARTIAL_DIR = ".partial"
# A stalled connection is an error after this long without a byte; the next run resumes.
READ_TIMEOUT_S = 30.0
_BLOCK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes present, bytes in all)


class FetchError(RuntimeError):
    """The snapshot could not be fetched; the message says why (what arrived is kept)."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int | None
    sha256: str | None  # published for large (LFS) files only


@dataclass(frozen=True)
class Snapshot:
    repo_id: str
    revision: str  # the commit every file is read from
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(file.size or 0 for file in self.files)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def snapshot(repo_id: str, revision: str | None, patterns: Sequence[str]) -> Snapshot:
    """The files of repo_id at revision (default: newest) that match patterns, pinned to one commit."""
    rev = urllib.parse.quote(revision or "main", safe="")
    url = f"{endpoint()}/api/models/{repo_id}/revision/{rev}?blobs=true"
    with _open(url) as response:
        try:
            info = json.loads(response.read())
        except ValueError as exc:
            raise FetchError(f"the hub's answer for {repo_id} is not JSON") from exc
    sha = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(sha, str) or not sha:
        raise FetchError(f"the hub names no commit for {repo_id}@{revision or 'main'}")
    files = []
    for sibling in info.get("siblings") or []:
        name = sibling.get("rfilename", "")
        if not _safe_name(name) or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        lfs = sibling.get("lfs") or {}
        size = lfs.get("size", sibling.get("size"))
        files.append(RemoteFile(name, int(size) if size is not None else None, lfs.get("sha256")))
    return Snapshot(repo_id, sha, tuple(sorted(files, key=lambda f: f.name)))


def fetch(snap: Snapshot, dest: Path, progress: Progress | None = None) -> dict[str, str]:
    """Brings every file of snap into dest; returns {file: sha256} of what is there.

    A file already in dest with the published size (and sha256) is kept; a part in
    dest/.partial is resumed. A checksum mismatch discards the part and is an error."""
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / PARTIAL_DIR
    total = snap.size
    done = sum(_present(dest, partial, f) for f in snap.files)
    digests: dict[str, str] = {}
    for file in snap.files:
        target = dest / file.name
        kept = _digest_if_whole(target, file)
        if kept is not None:
            digests[file.name] = kept
            continue
        part = partial / file.name
        part.parent.mkdir(parents=True, exist_ok=True)
        before = part.stat().st_size if part.exists() else 0
        if file.size is not None and before > file.size:
            part.unlink()
            done -= before
            before = 0

        def counted(n: int, base: int = done) -> None:
            if progress is not None:
                progress(base + n, total)

        got = _download(
            f"{endpoint()}/{snap.repo_id}/resolve/{snap.revision}/{urllib.parse.quote(file.name)}", part, counted
        )
        done += got
        digest = _sha256(part)
        if file.size is not None and part.stat().st_size != file.size:
            raise FetchError(f"{file.name}: got {part.stat().st_size} of {file.size} bytes; run the same command again")
        if file.sha256 and digest != file.sha256:
            part.unlink()
            raise FetchError(
                f"{file.name}: sha256 {digest[:12]}… does not match the hub's {file.sha256[:12]}…; "
                "the part was discarded, run the same command again"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        digests[file.name] = digest
    shutil.rmtree(partial, ignore_errors=True)
    if progress is not None:
        progress(total, total)
    return digests


def bytes_present(dest: Path, snap: Snapshot) -> int:
    """How much of snap is in dest now (whole files and parts): the progress a server shows."""
    return sum(_present(dest, dest / PARTIAL_DIR, f) for f in snap.files)


class ConsoleProgress:
    """A progress line on stderr: redrawn in place on a terminal, every 10 % in a log."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_step = -1
        self._last_draw = 0.0

    def __call__(self, present: int, total: int) -> None:
        share = present / total if total else 1.0
        step = int(share * 10)
        now = time.monotonic()
        if self.tty and (now - self._last_draw >= 0.2 or present >= total):
            self._last_draw = now
            end = "\n" if present >= total else ""
            self.stream.write(f"\r{self._line(present, total, share)}{end}")
        elif not self.tty and step != self._last_step:
            self.stream.write(self._line(present, total, share) + "\n")
        self._last_step = step
        self.stream.flush()

    def _line(self, present: int, total: int, share: float) -> str:
        return f"{self.label}: {present / 1e6:.1f} / {total / 1e6:.1f} MB ({share:.0%})"


def _download(url: str, part: Path, progress: Callable[[int], None]) -> int:
    """Appends the rest of url to part; returns the bytes this call received."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    received = 0
    try:
        with _open(url, headers) as response:
            if start and response.status != 206:  # the server ignored Range: start over
                start = 0
            with open(part, "ab" if start else "wb") as out:
                progress(start)
                while block := response.read(_BLOCK):
                    out.write(block)
                    received += len(block)
                    progress(start + received)
    except OSError as exc:  # URLError and socket timeouts included
        raise FetchError(
            f"{part.name}: connection lost after {start + received} bytes ({exc}); run the same command again to resume"
        ) from exc
    return received


def _open(url: str, headers: dict[str, str] | None = None) -> Any:
    if offline():
        raise FetchError("offline mode is on (HF_HUB_OFFLINE)")
    request = urllib.request.Request(url, headers={"User-Agent": "callguard", **(headers or {})})
    token = os.environ.get("HF_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(request, timeout=READ_TIMEOUT_S)  # noqa: S310 - hub URL from config
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # Range past the end: the part is already whole
            raise FetchError(f"{url}: the server has no more bytes past what arrived (HTTP 416)") from exc
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except OSError as exc:
        raise FetchError(f"cannot reach {endpoint()} ({getattr(exc, 'reason', exc)})") from exc


def _present(dest: Path, partial: Path, file: RemoteFile) -> int:
    for path in (dest / file.name, partial / file.name):
        if path.is_file():
            return path.stat().st_size
    return 0


def _digest_if_whole(path: Path, file: RemoteFile) -> str | None:
    """sha256 of a file already in place when it is the published one, else None."""
    if not path.is_file() or (file.size is not None and path.stat().st_size != file.size):
        return None
    digest = _sha256(path)
    return digest if not file.sha256 or digest == file.sha256 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_name(name: str) -> bool:
    """A repo file name that stays inside dest (no absolute paths, no '..')."""
    parts = Path(name).parts
    return bool(name) and not Path(name).is_absolute() and ".." not in parts and not name.startswith(PARTIAL_DIR)
