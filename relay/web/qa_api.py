"""The QA API: logged calls for QA staff and supervisors, every access logged (docs/API.md).

Only the roles qa and supervisor get anything here: a counselor (even of that call) or a
customer's invite token is refused before a row is read. Each access to a call (view,
audio, export, marks) is written to the access log *before* the data goes out; when the
log cannot be written the request fails rather than hand out unlogged personal data.

The reads run on a thread of their own with a connection of its own (QaReads): a long
call's view is tens of milliseconds of SQLite and JSON (bench/qa_load.py), and the event
loop that would otherwise wait for it paces every live call's audio. The access log,
marks and the short look-ups go through the server's database thread
(relay/records/db_thread.py), like every other statement.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from relay.records import marks as qa_marks
from relay.records.access_log import accesses, record_access
from relay.records.database import connect
from relay.records.export import export_call
from relay.records.logged_call import (
    MODERATION_STATES,
    STREAMS,
    CallFilter,
    LoggedDecision,
    UnknownCall,
    call_recordings,
    list_calls,
    load_call,
    logged_decisions,
    logged_words,
    marks,
    recording_file,
)
from relay.records.s3_recordings import RangeNotSatisfiable, S3Recordings, StoreError
from relay.web.bodies import body_field, id_number, json_body
from relay.web.calls_api import SERVICES, Services, who_is
from relay.web.errors import ApiError
from relay.web.principals import Staff, require_staff

log = logging.getLogger(__name__)

QA_ROLES = ("qa", "supervisor")
MAX_LIST = 1000
T = TypeVar("T")


class QaReads:
    """One thread and one connection for the QA side's reads of the call log; `store`: the
    recordings' S3-compatible store (recordings.backend = "s3"), None for the folder."""

    def __init__(self, data_dir: Path, url: str = "", store: S3Recordings | None = None) -> None:
        self.data_dir = data_dir
        self.url = url
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-reads")
        self._db: sqlite3.Connection | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(db, data_dir, *args) on the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._db is None:
            self._db = connect(self.data_dir, self.url)
        return fn(self._db, self.data_dir, *args)

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=False)


QA_READS = web.AppKey("qa_reads", QaReads)


def install(app: web.Application, data_dir: Path, url: str = "", store: S3Recordings | None = None) -> None:
    """The QA routes and their reader thread, closed with the app."""
    reads = app[QA_READS] = QaReads(data_dir, url, store)
    app.add_routes(routes())

    async def close(_: web.Application) -> None:
        await reads.close()

    app.on_cleanup.append(close)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/qa/calls", list_logged_calls),
        web.get("/api/qa/calls/{call_id}", view_call),
        web.get("/api/qa/calls/{call_id}/audio/{stream}", audio),
        web.get("/api/qa/calls/{call_id}/export", export),
        web.post("/api/qa/calls/{call_id}/marks", add_mark),
        web.delete("/api/qa/calls/{call_id}/marks/{mark_id}", delete_mark),
        web.get("/api/qa/marks.tsv", marks_tsv),
        web.get("/api/qa/access", access_log),
    ]


async def _qa(request: web.Request, *roles: str) -> tuple[Staff, Services]:
    return require_staff(await who_is(request), *(roles or QA_ROLES)), request.app[SERVICES]


def _reads(request: web.Request) -> QaReads:
    return request.app[QA_READS]


async def _log(s: Services, who: Staff, call_id: str | None, action: str, detail: dict[str, Any] | None = None) -> None:
    try:
        await s.database.run(record_access, s.db, who.user.name, who.user.role, call_id, action, detail)
    except sqlite3.Error as exc:
        log.error("access log write failed (%s %s %s): %s", who.user.name, action, call_id, exc)
        raise ApiError(503, "access_log_unavailable", "the access log cannot be written; try again") from None


async def _known_call(s: Services, call_id: str) -> None:
    row = await s.database.run(lambda: s.db.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone())
    if row is None:
        raise ApiError(404, "unknown_call", f"no logged call {call_id!r}")


