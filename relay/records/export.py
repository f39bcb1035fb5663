"""`callguard calls export CALL_ID`: one call as a zip of evidence with a SHA-256 manifest.

The zip holds the recordings exactly as logged (the Opus packets the browsers sent and
the relay played: never decoded or re-encoded), the transcript, every decision with its
reasons, the events, the config and versions in force, QA marks and replays, a README
and SHA256SUMS over all of them. It is written beside the destination under a temporary
name (mode 0600: recordings are personal data) and renamed into place when complete, so
a reader never finds half-written evidence. Entries carry the call's creation time as
their date, so exporting an unchanged call twice gives the same bytes and the same hash.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from relay.config import Config
from relay.records.access_log import cli_user, record_access
from relay.records.database import open_call_log
from relay.records.logged_call import CallHistory, Recording, UnknownCall, load_call, recording_file
from relay.records.s3_recordings import S3Recordings, recording_store

CHUNK = 1 << 16
MANIFEST = "SHA256SUMS"
# Owner read/write for the extracted files too (unzip applies the Unix mode it finds).
_ENTRY_MODE = 0o100600 << 16
# What a case file needs of the config: the settings that decided what the counselor heard
# (the delay, speech recognition, the checks and how they combine, the policy, the
# escalation that warned the customer). The server's own side (host and
# port, data folder, TLS files, sign-in cost, ICE servers and interfaces, retention) says
# nothing about the call and would tell every reader of the evidence about the server.
CASE_SECTIONS = ("delay", "stt", "keywords", "text_model", "classifier", "checks", "policy", "escalation")
# Within them: where the server keeps things, and how much work it takes on.
_SERVER_KEYS = frozenset(
    {"models_dir", "lists_dir", "device", "workers", "threads", "batch_max", "batch_wait_ms", "queue_max"}
    | {"forward_batch", "reload_interval_s", "tier_url", "tier_max_inflight", "tier_timeout_s", "tier_retry_s"}
)
# Settings naming a model or a file: kept by name, never by where it lies.
_FILE_KEYS = frozenset({"model", "model_dir", "prompt"})
# A file system path inside free text (an error's detail): "/srv/x/models", "./m", "~/m".
_PATH = re.compile(r"(?<![\w.@-])(?:~|\.{1,2})?/[^\s'\",;:)\]]+")

README = """\
Call {call_id}: evidence exported from callguard.

Files
  audio/customer.opus   the customer's voice as their browser sent it (Ogg/Opus)
  audio/delivered.opus  what the counselor heard, moderation mutes included
  audio/counselor.opus  the counselor's voice as forwarded to the customer
  transcript.tsv        the confirmed words: start, end (call media seconds), text
  transcript.json       the same words with the recogniser's probability
  decisions.json        every mute decision: the span, the words, each hit with its
                        source, category, score, threshold and list/model version,
                        when it was decided, how late, and when it was lifted if it was
  events.json           the call's events (peers, mutes and lifts, statistics, errors)
  call.json             the call (counselor, times, end reason, delay), the moderation
                        settings and versions in force (delay, speech recognition,
                        keyword lists, text model, classifier, how they combine,
                        policy, escalation), and where each recording
                        sits: media_s = call media time of the file's first sample
                        (negative for a side that joined before the customer's first
                        audio), started_at = its Unix time, sync = [file seconds, media
                        seconds] points from which the file's media time runs anew
                        (playout re-anchored: the customer reconnected)
  marks.json            QA marks (false positives, missed abuse)
  replays.json          moderation re-runs of this call under other configs
  SHA256SUMS            the SHA-256 of every other file

