"""The QA API over a running server: who gets what, the access log, filters, marks and their TSV."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from offline.eval_text import read_labelled
from relay.records.database import database_file, open_database
from testkit.local_server import LocalServer

from .conftest import PASSWORD, start_server
from .logged_calls import ABUSIVE_CALL, CLEAN_CALL, LoggedCall, write_logged_call

NOW = time.time()
DAY = 86400.0
ABUSIVE = LoggedCall("c_qa_abusive", "anna", NOW - 2 * DAY, ABUSIVE_CALL)
CLEAN = LoggedCall("c_qa_clean", "ben", NOW - 5 * DAY, CLEAN_CALL, duration_s=4.0, undecided_s=0.4)
# No speech model on that server: nothing was checked, so nothing was muted.
UNCHECKED = LoggedCall("c_qa_unchecked", "anna", NOW - 9 * DAY, CLEAN_CALL, stt_state="unavailable", undecided_s=6.0)


@pytest.fixture(scope="module")
def qa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = start_server(tmp_path_factory.mktemp("qa"))
    db = open_database(database_file(server.data_dir))
    for call in (ABUSIVE, CLEAN, UNCHECKED):
        write_logged_call(db, server.data_dir, call)
    db.close()
    yield server
    server.stop()


def db_of(server: LocalServer) -> sqlite3.Connection:
    return open_database(database_file(server.data_dir))


async def token_of(server: LocalServer, http: aiohttp.ClientSession, user: str) -> str:
    async with http.post(f"{server.base_url}/api/login", json={"username": user, "password": PASSWORD}) as r:
        assert r.status == 200
        return str((await r.json())["token"])


async def fetch(
    server: LocalServer, http: aiohttp.ClientSession, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, bytes, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, f"{server.base_url}{path}", json=body, headers=headers) as r:
        return r.status, await r.read(), r.headers


def every_route(call_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/api/qa/calls", None),
        ("GET", f"/api/qa/calls/{call_id}", None),
        *[("GET", f"/api/qa/calls/{call_id}/audio/{s}", None) for s in ("customer", "delivered", "counselor")],
        ("GET", f"/api/qa/calls/{call_id}/export", None),
        ("POST", f"/api/qa/calls/{call_id}/marks", {"kind": "missed_abuse", "start": 2.4, "end": 2.9}),
        ("DELETE", f"/api/qa/calls/{call_id}/marks/1", None),
        ("GET", "/api/qa/marks.tsv", None),
        ("GET", "/api/qa/access", None),
    ]


async def test_only_qa_and_supervisors_get_anything(qa_server: LocalServer, http: aiohttp.ClientSession) -> None:
    anna = await token_of(qa_server, http, "anna")  # the logged call's own counselor
    ben = await token_of(qa_server, http, "ben")
    status, body, _ = await fetch(qa_server, http, "POST", "/api/calls", anna, {})
    invite = json.loads(body)["invite"]["token"]  # a live call's customer
    refused = {None: 401, anna: 403, ben: 403, invite: 403, "not-a-token": 401}
    for method, path, body_ in every_route(ABUSIVE.call_id):
        for token, expected in refused.items():
            status, content, _ = await fetch(qa_server, http, method, path, token, body_)
            assert status == expected, (method, path, token, status)
            assert ABUSIVE.call_id.encode() not in content and "씨발".encode() not in content
    with closing(db_of(qa_server)) as db:
        assert db.execute("SELECT COUNT(*) FROM access_log").fetchone()[0] == 0  # nothing was handed out
        assert db.execute("SELECT COUNT(*) FROM qa_marks").fetchone()[0] == 0


async def test_recordings_are_only_reachable_through_the_api(
    qa_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    sue = await token_of(qa_server, http, "sue")
    relative = f"calls/{ABUSIVE.call_id}/customer.opus"
    assert (qa_server.data_dir / relative).is_file()
    for path in (
        f"/{relative}",
        f"/static/../data/{relative}",
        f"/static/%2e%2e/data/{relative}",
        f"/api/qa/calls/..%2F{ABUSIVE.call_id}/audio/customer",
        f"/api/qa/calls/{ABUSIVE.call_id}/audio/..%2Fcallguard.db",
        f"/api/qa/calls/{ABUSIVE.call_id}/audio/secret",
    ):
        status, content, _ = await fetch(qa_server, http, "GET", path, sue)
        assert status in (400, 403, 404), (path, status)
        assert not content.startswith(b"OggS") and b"SQLite" not in content


async def test_qa_and_supervisor_access_is_logged(qa_server: LocalServer, http: aiohttp.ClientSession) -> None:
    quinn, sue = await token_of(qa_server, http, "quinn"), await token_of(qa_server, http, "sue")
    started = time.time()
    call = f"/api/qa/calls/{ABUSIVE.call_id}"
    for token in (quinn, sue):
        status, _, _ = await fetch(qa_server, http, "GET", call, token)
        assert status == 200
    status, audio, headers = await fetch(qa_server, http, "GET", f"{call}/audio/delivered", quinn)
    assert status == 200 and audio.startswith(b"OggS") and headers["Content-Type"] == "audio/ogg"
    status, _, _ = await fetch(qa_server, http, "GET", f"{call}/export", sue)
    assert status == 200

    with closing(db_of(qa_server)) as db:
        rows = [
            tuple(r)
            for r in db.execute(
                "SELECT user_name, role, call_id, action FROM access_log WHERE at >= ? ORDER BY id", (started,)
            )
        ]
    assert rows == [
        ("quinn", "qa", ABUSIVE.call_id, "view"),
        ("sue", "supervisor", ABUSIVE.call_id, "view"),
        ("quinn", "qa", ABUSIVE.call_id, "audio"),
        ("sue", "supervisor", ABUSIVE.call_id, "export"),
    ]

    # Who looked is for supervisors to see, not for QA staff about each other.
    status, _, _ = await fetch(qa_server, http, "GET", f"/api/qa/access?call_id={ABUSIVE.call_id}", quinn)
    assert status == 403
    status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/access?call_id={ABUSIVE.call_id}", sue)
    logged = [(a["user_name"], a["action"]) for a in json.loads(body)["accesses"]]
    assert ("quinn", "audio") in logged and ("sue", "export") in logged


async def test_call_list_filters(qa_server: LocalServer, http: aiohttp.ClientSession) -> None:
    quinn = await token_of(qa_server, http, "quinn")

    async def ids(query: str) -> list[str]:
        status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls{query}", quinn)
        assert status == 200, body
        return [c["call_id"] for c in json.loads(body)["calls"]]

    # Calls created from now on (another test's live call) are left out by `until`.
    logged = f"until={NOW}"
    assert await ids(f"?{logged}") == [ABUSIVE.call_id, CLEAN.call_id, UNCHECKED.call_id]  # newest first
    assert await ids(f"?muted=1&{logged}") == [ABUSIVE.call_id]
    # Without mutes: judged and found clean; a call nobody checked is not among them.
    assert await ids(f"?muted=0&{logged}") == [CLEAN.call_id]
    assert await ids(f"?moderation=checked&{logged}") == [ABUSIVE.call_id]
    assert await ids(f"?moderation=partly&{logged}") == [CLEAN.call_id]
    assert await ids(f"?moderation=unchecked&{logged}") == [UNCHECKED.call_id]
    assert await ids("?counselor=ben") == [CLEAN.call_id]
    assert await ids(f"?since={NOW - 3 * DAY}&{logged}") == [ABUSIVE.call_id]
    assert await ids(f"?until={NOW - 3 * DAY}") == [CLEAN.call_id, UNCHECKED.call_id]
    assert await ids(f"?since={NOW - 3 * DAY}&counselor=ben") == []
    status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls?{logged}", quinn)
    listing = json.loads(body)
    assert listing["counselors"] == ["anna", "ben"]
    abusive, clean, unchecked = listing["calls"]
    # The call's length runs from its start to its end: 9 s of speech, heard 1.5 s late.
    assert (abusive["mutes"], abusive["words"], abusive["duration_s"]) == (3, 8, 10.5)
    assert (abusive["moderation"], abusive["undecided_s"]) == ("checked", None)
    assert (clean["moderation"], clean["undecided_s"], clean["mutes"]) == ("partly", 0.4, 0)
    assert (unchecked["moderation"], unchecked["undecided_s"], unchecked["words"]) == ("unchecked", 6.0, 0)
    for bad in ("?since=yesterday", "?muted=maybe", "?limit=0", "?until=nan", "?moderation=some"):
        status, _, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls{bad}", quinn)
        assert status == 400, bad


async def test_call_view_has_the_evidence(qa_server: LocalServer, http: aiohttp.ClientSession) -> None:
    quinn = await token_of(qa_server, http, "quinn")
    status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls/{ABUSIVE.call_id}", quinn)
    view = json.loads(body)
    assert [w["text"] for w in view["words"]] == [w for w, _, _ in ABUSIVE_CALL]
    assert [(d["words"], d["categories"]) for d in view["decisions"]] == [
        (["씨발"], ["profanity"]),
        (["멍청이"], ["insult"]),
        (["개새끼"], ["insult"]),
    ]
    hit = view["decisions"][0]["hits"][0]
    assert hit["source"] == "keyword" and hit["detail"] == "씨발" and hit["version"].startswith("kw-")
    assert {r["stream"] for r in view["recordings"]} == {"customer", "delivered", "counselor"}
    assert view["config"]["delay"]["delay_s"] == ABUSIVE.delay_s
    status, _, _ = await fetch(qa_server, http, "GET", "/api/qa/calls/c_nobody", quinn)
    assert status == 404


async def test_duration_read_from_the_file_when_the_server_died(
    qa_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    with closing(db_of(qa_server)) as db:  # as a killed server leaves it: the files ended, their rows did not
        db.execute("UPDATE call_recordings SET duration_s = NULL WHERE call_id = ?", (CLEAN.call_id,))
        db.execute("UPDATE calls SET ended_at = NULL WHERE call_id = ?", (CLEAN.call_id,))
    quinn = await token_of(qa_server, http, "quinn")
    status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls/{CLEAN.call_id}", quinn)
    view = json.loads(body)
    # Never ended: the call lasted until its last audio, the delivered file's end (4 s + D).
    assert view["summary"]["duration_s"] == pytest.approx(4.0 + CLEAN.delay_s, abs=0.02)
    assert all(r["duration_s"] == pytest.approx(4.0, abs=0.02) for r in view["recordings"])


async def test_marks_are_saved_and_export_for_eval_text(
    qa_server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    quinn, sue = await token_of(qa_server, http, "quinn"), await token_of(qa_server, http, "sue")
    marks = f"/api/qa/calls/{ABUSIVE.call_id}/marks"
    started = time.time()
    status, body, _ = await fetch(qa_server, http, "GET", f"/api/qa/calls/{ABUSIVE.call_id}", quinn)
    span = json.loads(body)["decisions"][1]  # 멍청이
    status, body, _ = await fetch(
        qa_server, http, "POST", marks, quinn, {"kind": "false_positive", "span_id": span["span_id"], "note": "joking"}
    )
    assert status == 201, body
    fp = json.loads(body)
    assert (fp["text"], fp["start"], fp["end"], fp["by_user"], fp["note"]) == (
        "멍청이",
        span["start"],
        span["end"],
        "quinn",
        "joking",
    )
    status, body, _ = await fetch(
        qa_server, http, "POST", marks, sue, {"kind": "missed_abuse", "start": 2.3, "end": 3.7}
    )
    assert status == 201, body
    missed = json.loads(body)
    assert missed["text"] == "환불 해주세요" and missed["span_id"] is None

    for bad in (
        {"kind": "nice", "start": 1, "end": 2},
        {"kind": "false_positive", "span_id": 999},
        {"kind": "false_positive"},
        {"kind": "missed_abuse", "start": 3, "end": 2},
        {"kind": "missed_abuse", "start": 1, "end": 2, "span_id": 1},
        {"kind": "missed_abuse", "start": 1, "end": 2, "note": "x" * 501},
    ):
        status, _, _ = await fetch(qa_server, http, "POST", marks, quinn, bad)
        assert status == 400, bad
    status, _, _ = await fetch(
        qa_server, http, "POST", "/api/qa/calls/c_nobody/marks", quinn, {"kind": "missed_abuse", "start": 1, "end": 2}
    )
    assert status == 404

    status, body, headers = await fetch(qa_server, http, "GET", f"/api/qa/marks.tsv?since={started}", quinn)
    assert status == 200 and headers["Content-Type"].startswith("text/tab-separated-values")
    path = tmp_path / "marks.tsv"
    path.write_bytes(body)
    labelled = read_labelled(path)  # exactly as `callguard eval-text` reads it
    assert labelled.texts == ["환불 해주세요", "멍청이"] and labelled.abusive.tolist() == [True, False]

    status, _, _ = await fetch(qa_server, http, "DELETE", f"{marks}/{fp['mark_id']}", quinn)
    assert status == 200
    status, _, _ = await fetch(qa_server, http, "DELETE", f"{marks}/{fp['mark_id']}", quinn)
    assert status == 404
    with closing(db_of(qa_server)) as db:
        assert [r[0] for r in db.execute("SELECT kind FROM qa_marks WHERE at >= ?", (started,))] == ["missed_abuse"]
        actions = [
            r[0]
            for r in db.execute(
                "SELECT action FROM access_log WHERE at >= ? AND user_name = 'quinn' ORDER BY id", (started,)
            )
        ]
    assert actions[:2] == ["view", "mark"] and "marks_export" in actions and actions[-2:] == ["unmark", "unmark"]
