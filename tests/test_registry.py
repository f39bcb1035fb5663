"""The running-calls registry on a real SQLite file: limits, invites, the reaper's rules."""

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.calls.registry import Calls, InviteRefused, TooManyCalls, TooManyOpenCalls
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import parse_config
from relay.media.clock import CallClock
from relay.records.database import open_database
from relay.records.db_thread import DatabaseThread

CONFIG = parse_config(
    {"calls": {"max_concurrent": 2, "invite_ttl_s": 60, "idle_timeout_s": 5.0}, "stt": {"enabled": False}}
)
STT_OFF = SttService(CONFIG.stt)
CHECKS = TextChecks(CONFIG)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DatabaseThread]:
    database = DatabaseThread(open_database(tmp_path / "calls.db"), queue_max=1000, spill=tmp_path / "spill.jsonl")
    yield database
    database.close(5.0)


async def one(database: DatabaseThread, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row:
    """A row read on the database thread, after the writes queued before it."""
    row: sqlite3.Row = await database.run(lambda: database.db.execute(sql, params).fetchone())
    return row


async def test_limit_and_invites(db: DatabaseThread) -> None:
    calls = Calls(db, CONFIG, STT_OFF, CHECKS)
    first, invite = calls.create("anna")
    calls.create("ben")
    with pytest.raises(TooManyCalls):
        calls.create("anna")
    assert await calls.invited_call(invite.token) is first
    with pytest.raises(InviteRefused, match="unknown"):
        await calls.invited_call("not-a-token")
    # Tokens are stored as hashes only.
    stored = await db.run(lambda: [bytes(r[0]) for r in db.db.execute("SELECT invite_hash FROM calls")])
    assert invite.token.encode() not in b"".join(stored)
    await first.end("hangup")
    with pytest.raises(InviteRefused, match="ended"):
        await calls.invited_call(invite.token)
    calls.create("anna")  # the ended call freed its place
    await calls.stop()


async def test_unused_invite_expires_but_a_joined_customer_may_rejoin(db: DatabaseThread) -> None:
    calls = Calls(db, CONFIG, STT_OFF, CHECKS)
    waiting, unused = calls.create("anna")
    joined, used = calls.create("ben")
    joined.state = "active"  # the customer's audio arrived
    for call in (waiting, joined):
        call.record.invite_expires_at = time.time() - 1
    with pytest.raises(InviteRefused, match="expired"):
        await calls.invited_call(unused.token)
    assert await calls.invited_call(used.token) is joined
    await calls.reap()
    assert waiting.state == "ended" and waiting.record.end_reason == "expired"
    with pytest.raises(InviteRefused, match="expired"):  # still says why, after the call is gone
        await calls.invited_call(unused.token)
    assert joined.state == "active"
    await calls.stop()


async def test_idle_applies_to_active_calls_only(db: DatabaseThread) -> None:
    calls = Calls(db, CONFIG, STT_OFF, CHECKS)
    waiting, _ = calls.create("anna")
    active, _ = calls.create("ben")
    active.state = "active"
    for call in (waiting, active):
        call.last_connected -= 10.0  # nobody connected for longer than idle_timeout_s
    await calls.reap()
    assert active.state == "ended" and active.record.end_reason == "idle"
    assert waiting.state == "waiting"  # its invite is still good: the customer may open it late
    row = await one(db, "SELECT end_reason, ended_at FROM calls WHERE call_id = ?", (active.call_id,))
    assert row["end_reason"] == "idle" and row["ended_at"] is not None
    await calls.stop()


async def test_restart_closes_calls_a_crash_left_open(db: DatabaseThread) -> None:
    calls = Calls(db, CONFIG, STT_OFF, CHECKS)
    left_open, _ = calls.create("anna")
    Calls(db, CONFIG, STT_OFF, CHECKS)  # the next start
    row = await one(db, "SELECT end_reason FROM calls WHERE call_id = ?", (left_open.call_id,))
    assert row["end_reason"] == "server_restart"
    await calls.stop()


async def test_one_counselor_cannot_hold_every_slot(db: DatabaseThread) -> None:
    config = parse_config({"calls": {"max_concurrent": 10, "max_per_counselor": 2}, "stt": {"enabled": False}})
    calls = Calls(db, config, STT_OFF, CHECKS)
    first, _ = calls.create("anna")
    calls.create("anna")
    with pytest.raises(TooManyOpenCalls, match="limit is 2"):
        calls.create("anna")
    calls.create("ben")  # others still get calls
    await first.end("hangup")
    calls.create("anna")  # an ended call frees her place


class ConnectedPeer:
    """Test double for a PeerLink whose ICE stays 'connected' (a closed tab looks so for ~30 s)."""

    state = "connected"

    async def close(self) -> None:
        self.state = "closed"


async def test_a_side_gone_silent_is_lost_then_ends_the_call(db: DatabaseThread) -> None:
    now = [1000.0]
    config = parse_config({"calls": {"lost_after_s": 5.0, "lost_grace_s": 10.0}, "stt": {"enabled": False}})
    calls = Calls(db, config, STT_OFF, CHECKS, CallClock(monotonic=lambda: now[0]))
    call, _ = calls.create("anna")
    call.peers["customer"] = ConnectedPeer()  # type: ignore[assignment]
    call.state = "active"
    sub = call.events.subscribe(staff=True)

    async def tick(seconds: float, audio: bool) -> None:
        for _ in range(int(seconds)):
            now[0] += 1.0
            if audio:
                call.heard["customer"] = now[0]
            await calls.reap()

    await tick(3, audio=True)
    assert call.peer_states()["customer"] == "connected" and call.lost_view() == {}
    assert call.peer_states()["counselor"] == "none"  # never joined: not lost
    await tick(6, audio=False)  # no audio for 6 s
    assert call.peer_states()["customer"] == "lost"
    assert call.lost_view() == {"customer": {"lost_s": 0.0, "ends_in_s": 10.0}}
    published = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    state = [e for e in published if e and e["type"] == "state"][-1]
    assert state["peers"]["customer"] == "lost" and state["lost"]["customer"]["ends_in_s"] == 10.0
    await tick(3, audio=True)  # back (a reload) within the grace
    assert call.peer_states()["customer"] == "connected" and call.state == "active"
    await tick(6 + 9, audio=False)  # lost again (after 6 s without audio), 9 s into the grace
    assert call.state == "active" and call.lost_view()["customer"]["ends_in_s"] == 1.0
    await tick(1, audio=False)
    assert call.state == "ended" and call.record.end_reason == "customer_lost"
    row = await one(db, "SELECT end_reason FROM calls WHERE call_id = ?", (call.call_id,))
    assert row["end_reason"] == "customer_lost"
    sql = "SELECT kind FROM call_events WHERE call_id = ? ORDER BY id"
    kinds = await db.run(lambda: [r[0] for r in db.db.execute(sql, (call.call_id,))])
    assert [k for k in kinds if k in ("lost", "back")] == ["lost", "back", "lost"]
    await calls.stop()


async def test_a_stalled_server_does_not_take_a_side_for_lost(db: DatabaseThread) -> None:
    now = [1000.0]
    config = parse_config({"calls": {"lost_after_s": 5.0}, "stt": {"enabled": False}})
    calls = Calls(db, config, STT_OFF, CHECKS, CallClock(monotonic=lambda: now[0]))
    call, _ = calls.create("anna")
    call.peers["customer"] = ConnectedPeer()  # type: ignore[assignment]
    call.heard["customer"] = now[0]
    await calls.reap()
    now[0] += 8.0  # the event loop stood still: the audio of those seconds is still unread
    await calls.reap()
    assert call.lost_view() == {}
    now[0] += 1.0  # the next check, and still nothing came: now the customer is lost
    await calls.reap()
    assert "customer" in call.lost_view()
    await calls.stop()