Times: "media" times are seconds of customer audio since the call's first frame; all
others are Unix time (seconds since 1970-01-01 UTC).
{missing}
Verify: in the extracted folder run `sha256sum -c SHA256SUMS` (macOS: `shasum -a 256 -c
SHA256SUMS`); every line must say OK. The SHA-256 of the zip itself was printed when it
was exported and is kept in the server's access log.
"""


class ExportedFile(NamedTuple):
    name: str  # path inside the zip
    size: int
    sha256: str


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    sha256: str  # of the zip file
    files: list[ExportedFile]  # every entry but SHA256SUMS itself, in zip order


def export_call(
    db: sqlite3.Connection,
    data_dir: str | Path,
    call_id: str,
    destination: Path,
    store: S3Recordings | None = None,
) -> ExportSummary:
    """Writes the call's evidence zip to `destination`; raises UnknownCall. A recording no
    longer on the local disk is read from `store` (recordings.backend = "s3").

    Synchronous file work, for a worker thread. It only reads, in plain statements (no
    transaction), so it may share a connection opened with check_same_thread=False.
    """
    record = load_call(db, data_dir, call_id)
    if record is None:
        raise UnknownCall(call_id)
    destination = Path(destination)
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    tmp = Path(tmp_name)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w+b") as out:
            files = _write_zip(out, record, Path(data_dir), store, destination.parent)
            out.flush()
            os.fsync(out.fileno())
            out.seek(0)
            digest = _sha256(out)
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportSummary(destination, digest, files)


def _write_zip(
    out: IO[bytes], record: CallHistory, data_dir: Path, store: S3Recordings | None, scratch: Path
) -> list[ExportedFile]:
    date = _zip_date(record.summary.created_at)
    files: list[ExportedFile] = []
    audio: dict[str, ExportedFile] = {}
    with zipfile.ZipFile(out, "w") as zf:

        def add_text(name: str, text: str) -> None:
            data = text.encode("utf-8")
            files.append(ExportedFile(name, len(data), hashlib.sha256(data).hexdigest()))
            zf.writestr(_entry(name, date, zipfile.ZIP_DEFLATED), data)

        for rec in record.recordings:
            with _recording_at(data_dir, rec, store, scratch) as source:
                if source is not None:
                    # Opus does not compress: stored, byte for byte as logged.
                    audio[rec.stream] = _copy_into(
                        zf, _entry(f"audio/{rec.stream}{Path(rec.path).suffix}", date, zipfile.ZIP_STORED), source
                    )
                    files.append(audio[rec.stream])
        missing = [r.stream for r in record.recordings if r.stream not in audio]
        add_text("transcript.tsv", _transcript_tsv(record))
        add_text("transcript.json", _json([dataclasses.asdict(w) for w in record.words]))
        add_text(
            "decisions.json",
            _json(
                {
                    "call_id": record.summary.call_id,
                    "versions": case_versions(record.versions),
                    "decisions": [dataclasses.asdict(d) for d in record.decisions],
                }
            ),
        )
        add_text("events.json", _json([_scrubbed(dataclasses.asdict(e)) for e in record.events]))
        add_text("call.json", _json(_call_json(record, audio)))
        add_text("marks.json", _json([dataclasses.asdict(m) for m in record.marks]))
        add_text(
            "replays.json",
            _json(
                [
                    {**dataclasses.asdict(r), "config": case_settings(r.config), "versions": case_versions(r.versions)}
                    for r in record.replays
                ]
            ),
        )
        add_text(
            "README.txt",
            README.format(
                call_id=record.summary.call_id,
                missing=f"\nMissing: the {', '.join(missing)} recording file(s) were not on disk at export.\n"
                if missing
                else "",
            ),
        )
        zf.writestr(_entry(MANIFEST, date, zipfile.ZIP_DEFLATED), "".join(f"{f.sha256}  {f.name}\n" for f in files))
    return files


@contextlib.contextmanager
def _recording_at(data_dir: Path, rec: Recording, store: S3Recordings | None, scratch: Path) -> Iterator[Path | None]:
    """The recording as a local file: its own, or a copy from the store, removed after."""
    source = recording_file(data_dir, rec)
    if source is not None or store is None:
        yield source
        return
    fd, name = tempfile.mkstemp(dir=scratch, prefix=".recording.", suffix=".part")
    os.close(fd)
    copy = Path(name)
    try:
        yield copy if store.download(rec.path, copy) else None
    finally:
        copy.unlink(missing_ok=True)


def _copy_into(zf: zipfile.ZipFile, entry: zipfile.ZipInfo, source: Path) -> ExportedFile:
    """Streams `source` into the zip, hashing the very bytes written (a file may still grow)."""
    sha, size = hashlib.sha256(), 0
    with open(source, "rb") as src, zf.open(entry, "w") as dst:
        while chunk := src.read(CHUNK):
            sha.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return ExportedFile(entry.filename, size, sha.hexdigest())


def _call_json(record: CallHistory, audio: dict[str, ExportedFile]) -> dict[str, Any]:
    s = record.summary
    return {
        "call_id": s.call_id,
        "summary": dataclasses.asdict(s),
        "created_utc": _utc(s.created_at),
        "ended_utc": _utc(s.ended_at) if s.ended_at is not None else None,  # None: still open when exported
        "recordings": [
            {
                **{k: v for k, v in dataclasses.asdict(r).items() if k != "path"},  # the server's folder layout
                "file": audio[r.stream].name if r.stream in audio else None,
            }
            for r in record.recordings
        ],
        "config": case_settings(record.config),
        "versions": case_versions(record.versions),
    }


def case_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The moderation settings of a config snapshot, without the server's own side."""
    out: dict[str, Any] = {}
    for name in CASE_SECTIONS:
        section = config.get(name)
        if isinstance(section, dict):
            out[name] = {
                k: (_model_name(v) if k in _FILE_KEYS else _scrubbed(v))
                for k, v in section.items()
                if k not in _SERVER_KEYS
            }
    return out


