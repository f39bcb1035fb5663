"""Evidence export: a zip that `sha256sum -c` verifies, audio as logged, decisions and words as logged."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from relay import cli
from relay.records.access_log import accesses
from relay.records.call_log import call_dir
from relay.records.database import database_file, open_database
from relay.records.export import MANIFEST, export_call
from relay.records.logged_call import STREAMS, UnknownCall, load_call
from tests.logged_calls import ABUSIVE_CALL, LoggedCall, write_logged_call

CALL_ID = "c_evidence"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(database_file(data_dir))
    write_logged_call(conn, data_dir, LoggedCall(CALL_ID, "anna", time.time() - 3600, ABUSIVE_CALL))
    # A lifted span, a QA mark and a replay, so every file has something in it.
    conn.execute("UPDATE call_decisions SET lifted_at = ? WHERE call_id = ? AND span_id = 1", (time.time(), CALL_ID))
    conn.execute(
        "INSERT INTO qa_marks (call_id, kind, start, end, text, by_user, at) "
        "VALUES (?, 'missed_abuse', 2.4, 2.9, '환불', 'quinn', ?)",
        (CALL_ID, time.time()),
    )
    conn.execute(
        "INSERT INTO call_replays (call_id, at, by_user, mode, config, versions, words, spans, diff) "
        "VALUES (?, ?, 'quinn', 'transcript', '{}', '{}', '[]', '[]', '{\"added\": []}')",
        (CALL_ID, time.time()),
    )
    yield conn
    conn.close()


def extract(zip_path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    return folder


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / 48000


def test_export_verifies_with_sha256sum_and_holds_the_call_as_logged(
    db: sqlite3.Connection, data_dir: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "out" / "evidence.zip"
    destination.parent.mkdir()
    summary = export_call(db, data_dir, CALL_ID, destination)

    assert summary.path == destination
    assert stat.S_IMODE(destination.stat().st_mode) == 0o600
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left beside it
    assert summary.sha256 == hashlib.sha256(destination.read_bytes()).hexdigest()

    folder = extract(destination, tmp_path / "x")
    check = subprocess.run(["sha256sum", "-c", MANIFEST], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with zipfile.ZipFile(destination) as zf:
        names = zf.namelist()
    manifest = [line.split("  ", 1) for line in (folder / MANIFEST).read_text().splitlines()]
    assert sorted(name for _, name in manifest) == sorted(n for n in names if n != MANIFEST)
    assert [(f.name, f.sha256) for f in summary.files] == [(name, digest) for digest, name in manifest]
    assert check.stdout.count(": OK") == len(manifest)
    for name in (
        "transcript.tsv",
        "transcript.json",
        "decisions.json",
        "events.json",
        "call.json",
        "marks.json",
        "replays.json",
        "README.txt",
    ):
        assert name in names

    record = load_call(db, data_dir, CALL_ID)
    assert record is not None
    for rec in record.recordings:
        exported = folder / "audio" / f"{rec.stream}.opus"
        assert exported.read_bytes() == (data_dir / rec.path).read_bytes()  # as logged, not re-encoded
        assert rec.duration_s is not None and abs(decoded_seconds(exported) - rec.duration_s) <= 0.03

    decisions = json.loads((folder / "decisions.json").read_text())
    assert decisions["versions"] == record.versions
    assert [(d["span_id"], d["start"], d["end"], d["words"], d["lifted_at"]) for d in decisions["decisions"]] == [
        (d.span_id, d.start, d.end, d.words, d.lifted_at) for d in record.decisions
    ]
    assert decisions["decisions"][0]["lifted_at"] is not None
    hit = decisions["decisions"][0]["hits"][0]
    assert {"source", "category", "score", "threshold", "version"} <= hit.keys()
    assert {w for d in decisions["decisions"] for w in d["words"]} == {"씨발", "멍청이", "개새끼"}

    tsv = (folder / "transcript.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext"
    assert [line.split("\t") for line in tsv[1:]] == [[f"{s:.3f}", f"{e:.3f}", t] for t, s, e in ABUSIVE_CALL]

    call = json.loads((folder / "call.json").read_text())
    assert call["summary"]["call_id"] == CALL_ID and call["config"]["delay"] == record.config["delay"]
    assert {r["stream"]: r["file"] for r in call["recordings"]} == {s: f"audio/{s}.opus" for s in STREAMS}
    assert all(r["media_s"] is not None and r["duration_s"] for r in call["recordings"])
    assert [m["text"] for m in json.loads((folder / "marks.json").read_text())] == ["환불"]
    assert [r["diff"] for r in json.loads((folder / "replays.json").read_text())] == [{"added": []}]
    assert any(e["kind"] == "summary" for e in json.loads((folder / "events.json").read_text()))

    # Unchanged call, same bytes: anyone with access can re-export and compare hashes.
    again = export_call(db, data_dir, CALL_ID, tmp_path / "again.zip")
    assert again.sha256 == summary.sha256


def test_a_missing_recording_is_said_and_the_rest_exported(
    db: sqlite3.Connection, data_dir: Path, tmp_path: Path
) -> None:
    (call_dir(data_dir, CALL_ID) / "delivered.opus").unlink()
    folder = extract(export_call(db, data_dir, CALL_ID, tmp_path / "e.zip").path, tmp_path / "x")
    assert sorted(p.name for p in (folder / "audio").iterdir()) == ["counselor.opus", "customer.opus"]
    assert "delivered recording" in (folder / "README.txt").read_text()
    call = json.loads((folder / "call.json").read_text())
    assert {r["stream"]: r["file"] for r in call["recordings"]}["delivered"] is None
    assert subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=folder).returncode == 0


def test_cli_export_logs_the_access_and_prints_the_hash(
    db: sqlite3.Connection,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["calls", "export", CALL_ID, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    zip_path = tmp_path / f"{CALL_ID}.zip"
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert out == [f"{CALL_ID}.zip", f"SHA-256 {digest}"]
    assert stat.S_IMODE(zip_path.stat().st_mode) == 0o600
    access = accesses(db, CALL_ID)[0]
    assert (access.action, access.role) == ("export", "cli") and access.user_name.startswith("cli:")
    assert access.detail["sha256"] == digest and access.detail["path"] == str(zip_path.resolve())

    assert cli.main(["calls", "export", CALL_ID, "--data-dir", str(data_dir), "--out", "sub/e.zip"]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_unknown_call_exits_2_and_writes_nothing(
    db: sqlite3.Connection,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownCall):
        export_call(db, data_dir, "c_nope", tmp_path / "nope.zip")
    assert cli.main(["calls", "export", "c_nope", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c_nope" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert accesses(db, "c_nope") == []


def test_export_holds_the_case_and_nothing_about_the_server(data_dir: Path, tmp_path: Path) -> None:
    from relay.config import parse_config

    internals = {
        "server": {
            "host": "10.77.1.2",
            "port": 8443,
            "public_url": "https://calls.example.kr",
            "data_dir": "/srv/cg-secret-data",
            "tls_cert": "/etc/cg/fullchain.pem",
            "tls_key": "/etc/cg/privkey.pem",
        },
        "auth": {"scrypt_n": 65536},
        "webrtc": {
            "ice_servers": [{"urls": ["turn:turn.example.kr:3478"], "username": "iceuser42", "credential": "s3cret"}],
            "interfaces": ["10.77.1.2"],
        },
        "stt": {"models_dir": "/srv/cg-models", "model": "/srv/cg-models/base-ko"},
        "delay": {"delay_s": 2.25},
        "policy": {"pad_before_s": 0.11},
    }
    config = parse_config(internals)
    db = open_database(database_file(data_dir))
    write_logged_call(db, data_dir, LoggedCall(CALL_ID, "anna", time.time() - 60, ABUSIVE_CALL), config)
    # A model that failed to load, and a disk error: their details name server paths.
    versions = json.loads(db.execute("SELECT versions FROM call_config").fetchone()[0])
    versions["stt"] = {"state": "unavailable", "detail": "no CTranslate2 model in /srv/cg-models/base-ko (see docs)"}
    db.execute("UPDATE call_config SET versions = ?", (json.dumps(versions),))
    db.execute(
        "INSERT INTO call_events (call_id, at, media_s, kind, detail) VALUES (?, 0, 1.0, 'error', ?)",
        (CALL_ID, json.dumps({"kind": "recording", "detail": "[Errno 28] '/srv/cg-secret-data/calls/c_1/x.opus'"})),
    )
    db.execute(
        "INSERT INTO call_replays (call_id, at, by_user, mode, config, versions, words, spans, diff) "
        "VALUES (?, 0, 'quinn', 'transcript', ?, '{}', '[]', '[]', '{}')",
        (CALL_ID, json.dumps(config.to_dict())),
    )
    summary = export_call(db, data_dir, CALL_ID, tmp_path / "case.zip")
    logged = db.execute("SELECT COUNT(*) FROM call_decisions").fetchone()[0]
    db.close()

    with zipfile.ZipFile(summary.path) as zf:
        texts = {n: zf.read(n).decode() for n in zf.namelist() if not n.startswith("audio/")}
        assert sorted(n for n in zf.namelist() if n.startswith("audio/")) == [
            f"audio/{s}.opus" for s in sorted(STREAMS)
        ]
    everything = "\n".join(texts.values())
    for secret in (
        "10.77.1.2",
        "8443",
        "calls.example.kr",
        "cg-secret-data",
        str(data_dir),
        "fullchain.pem",
        "privkey.pem",
        "65536",
        "scrypt",
        "turn.example.kr",
        "iceuser42",
        "s3cret",
        "interfaces",
        "/srv/cg-models",
    ):
        assert secret not in everything, secret
    # What the case needs: the settings that decided what the counselor heard, the versions,
    # the decisions and the words.
    call = json.loads(texts["call.json"])
    assert set(call["config"]) == {
        "delay",
        "stt",
        "keywords",
        "text_model",
        "classifier",
        "checks",
        "policy",
        "escalation",
    }
    assert call["config"]["delay"]["delay_s"] == 2.25 and call["config"]["policy"]["pad_before_s"] == 0.11
    assert call["config"]["stt"]["model"] == "base-ko" and call["config"]["stt"]["language"] == "ko"
    assert call["config"]["classifier"]["thresholds"]["악플/욕설"] == 0.5
    assert call["versions"]["stt"] == {"state": "unavailable", "detail": "no CTranslate2 model in <path> (see docs)"}
    assert call["versions"]["keywords"]["state"] == "ready"
    assert logged >= 3 and len(json.loads(texts["decisions.json"])["decisions"]) == logged
    assert "씨발" in texts["transcript.tsv"]
