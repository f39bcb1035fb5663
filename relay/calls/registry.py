"""The running calls: creation under the concurrency limit, invites, ending, reaping."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from dataclasses import dataclass

import numpy as np

from relay.calls.call import Call, CallRecord
from relay.calls.call_metrics import ServerMetrics
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import Config
from relay.media.clock import CallClock
from relay.records.call_log import CallLog
from relay.records.db_thread import DatabaseThread
from relay.web.accounts import token_digest

log = logging.getLogger(__name__)


class TooManyCalls(RuntimeError):
    pass


class Draining(RuntimeError):
    """This node is draining for an upgrade: running calls finish, new ones go elsewhere."""


class TooManyOpenCalls(TooManyCalls):
    """This counselor already holds calls.max_per_counselor calls."""


class InviteRefused(LookupError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invite:
    call_id: str
    token: str
    expires_at: float


class Calls:
    def __init__(
        self,
        database: DatabaseThread,
        config: Config,
        stt: SttService,
        checks: TextChecks,
        clock: CallClock = CallClock(),
        prompt: np.ndarray | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._config = config
        self._stt = stt
        self._checks = checks
        self._calls: dict[str, Call] = {}
        self._prompt = prompt  # the escalation warning every call plays (relay/media/prompt.py)
        self.metrics = ServerMetrics(stt, checks, self.all, database.stats)
        self._reaper: asyncio.Task[None] | None = None
        self.node = config.cluster.node
        self.draining = False
        # Calls left open by this node when it stopped without ending them (other nodes'
        # calls sharing the database are theirs).
        database.write(
            "UPDATE calls SET ended_at = ?, end_reason = 'server_restart' WHERE ended_at IS NULL AND node = ?",
            (clock.wall(), self.node),
        )

    def reconfigure(self, config: Config, prompt: np.ndarray | None = None) -> None:
        """A reloaded config (relay/calls/config_reload.py): calls created from now on take
        it (delay, policy, escalation); running calls keep the settings they started with."""
        self._config = config
        if prompt is not None:
            self._prompt = prompt

    def start(self) -> None:
        self._reaper = asyncio.ensure_future(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await asyncio.gather(*(call.end("shutdown") for call in list(self._calls.values())))

    def create(self, counselor: str) -> tuple[Call, Invite]:
        if self.draining:
            node = self.node or "this server"
            raise Draining(f"node {node} is draining: running calls finish, new ones go elsewhere")
        if len(self._calls) >= self._config.calls.max_concurrent:
            raise TooManyCalls(
                f"{len(self._calls)} calls are running, the limit is {self._config.calls.max_concurrent}"
            )
        # One counselor must not hold every slot with calls nobody joins.
        mine = sum(1 for call in self._calls.values() if call.record.counselor == counselor)
        if mine >= self._config.calls.max_per_counselor:
            raise TooManyOpenCalls(
                f"you have {mine} calls open, the limit is {self._config.calls.max_per_counselor}: end one first"
            )
        now = self._clock.wall()
        token = secrets.token_urlsafe(32)
        record = CallRecord(
            # The call id names its node: any node routes the call's signalling there.
            call_id="c_" + (f"{self.node}." if self.node else "") + secrets.token_urlsafe(12),
            counselor=counselor,
            created_at=now,
            delay_s=self._config.delay.delay_s,
            invite_expires_at=now + self._config.calls.invite_ttl_s,
        )
        self._database.write(
            "INSERT INTO calls (call_id, counselor, created_at, delay_s, invite_hash, invite_expires_at, node) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.call_id, counselor, now, record.delay_s, token_digest(token), record.invite_expires_at, self.node),
        )
        call_log = CallLog(self._database, self._config.server.data_dir, record.call_id, self._clock)
        call_log.snapshot(self._config.to_dict(), {"stt": self._stt.view(), **self._checks.view()})
        call = Call(
            record,
            self._config,
            self._stt,
            self._checks,
            self._ended,
            call_log,
            self._clock,
            metrics=self.metrics,
            prompt=self._prompt,
        )
        call.invite_token = token
        self._calls[record.call_id] = call
        log.info("call %s created by %s", record.call_id, counselor)
        return call, Invite(record.call_id, token, record.invite_expires_at)

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def all(self) -> list[Call]:
        return list(self._calls.values())

    async def invited_call(self, token: str) -> Call:
        """The running call this invite token admits to; InviteRefused says why not.

        The expiry bounds how long an unused link works; a customer who has joined may
        rejoin (page reload, network change) for as long as the call lasts.
        """
        row = await self._database.run(self._invite, token_digest(token))
        if row is None:
            raise InviteRefused("unknown")
        call = self._calls.get(row["call_id"])
        if call is None:
            raise InviteRefused("expired" if row["end_reason"] == "expired" else "ended")
        if call.state == "waiting" and self._clock.wall() > call.record.invite_expires_at:
            raise InviteRefused("expired")
        return call

    def _invite(self, digest: bytes) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._database.db.execute(
            "SELECT call_id, end_reason FROM calls WHERE invite_hash = ?", (digest,)
        ).fetchone()
        return row

    def _ended(self, call: Call) -> None:
        self._calls.pop(call.call_id, None)
        self.metrics.call_ended(call)
        r = call.record
        self._database.write(
            "UPDATE calls SET ended_at = ?, end_reason = ? WHERE call_id = ?", (r.ended_at, r.end_reason, r.call_id)
        )
        log.info("call %s ended: %s", r.call_id, r.end_reason)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self.reap()

    async def reap(self) -> None:
        now_wall, now_mono = self._clock.wall(), self._clock.monotonic()
        for call in list(self._calls.values()):
            # A waiting call lives as long as its invite: the customer may open it late.
            if call.state == "waiting":
                if now_wall > call.record.invite_expires_at:
                    await call.end("expired")
            if call.state == "ended":
                continue
            if (side := call.check_presence()) is not None:
                await call.end(f"{side}_lost")
            elif (
                call.state == "active"
                and not call.any_connected()
                and now_mono - call.last_connected > self._config.calls.idle_timeout_s
            ):
                await call.end("idle")