def case_versions(versions: dict[str, Any]) -> dict[str, Any]:
    """The checks' versions and states; paths in their details (a model that failed to load) left out."""
    scrubbed: dict[str, Any] = _scrubbed(versions)
    return scrubbed


def _model_name(value: Any) -> Any:
    # A hub name ("smilegate-ai/kor_unsmile") or a name under models_dir stays; a local
    # folder is named by its last part only.
    if isinstance(value, str) and (value.startswith(("/", ".", "~")) or value.count("/") > 1):
        return Path(value).name
    return value


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return _PATH.sub("<path>", value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def _transcript_tsv(record: CallHistory) -> str:
    lines = ["start\tend\ttext"]
    lines += [f"{w.start:.3f}\t{w.end:.3f}\t{' '.join(w.text.split())}" for w in record.words]
    return "\n".join(lines) + "\n"


def _entry(name: str, date: tuple[int, int, int, int, int, int], compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date)
    info.compress_type = compression
    info.external_attr = _ENTRY_MODE
    return info


def _zip_date(t: float) -> tuple[int, int, int, int, int, int]:
    d = datetime.fromtimestamp(max(t, 315532800.0), UTC)  # zip dates start in 1980
    return d.year, d.month, d.day, d.hour, d.minute, d.second


def _sha256(f: IO[bytes]) -> str:
    sha = hashlib.sha256()
    while chunk := f.read(CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


# ---------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("call_id", metavar="CALL_ID")
    parser.add_argument("--out", type=Path, help="the zip to write (default: CALL_ID.zip in the working directory)")


def main(args: argparse.Namespace, config: Config) -> int:
    data_dir = Path(args.data_dir or config.server.data_dir)
    out = args.out or Path(f"{args.call_id}.zip")
    db = open_call_log(data_dir, config.database.url)  # relay/cli.py reports a missing one
    try:
        try:
            summary = export_call(db, data_dir, args.call_id, out, recording_store(config.recordings))
        except UnknownCall as exc:
            print(f"callguard: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"callguard: cannot write {out}: {exc}", file=sys.stderr)
            return 1
        try:
            record_access(
                db,
                *cli_user(),
                args.call_id,
                "export",
                {"sha256": summary.sha256, "path": str(summary.path.resolve()), "via": "cli"},
            )
        except sqlite3.Error as exc:
            # An access that cannot be logged is refused: no unlogged copy stays behind.
            summary.path.unlink(missing_ok=True)
            print(f"callguard: export not logged, zip removed: {exc}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(summary.path)
    print(f"SHA-256 {summary.sha256}")
    return 0
