"""The call log of real calls through the server: complete after a hangup, readable after a kill."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import stat
import zipfile
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from relay.records.logged_call import load_call
from testkit.client import ApiClient, CallPeer
from testkit.local_server import LocalServer
from testkit.probe import MarkerSource, RecordingSource, delayed_overhead_s, envelope

from .conftest import PASSWORD, LiveCall, open_call, start_server

STREAMS = ("customer", "delivered", "counselor")


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / 48000


def read_db(data_dir: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{data_dir / 'callguard.db'}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    return db


def sent_s(call: LiveCall, side: str) -> float:
    peer = call.customer if side == "customer" else call.counselor
    return peer.sent._index * 0.02  # frames the peer's paced track has sent


async def close_peers(call: LiveCall) -> None:
    for peer in (call.customer, call.counselor):
        try:
            await asyncio.wait_for(peer.close(), 10)
        except TimeoutError:
            pass


async def test_a_call_is_logged_completely(server: LocalServer, http: aiohttp.ClientSession) -> None:
    call = await open_call(server, http, counselor="anna", record_s=30)
    try:
        await asyncio.sleep(6.0)
        customer_s, counselor_s = sent_s(call, "customer"), sent_s(call, "counselor")
        await close_peers(call)
        delivered_s = call.counselor.recorder.length / 48000  # what the counselor heard
    finally:
        await call.counselor_api.hangup(call.call_id)

    folder = server.data_dir / "calls" / call.call_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    durations = {}
    for stream in STREAMS:
        path = folder / f"{stream}.opus"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, stream
        durations[stream] = decoded_seconds(path)
    assert abs(durations["customer"] - customer_s) <= 0.5, (durations, customer_s)
    assert abs(durations["counselor"] - counselor_s) <= 0.5, (durations, counselor_s)
    # The file also holds what was still in the counselor's jitter buffer at the close
    # (aiortc's holds 4 packets: 240 ms of the delayed stream's 60 ms ones).
    held_s = delayed_overhead_s() - delayed_overhead_s(20)
    assert abs(durations["delivered"] - delivered_s) <= 0.5 + held_s, (durations, delivered_s)

    with read_db(server.data_dir) as db:
        row = db.execute("SELECT * FROM calls WHERE call_id = ?", (call.call_id,)).fetchone()
        assert row["end_reason"] == "hangup" and row["ended_at"] is not None
        config = db.execute("SELECT * FROM call_config WHERE call_id = ?", (call.call_id,)).fetchone()
        assert json.loads(config["config"])["delay"]["delay_s"] == server.delay_s
        assert "stt" in json.loads(config["versions"])
        recordings = {
            r["stream"]: r for r in db.execute("SELECT * FROM call_recordings WHERE call_id = ?", (call.call_id,))
        }
        assert set(recordings) == set(STREAMS)
        for stream in STREAMS:
            assert abs(recordings[stream]["duration_s"] - durations[stream]) <= 0.03
            assert recordings[stream]["path"] == f"calls/{call.call_id}/{stream}.opus"
        # Customer audio starts the call's media clock; delivered audio plays D later.
        assert abs(recordings["customer"]["media_s"]) < 0.1
        kinds = [
            r["kind"] for r in db.execute("SELECT kind FROM call_events WHERE call_id = ? ORDER BY id", (call.call_id,))
        ]
        assert "state" in kinds and "stats" in kinds
        assert kinds[-2:] == ["ended", "summary"]
        summary = json.loads(
            db.execute(
                "SELECT detail FROM call_events WHERE call_id = ? AND kind = 'summary'", (call.call_id,)
            ).fetchone()[0]
        )
        assert "undecided_s" in summary["stats"]
    assert "call log" not in server.log(), "the call log reported a failure"

    # QA gets the same call through its API: the view, and the recording byte for byte.
    qa = {"Authorization": f"Bearer {(await ApiClient(server.base_url, http).login('quinn', PASSWORD))['token']}"}
    async with http.get(f"{server.base_url}/api/qa/calls/{call.call_id}", headers=qa) as r:
        view = await r.json()
    assert {r["stream"]: r["duration_s"] for r in view["recordings"]} == {
        stream: recordings[stream]["duration_s"] for stream in STREAMS
    }
    async with http.get(f"{server.base_url}/api/qa/calls/{call.call_id}/audio/customer", headers=qa) as r:
        assert await r.read() == (folder / "customer.opus").read_bytes()


async def test_a_killed_server_leaves_a_readable_log(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    server = start_server(tmp_path)
    call: LiveCall | None = None
    try:
        call = await open_call(server, http, counselor="anna", record_s=30)
        await asyncio.sleep(5.0)
        customer_s = sent_s(call, "customer")
        assert server.process is not None
        server.process.kill()
        server.process.wait(timeout=10)
    finally:
        if call is not None:
            await close_peers(call)
        server.stop()

    with read_db(server.data_dir) as db:
        row = db.execute("SELECT * FROM calls WHERE call_id = ?", (call.call_id,)).fetchone()
        assert row is not None and row["ended_at"] is None  # killed: nobody ended it
        assert db.execute("SELECT COUNT(*) FROM call_config WHERE call_id = ?", (call.call_id,)).fetchone()[0] == 1
        kinds = {r[0] for r in db.execute("SELECT kind FROM call_events WHERE call_id = ?", (call.call_id,))}
        assert "state" in kinds and "stats" in kinds
        streams = {r[0] for r in db.execute("SELECT stream FROM call_recordings WHERE call_id = ?", (call.call_id,))}
        assert streams == set(STREAMS)
    folder = server.data_dir / "calls" / call.call_id
    durations = {stream: decoded_seconds(folder / f"{stream}.opus") for stream in STREAMS}
    assert customer_s - 1.5 <= durations["customer"] <= customer_s + 0.5, (durations, customer_s)
    assert durations["counselor"] >= sent_s(call, "counselor") - 1.5, durations
    assert durations["delivered"] >= customer_s - server.delay_s - 1.5, durations
    # The server never wrote the durations; the QA side reads them from the files.
    with read_db(server.data_dir) as db:
        assert all(
            r[0] is None
            for r in db.execute("SELECT duration_s FROM call_recordings WHERE call_id = ?", (call.call_id,))
        )
        record = load_call(db, server.data_dir, call.call_id)
    assert record is not None
    for rec in record.recordings:
        assert rec.duration_s == pytest.approx(durations[rec.stream], abs=0.03), rec
    # Never ended: the call's length runs from its creation to the end of its last recording.
    assert record.summary.duration_s is not None
    assert durations["customer"] <= record.summary.duration_s <= durations["customer"] + 3.0, record.summary


def test_words_decisions_lifts_and_events_are_rows(tmp_path: Path) -> None:
    from moderation.hits import Hit
    from moderation.policy import Decision
    from moderation.speech import Word
    from relay.media.clock import CallClock
    from relay.records.call_log import CallLog
    from relay.records.database import open_database
    from relay.records.db_thread import DirectWrites

    db = open_database(tmp_path / "callguard.db")
    db.execute(
        "INSERT INTO calls (call_id, counselor, created_at, delay_s, invite_hash, invite_expires_at) "
        "VALUES ('c_1', 'anna', 0, 3, x'00', 0)"
    )
    log = CallLog(DirectWrites(db), tmp_path, "c_1", clock=CallClock(wall=lambda: 100.0))
    log.snapshot({"webrtc": {"ice_servers": [{"urls": ["turn:x"], "credential": "s3cret"}]}}, {"stt": "tiny"})
    words = [Word("안녕", 0.1, 0.4, True, 0.9), Word("바보", 0.5, 0.8, True, 0.8)]
    log.sync_words(words[:1])
    log.sync_words(words)  # only the new word is added
    hit = Hit((0,), "keyword", "insult", 1.0, 1.0, "바보", "kw:abc")
    decision = Decision(0.42, 0.92, (words[1],), (hit,), True, 99.0, ("insult",))
    log.decision(decision, 7, 0.0)
    log.on_bus_event({"type": "unmute", "span_id": 7})
    log.on_bus_event({"type": "transcript", "confirmed": []})  # words are logged on their own
    log.close({"stats": {}}, words)
    assert not (tmp_path / "calls").exists()  # no audio, no folder

    assert [tuple(r) for r in db.execute("SELECT text, start, probability FROM call_words ORDER BY start")] == [
        ("안녕", 0.1, 0.9),
        ("바보", 0.5, 0.8),
    ]
    row = db.execute("SELECT * FROM call_decisions").fetchone()
    assert (row["span_id"], row["start"], row["word_start"], row["provisional"], row["lifted_at"]) == (
        7,
        0.42,
        0.5,
        1,
        100.0,
    )
    assert json.loads(row["hits"])[0] == {
        "source": "keyword",
        "category": "insult",
        "score": 1.0,
        "threshold": 1.0,
        "detail": "바보",
        "version": "kw:abc",
        "words": [0],
    }
    assert [r[0] for r in db.execute("SELECT kind FROM call_events ORDER BY id")] == ["unmute", "summary"]
    config = db.execute("SELECT config FROM call_config").fetchone()[0]
    assert "s3cret" not in config and "turn:x" in config


def decoded_mono(path: Path) -> np.ndarray:
    """A recording decoded to int16 mono at 48 kHz, from its sample 0."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    return np.concatenate(chunks)


