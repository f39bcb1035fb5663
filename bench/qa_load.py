"""What QA costs on a long call: the call view, the evidence export and a transcript replay.

    python bench/qa_load.py --minutes 30 --json

Writes one logged call of --minutes (a word every 0.45 s, one listed insult in every 20
words; three Ogg/Opus streams from the relay's own encoder, through the real CallLog, as
tests/logged_calls.py does) and --calls more calls' rows (no audio) into a temporary
data folder, then times:
- view_ms: load_call plus the JSON the QA API sends for it (GET /api/qa/calls/{id});
- list_ms: the call list over every call (GET /api/qa/calls, 200 newest);
- export_s: `calls export` (zip with SHA256SUMS) and the zip's size;
- replay_transcript_s: `replay --transcript-only` with the default keyword lists.
Each is the median of --repeat runs. The call itself takes a while to write (encoding).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from offline.replay import run_replay  # noqa: E402
from relay.config import Config  # noqa: E402
from relay.records.database import database_file, open_database  # noqa: E402
from relay.records.export import export_call  # noqa: E402
from relay.records.logged_call import CallFilter, list_calls, load_call  # noqa: E402
from tests.logged_calls import LoggedCall, write_logged_call  # noqa: E402

CLEAN = ["안녕하세요", "배송", "문의", "드립니다", "환불", "해주세요", "고맙습니다", "주문", "번호", "확인"]
INSULT = "멍청이"


def script(minutes: float) -> list[tuple[str, float, float]]:
    words, t, k = [], 0.3, 0
    while t + 0.35 < minutes * 60:
        words.append((INSULT if k % 20 == 19 else CLEAN[k % len(CLEAN)], round(t, 3), round(t + 0.35, 3)))
        t, k = t + 0.45, k + 1
    return words


def median_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=5000, help="other calls in the list (rows only)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="callguard-qa-bench-"))
    try:
        db = open_database(database_file(folder))
        now = time.time()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO calls (call_id, counselor, created_at, ended_at, end_reason, delay_s, invite_hash, "
            "invite_expires_at) VALUES (?, ?, ?, ?, 'hangup', 1.5, ?, 0)",
            [
                (f"c_other{i}", f"counselor{i % 40}", now - 86400 - i * 60, now - 86400 - i * 60 + 300, os.urandom(16))
                for i in range(args.calls)
            ],
        )
        db.execute("COMMIT")
        words = script(args.minutes)
        started = time.perf_counter()
        call = write_logged_call(db, folder, LoggedCall("c_long", "anna", now, words, duration_s=args.minutes * 60))
        write_s = time.perf_counter() - started

        def view() -> int:
            record = load_call(db, folder, "c_long")
            assert record is not None
            return len(json.dumps(dataclasses.asdict(record), ensure_ascii=False))

        view_s, view_bytes = median_of(args.repeat, view)
        list_s, listed = median_of(args.repeat, lambda: len(list_calls(db, CallFilter())))
        export_s, summary = median_of(args.repeat, lambda: export_call(db, folder, "c_long", folder / "e.zip"))
        replay_s, result = median_of(
            args.repeat, lambda: run_replay(db, folder, "c_long", Config(), mode="transcript", classifier=False)
        )
        audio_bytes = sum(p.stat().st_size for p in (folder / "calls" / "c_long").iterdir())
        report = {
            "minutes": args.minutes,
            "words": len(words),
            "decisions": len(call.decisions),
            "other_calls": args.calls,
            "write_s": round(write_s, 1),
            "audio_mb": round(audio_bytes / 1e6, 2),
            "view_ms": round(view_s * 1000, 1),
            "view_json_kb": round(view_bytes / 1e3, 1),
            "list_ms": round(list_s * 1000, 1),
            "listed": listed,
            "export_s": round(export_s, 3),
            "export_mb": round(summary.path.stat().st_size / 1e6, 2),
            "replay_transcript_s": round(replay_s, 3),
            "replay_diff_empty": result.diff.empty,
        }
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:<22} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
