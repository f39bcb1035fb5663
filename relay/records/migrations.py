"""The call log's schema, versioned: one list of migrations for SQLite and PostgreSQL alike.

Each migration is SQL in SQLite's dialect (relay/records/postgres.py translates it for
PostgreSQL), applied once, in order, and recorded in schema_version. A database from
before versioning has migration 1's tables already: 1 is all CREATE ... IF NOT EXISTS, so
it is recorded without changing anything. Several nodes starting at once on one
PostgreSQL database take turns (an advisory lock), so each migration runs exactly once.
A new migration goes at the end; an applied one is never edited.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from relay.records.database import SCHEMA

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "the call log, accounts, QA and the access log", SCHEMA),
    (
        2,
        "relay nodes: which node runs a call, and the nodes' heartbeats",
        """
ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS calls_node_open ON calls(node, ended_at);
-- One row per relay node sharing this database: where it answers, when it last said it
-- was alive, whether it is draining (relay/web/nodes.py).
CREATE TABLE IF NOT EXISTS nodes (
    name        TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    started_at  REAL NOT NULL,
    seen_at     REAL NOT NULL,
    draining    INTEGER NOT NULL DEFAULT 0
);
""",
    ),
    (
        3,
        "accounts: one name after NFKC + case folding, sign-in lockout",
        """
-- NFKC + casefold of name (relay/web/accounts.py fills it for older rows): unique.
ALTER TABLE users ADD COLUMN name_key TEXT;
-- Wrong passwords in a row, and when the account was locked for them (a supervisor unlocks).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_at REAL;
CREATE UNIQUE INDEX IF NOT EXISTS users_name_key ON users(name_key);
""",
    ),
    (
        4,
        "recordings: sync points where a file's media time steps",
        """
-- Where a recording's mapping to media time steps (the delivered file is written as played,
-- in server time; the delay line's anchor moves on a customer reconnect and slews with the
-- customer's clock drift): from `file_s` seconds into the file, media time runs from `media_s`.
CREATE TABLE IF NOT EXISTS call_recording_sync (
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    stream      TEXT NOT NULL,
    file_s      REAL NOT NULL,
    media_s     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS call_recording_sync_call ON call_recording_sync(call_id, stream, file_s);
""",
    ),
    (
        5,
        "accounts: a password set by the server or a reset must be changed at the next sign-in",
        """
-- 1 while the password is one the server generated or an administrator reset: the
-- user's sessions may do nothing but change it (relay/web/principals.py).
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
""",
    ),
]

LATEST = MIGRATIONS[-1][0]

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, at REAL NOT NULL, what TEXT NOT NULL)"
)


def migrate(db: Any, postgres: bool = False) -> list[int]:
    """Apply what this database lacks; returns the versions applied now."""
    db.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")
    try:
        if postgres:
            db.execute("SELECT pg_advisory_xact_lock(7316001)")  # nodes starting together take turns
        db.execute(_VERSION_TABLE)
        have = {int(r[0]) for r in db.execute("SELECT version FROM schema_version").fetchall()}
        applied = []
        for version, what, sql in MIGRATIONS:
            if version in have:
                continue
            for statement in statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version, at, what) VALUES (?, ?, ?)", (version, time.time(), what))
            applied.append(version)
        db.execute("COMMIT")
        return applied
    except BaseException:
        db.execute("ROLLBACK")
        raise


def schema_version(db: Any) -> int:
    try:
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def statements(sql: str) -> list[str]:
    """A script's statements, comments dropped: one at a time, inside the migration's
    transaction (sqlite3's executescript would commit it first)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