def burst_signal(seconds: float, seed: int = 7) -> np.ndarray:
    """Noise bursts of random length at random gaps: its envelope correlates at one lag only."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * 48000), dtype=np.float64)
    t = 0.1
    while t < seconds - 0.3:
        length = rng.uniform(0.04, 0.25)
        i0, i1 = int(t * 48000), int((t + length) * 48000)
        out[i0:i1] = rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(300, 1200) * np.arange(i1 - i0) / 48000)
        t += length + rng.uniform(0.05, 0.4)
    return (out * 32767).astype(np.int16)


def locate(a: np.ndarray, start_s: float, end_s: float, b: np.ndarray) -> float:
    """Seconds into b where a's stretch [start_s, end_s) (seconds into a) is, by envelope (1 ms)."""
    ea, eb = envelope(a), envelope(b)
    piece = ea[round(start_s * 1000) : round(end_s * 1000)]
    corr = np.correlate(eb - eb.mean(), piece - piece.mean(), mode="full")  # at j: piece at eb[j - len + 1]
    return (int(np.argmax(corr)) - (len(piece) - 1)) / 1000


async def test_recordings_line_up_when_the_counselor_joins_first_and_both_reconnect(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # The order of the counselor page: the counselor is connected (and recorded) seconds
    # before the customer opens the link; then the counselor's page reloads, then the
    # customer's. Every file must still sit on the one media clock.
    api = ApiClient(server.base_url, http)
    await api.login("anna", PASSWORD)
    created = await api.create_call()
    call_id = created["call_id"]
    customer_api = ApiClient(server.base_url, http, created["invite"]["token"])
    counselors = [CallPeer(MarkerSource(freq=900.0)), CallPeer(MarkerSource(freq=900.0))]
    customers = [CallPeer(RecordingSource(samples=burst_signal(5.0, seed=s))) for s in (7, 8)]
    try:
        await counselors[0].join(api, call_id, "counselor")
        await counselors[0].wait_connected()
        await asyncio.sleep(2.5)
        await customers[0].join(customer_api, call_id, "customer")
        await customers[0].wait_connected()
        await asyncio.sleep(1.5)
        await counselors[1].join(api, call_id, "counselor")  # a reload: a new connection, the same call
        await counselors[0].close()
        await counselors[1].wait_connected()
        await asyncio.sleep(2.0)
        first_until = (await api.call(call_id))["stats"]["received_media_s"]
        await customers[1].join(customer_api, call_id, "customer")  # its timestamps start anew
        await customers[0].close()
        await customers[1].wait_connected()
        await asyncio.sleep(4.0 + server.delay_s + 0.5)  # its bursts, played out to the counselor
    finally:
        for peer in (*counselors, *customers):
            await asyncio.wait_for(peer.close(), 10)
        await api.hangup(call_id)

    with read_db(server.data_dir) as db:
        rows = {r["stream"]: r for r in db.execute("SELECT * FROM call_recordings WHERE call_id = ?", (call_id,))}
    assert all(rows[s]["media_s"] is not None for s in STREAMS), {s: rows[s]["media_s"] for s in STREAMS}
    # The counselor's files began about 2.5 s (plus D for what they heard) before media 0.
    assert -4.5 < rows["delivered"]["media_s"] < -3.0, rows["delivered"]["media_s"]
    assert -3.2 < rows["counselor"]["media_s"] < -1.8, rows["counselor"]["media_s"]
    # So are the events logged before the customer's first audio (the counselor connecting).
    with read_db(server.data_dir) as db:
        states = [
            r[0] for r in db.execute("SELECT media_s FROM call_events WHERE call_id = ? AND kind = 'state'", (call_id,))
        ]
    assert None not in states and min(states) < -2.0, states
    folder = server.data_dir / "calls" / call_id
    original, delivered = decoded_mono(folder / "customer.opus"), decoded_mono(folder / "delivered.opus")
    with read_db(server.data_dir) as db:
        record = load_call(db, server.data_dir, call_id)  # what the QA view and the export read
    assert record is not None
    placed = {r.stream: r for r in record.recordings}
    customer_rec, delivered_rec = placed["customer"], placed["delivered"]
    assert customer_rec.sync == []  # written by media time: one linear run
    # Before and after the customer's reconnect; the counselor's reload lies in the first.
    for m0, m1 in ((0.2, first_until - 0.2), (first_until + 1.0, first_until + 4.0)):
        start = customer_rec.file_at(m0)
        assert start is not None
        found = locate(original, start, start + (m1 - m0), delivered)
        on_timeline = delivered_rec.media_at(found)
        assert on_timeline is not None and abs(on_timeline - m0) <= 0.02, (m0, on_timeline, delivered_rec.sync)
        if m0 < first_until:
            # In wall time the counselor heard it D later: sample 0 of each file is at its started_at.
            in_wall = (delivered_rec.started_at + found) - (customer_rec.started_at + start)
            assert abs(in_wall - server.delay_s) <= 0.02, in_wall

    # The QA view (what the timeline draws from) and the evidence export carry the same placing.
    qa = ApiClient(server.base_url, http)
    await qa.login("quinn", PASSWORD)
    view = await qa.request("GET", f"/api/qa/calls/{call_id}")
    assert {r["stream"]: (r["media_s"], r["sync"]) for r in view["recordings"]} == {
        r.stream: (r.media_s, r.sync) for r in record.recordings
    }
    async with http.get(
        f"{server.base_url}/api/qa/calls/{call_id}/export", headers={"Authorization": f"Bearer {qa.token}"}
    ) as r:
        assert r.status == 200
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    exported = {rec["stream"]: rec for rec in json.loads(archive.read("call.json"))["recordings"]}
    assert {s: (exported[s]["media_s"], exported[s]["sync"]) for s in STREAMS} == {
        r.stream: (r.media_s, r.sync) for r in record.recordings
    }
    assert archive.read("audio/delivered.opus") == (folder / "delivered.opus").read_bytes()