async def list_logged_calls(request: web.Request) -> web.Response:
    who, s = await _qa(request)
    q = request.query
    limit = _number(q, "limit")
    if limit is not None and not (limit.is_integer() and 1 <= limit <= MAX_LIST):
        raise ApiError(400, "bad_request", f"limit must be a whole number in 1..{MAX_LIST}")
    moderation = q.get("moderation") or None
    if moderation is not None and moderation not in MODERATION_STATES:
        raise ApiError(400, "bad_request", f"moderation must be one of {', '.join(MODERATION_STATES)}")
    f = CallFilter(
        since=_number(q, "since"),
        until=_number(q, "until"),
        counselor=q.get("counselor") or None,
        muted=_flag(q, "muted"),
        moderation=moderation,
        limit=CallFilter.limit if limit is None else int(limit),
    )
    await _log(s, who, None, "list", {k: v for k, v in q.items()})
    counselors = await s.database.run(
        lambda: [r[0] for r in s.db.execute("SELECT DISTINCT counselor FROM calls ORDER BY counselor")]
    )
    logged = await s.database.run(list_calls, s.db, f)
    return web.json_response({"calls": [dataclasses.asdict(c) for c in logged], "counselors": counselors})


async def view_call(request: web.Request) -> web.Response:
    who, s = await _qa(request)
    call_id = request.match_info["call_id"]
    await _known_call(s, call_id)
    await _log(s, who, call_id, "view")
    body = await _reads(request).run(_call_json, call_id)
    if body is None:  # purged between the two reads
        raise ApiError(404, "unknown_call", f"no logged call {call_id!r}")
    return web.Response(text=body, content_type="application/json")


def _call_json(db: sqlite3.Connection, data_dir: Path, call_id: str) -> str | None:
    record = load_call(db, data_dir, call_id)
    return None if record is None else json.dumps(dataclasses.asdict(record))


async def audio(request: web.Request) -> web.StreamResponse:
    who, s = await _qa(request)
    call_id, stream = request.match_info["call_id"], request.match_info["stream"]
    if stream not in STREAMS:
        raise ApiError(404, "unknown_stream", f"streams are {', '.join(STREAMS)}")
    await _known_call(s, call_id)
    reads = _reads(request)
    found = await reads.run(_recording_path, call_id, stream)
    if found is None or (found[1] is None and reads.store is None):
        raise ApiError(404, "no_recording", f"call {call_id} has no {stream} recording")
    relative, path = found
    await _log(s, who, call_id, "audio", {"stream": stream, "range": request.headers.get("Range")})
    headers = {"Content-Type": "audio/ogg", "Cache-Control": "private, no-store"}
    if path is not None:  # on the local disk: the folder backend, or not uploaded yet
        return web.FileResponse(path, headers=headers)
    assert reads.store is not None
    return await _stored_audio(request, reads.store, relative, stream, headers)


def _recording_path(
    db: sqlite3.Connection, data_dir: Path, call_id: str, stream: str
) -> tuple[str, Path | None] | None:
    """(the recording's path in the log, its local file if there is one); None: not logged."""
    recording = next((r for r in call_recordings(db, data_dir, call_id) if r.stream == stream), None)
    return None if recording is None else (recording.path, recording_file(data_dir, recording))


async def _stored_audio(
    request: web.Request, store: S3Recordings, relative: str, stream: str, headers: dict[str, str]
) -> web.StreamResponse:
    """A recording from the store, with the Range the player asked for (it seeks with them)."""
    try:
        wanted = request.http_range
    except ValueError:
        raise ApiError(416, "bad_range", "the Range header is not one byte range") from None
    try:
        found = await asyncio.to_thread(store.get, relative, wanted.start, wanted.stop)
    except RangeNotSatisfiable:
        raise ApiError(416, "bad_range", "the range lies outside the recording") from None
    except StoreError as exc:
        log.error("recordings: %s from the store failed: %s", relative, exc)
        raise ApiError(503, "store_unavailable", "the recordings store did not answer; try again") from None
    if found is None:
        raise ApiError(404, "no_recording", f"no {stream} recording in the store")
    response = web.StreamResponse(status=206 if found.content_range else 200, headers=headers)
    response.headers["Accept-Ranges"] = "bytes"
    if found.content_range:
        response.headers["Content-Range"] = found.content_range
    response.content_length = found.length
    await response.prepare(request)
    chunks = found.chunks()
    while chunk := await asyncio.to_thread(next, chunks, b""):
        await response.write(chunk)
    await response.write_eof()
    return response


