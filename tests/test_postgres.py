"""The call log on PostgreSQL: the same queries as on SQLite, translated, give the same
answers; migrations are versioned and run once."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from relay.records import access_log, logged_call, marks, retention
from relay.records.database import connect
from relay.records.migrations import LATEST, migrate, schema_version
from relay.records.postgres import translate
from relay.web.accounts import Accounts
from testkit.local_postgres import LocalPostgres

from .logged_calls import ABUSIVE_CALL, LoggedCall, write_logged_call


def test_translation_of_the_sqlite_dialect() -> None:
    assert translate("SELECT start, end FROM call_words WHERE call_id = ?", False) == (
        'SELECT start, "end" FROM call_words WHERE call_id = %s'
    )
    upsert = translate("INSERT OR REPLACE INTO call_config (call_id, at, config, versions) VALUES (?, ?, ?, ?)", False)
    assert upsert.endswith(
        "ON CONFLICT (call_id) DO UPDATE SET at = EXCLUDED.at, config = EXCLUDED.config, versions = EXCLUDED.versions"
    )
    assert translate("INSERT INTO qa_marks (call_id) VALUES (?)", False).endswith("RETURNING mark_id")
    assert translate("SELECT * FROM calls WHERE created_at + :grace < :now AND x LIKE '5%'", True) == (
        "SELECT * FROM calls WHERE created_at + %(grace)s < %(now)s AND x LIKE '5%%'"
    )
    assert translate("BEGIN IMMEDIATE", False) == "BEGIN"
    assert "end_reason" in translate("SELECT end_reason FROM calls", False)  # only the bare word is quoted


def _everything(db: sqlite3.Connection, data_dir: Path, call_id: str) -> dict[str, Any]:
    history = logged_call.load_call(db, data_dir, call_id)
    assert history is not None
    view = dataclasses.asdict(history)
    for r in view["recordings"]:
        r.pop("path")  # under each backend's own data folder
    return view


def test_a_logged_call_reads_back_the_same_from_postgres_as_from_sqlite(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    call = LoggedCall("c_pgsame", "anna", time.time() - 100, list(ABUSIVE_CALL))
    dbs = {"sqlite": connect(tmp_path / "lite"), "postgres": connect(tmp_path / "pg", postgres.database("same"))}
    views = {}
    for name, db in dbs.items():
        data_dir = tmp_path / ("lite" if name == "sqlite" else "pg")
        write_logged_call(db, data_dir, dataclasses.replace(call))
        mark = marks.add_mark(db, call.call_id, "missed_abuse", 2.4, 2.9, None, "환불", "", "quinn", now=1.0)
        assert mark.mark_id == 1  # the generated id comes back on both
        access_log.record_access(db, "quinn", "qa", call.call_id, "view", {"n": 1}, now=2.0)
        views[name] = (_everything(db, data_dir, call.call_id), logged_call.list_calls(db), access_log.accesses(db))
        assert marks.delete_mark(db, call.call_id, mark.mark_id)
    assert views["postgres"] == views["sqlite"]
    history = views["postgres"][0]
    assert history["decisions"] and history["words"] and history["recordings"]

    for name, db in dbs.items():  # retention's named parameters, and its cascade
        data_dir = tmp_path / ("lite" if name == "sqlite" else "pg")
        report = retention.purge(db, data_dir, 1, ("test", "cli"), now=time.time() + 3 * 86400)
        assert [c.call_id for c in report.calls] == [call.call_id]
        assert logged_call.load_call(db, data_dir, call.call_id) is None
        db.close()


async def test_accounts_and_sessions_are_shared_by_two_connections(postgres: LocalPostgres, tmp_path: Path) -> None:
    url = postgres.database("accounts")
    one, two = connect(tmp_path, url), connect(tmp_path, url)
    password = Accounts(one, 1024, 3600).add_user("dana", "counselor")
    signed_in = await Accounts(two, 1024, 3600).verify("dana", password)  # the KDF's inputs came back intact
    assert signed_in is not None
    session = Accounts(two, 1024, 3600).open_session(signed_in)
    user = Accounts(one, 1024, 3600).session_user(session.token)
    assert user is not None and user.name == "dana"
    with pytest.raises(sqlite3.IntegrityError):  # psycopg's errors arrive as sqlite3's
        one.execute(
            "INSERT INTO users (name, role, pw_salt, pw_hash, pw_n, created_at) VALUES ('dana', 'qa', ?, ?, 1, 0)",
            (b"", b""),
        )
    one.close()
    two.close()


def test_migrations_are_versioned_and_run_once(postgres: LocalPostgres, tmp_path: Path) -> None:
    pg = connect(tmp_path, postgres.database("migrations"))
    assert schema_version(pg) == LATEST and migrate(pg, postgres=True) == []
    pg.close()
    # A SQLite database from before versioning (the first schema, no version table) is
    # brought up to date without losing its rows.
    from relay.records.database import SCHEMA

    old = sqlite3.connect(tmp_path / "callguard.db")
    old.executescript(SCHEMA)
    old.execute(
        "INSERT INTO calls (call_id, counselor, created_at, delay_s, invite_hash, invite_expires_at) "
        "VALUES ('c_old', 'anna', 1, 1.5, x'00', 2)"
    )
    old.commit()
    old.close()
    lite = connect(tmp_path)
    assert schema_version(lite) == LATEST
    assert lite.execute("SELECT node FROM calls WHERE call_id = 'c_old'").fetchone()[0] == ""
    lite.close()
