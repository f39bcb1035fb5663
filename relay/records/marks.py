"""QA marks on a logged call: a mute that should not have been (false positive), or a
stretch of abuse that went through (missed abuse), and their export for `eval-text`.

A mark keeps the logged words under it as they were when it was made, so the export
needs no audio and survives a replay that transcribes differently. The export is the
`text<TAB>label` format `callguard eval-text` reads: 1 for missed abuse, 0 for a false
positive; it is how today's marks become tomorrow's test set for a new list or threshold.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from relay.records.logged_call import LoggedWord, Mark

KINDS = ("false_positive", "missed_abuse")
LABELS = {"missed_abuse": 1, "false_positive": 0}
MAX_NOTE_CHARS = 500
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class MarksTsv:
    text: str
    lines: int
    without_words: int  # marks over stretches with no logged words: nothing to evaluate


def words_under(words: list[LoggedWord], start: float, end: float) -> str:
    """The logged words at least half inside [start, end], as one line of text (a
    reviewer's selection is rough: a word it grazes is not what they meant)."""
    inside = [w.text for w in words if min(w.end, end) - max(w.start, start) >= (w.end - w.start) / 2]
    return one_line(" ".join(inside))


def add_mark(
    db: sqlite3.Connection,
    call_id: str,
    kind: str,
    start: float,
    end: float,
    span_id: int | None,
    text: str,
    note: str,
    by_user: str,
    now: float | None = None,
) -> Mark:
    at = time.time() if now is None else now
    cur = db.execute(
        "INSERT INTO qa_marks (call_id, kind, start, end, span_id, text, note, by_user, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (call_id, kind, start, end, span_id, text, note, by_user, at),
    )
    return Mark(int(cur.lastrowid or 0), call_id, kind, start, end, span_id, text, note, by_user, at)


def delete_mark(db: sqlite3.Connection, call_id: str, mark_id: int) -> bool:
    return db.execute("DELETE FROM qa_marks WHERE call_id = ? AND mark_id = ?", (call_id, mark_id)).rowcount > 0


def marks_tsv(marks: list[Mark]) -> MarksTsv:
    lines = ["text\tlabel"]  # eval-text takes a first line that is not labelled as a header
    without = 0
    for mark in marks:
        if not mark.text:
            without += 1
            continue
        lines.append(f"{mark.text}\t{LABELS[mark.kind]}")
    return MarksTsv("\n".join(lines) + "\n", len(lines) - 1, without)


def one_line(text: str) -> str:
    # Tabs and newlines would break the TSV; the checks split on whitespace anyway.
    return _SPACE.sub(" ", text).strip()