async def export(request: web.Request) -> web.StreamResponse:
    who, s = await _qa(request)
    call_id = request.match_info["call_id"]
    await _known_call(s, call_id)
    folder = Path(tempfile.mkdtemp(prefix="callguard-export-"))
    try:
        try:
            reads = _reads(request)
            summary = await reads.run(export_call, call_id, folder / f"{call_id}.zip", reads.store)
        except UnknownCall:
            raise ApiError(404, "unknown_call", f"no logged call {call_id!r}") from None
        await _log(s, who, call_id, "export", {"sha256": summary.sha256, "via": "api"})
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Cache-Control": "private, no-store",
                "Content-Disposition": f'attachment; filename="{call_id}.zip"',
                "X-Content-SHA256": summary.sha256,
            }
        )
        response.content_length = summary.path.stat().st_size
        await response.prepare(request)
        with open(summary.path, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, 1 << 16):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def add_mark(request: web.Request) -> web.Response:
    who, s = await _qa(request)
    call_id = request.match_info["call_id"]
    await _known_call(s, call_id)
    body = await json_body(request)
    kind = body_field(body, "kind", str)
    if kind not in qa_marks.KINDS:
        raise ApiError(400, "bad_request", f"kind must be one of {', '.join(qa_marks.KINDS)}")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > qa_marks.MAX_NOTE_CHARS:
        raise ApiError(400, "bad_request", f"note must be text of at most {qa_marks.MAX_NOTE_CHARS} characters")
    span_id = body.get("span_id")
    if kind == "false_positive":
        if not isinstance(span_id, int) or isinstance(span_id, bool):
            raise ApiError(400, "bad_request", "a false positive names the mute span: field 'span_id'")
        span_id = id_number(span_id, "span_id")
        span = await _reads(request).run(_span, call_id, span_id)
        if span is None:
            raise ApiError(400, "bad_request", f"call {call_id} has no mute span {span_id}")
        # The words that carried the hits: what the checks judged abusive.
        start, end, text = span.start, span.end, qa_marks.one_line(" ".join(span.words))
    else:
        if span_id is not None:
            raise ApiError(400, "bad_request", "missed abuse is a stretch of audio, not a span: no 'span_id'")
        start, end = float(body_field(body, "start", (int, float))), float(body_field(body, "end", (int, float)))
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise ApiError(400, "bad_request", "need 0 <= start < end, in media seconds")
        text = await _reads(request).run(_words_under, call_id, start, end)
    await _log(s, who, call_id, "mark", {"kind": kind, "start": start, "end": end, "span_id": span_id})
    mark = await s.database.run(qa_marks.add_mark, s.db, call_id, kind, start, end, span_id, text, note, who.user.name)
    return web.json_response(dataclasses.asdict(mark), status=201)


def _span(db: sqlite3.Connection, data_dir: Path, call_id: str, span_id: int) -> LoggedDecision | None:
    return next((d for d in logged_decisions(db, call_id) if d.span_id == span_id), None)


def _words_under(db: sqlite3.Connection, data_dir: Path, call_id: str, start: float, end: float) -> str:
    return qa_marks.words_under(logged_words(db, call_id), start, end)


async def delete_mark(request: web.Request) -> web.Response:
    who, s = await _qa(request)
    call_id = request.match_info["call_id"]
    try:
        mark_id = id_number(request.match_info["mark_id"], "mark_id")
    except ApiError:
        raise ApiError(404, "unknown_mark", "no such mark") from None
    await _known_call(s, call_id)
    await _log(s, who, call_id, "unmark", {"mark_id": mark_id})
    if not await s.database.run(qa_marks.delete_mark, s.db, call_id, mark_id):
        raise ApiError(404, "unknown_mark", f"call {call_id} has no mark {mark_id}")
    return web.json_response({})


async def marks_tsv(request: web.Request) -> web.Response:
    who, s = await _qa(request)
    since, until = _number(request.query, "since"), _number(request.query, "until")
    await _log(s, who, None, "marks_export", {"since": since, "until": until})
    tsv = qa_marks.marks_tsv(await s.database.run(marks, s.db, since=since, until=until))
    return web.Response(
        text=tsv.text,
        content_type="text/tab-separated-values",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="qa-marks.tsv"',
            "Cache-Control": "private, no-store",
            "X-Marks-Without-Words": str(tsv.without_words),
        },
    )


async def access_log(request: web.Request) -> web.Response:
    """Who accessed what: for supervisors (data protection), not for QA staff themselves."""
    who, s = await _qa(request, "supervisor")
    call_id = request.query.get("call_id") or None
    await _log(s, who, call_id, "access_log")
    return web.json_response(
        {"accesses": [dataclasses.asdict(a) for a in await s.database.run(accesses, s.db, call_id)]}
    )


def _number(query: Any, name: str) -> float | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a number") from None
    if not math.isfinite(value):
        raise ApiError(400, "bad_request", f"{name} must be a finite number")
    return value


def _flag(query: Any, name: str) -> bool | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    if raw not in ("0", "1", "true", "false"):
        raise ApiError(400, "bad_request", f"{name} must be 1 or 0")
    return raw in ("1", "true")
