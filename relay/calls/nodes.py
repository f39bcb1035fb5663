"""Relay nodes sharing one database: which node runs a call, who is alive, who is draining.

A call lives on the node that created it, and its id says which (c_NODE.TOKEN): any node
can route the call's signalling there (relay/web/node_proxy.py) with no lookup table to
keep consistent. Each node writes a heartbeat to the nodes table; a node silent for
cluster.dead_after_s has died without ending its calls (killed, power lost), so the
others end them in the log as node_lost: QA then sees ended calls, not calls running
forever. A draining node takes no new calls and says so to load balancers.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from relay.config import Config
from relay.media.clock import CallClock
from relay.records.db_thread import DatabaseThread

log = logging.getLogger(__name__)


def call_node(call_id: str) -> str:
    """The node a call id names ("" for a one-machine id)."""
    token = call_id[2:] if call_id.startswith("c_") else ""
    node, dot, _ = token.partition(".")
    return node if dot else ""


def node_url(config: Config) -> str:
    if config.cluster.url:
        return config.cluster.url.rstrip("/")
    scheme = "https" if config.server.tls_cert else "http"
    return f"{scheme}://{config.server.host}:{config.server.port}"


@dataclass(frozen=True)
class Node:
    name: str
    url: str
    seen_at: float
    draining: bool


class Membership:
    def __init__(
        self, database: DatabaseThread, config: Config, draining: Callable[[], bool], clock: CallClock = CallClock()
    ) -> None:
        self._database = database
        self._draining = draining
        self._config = config.cluster
        self._clock = clock
        self.name = config.cluster.node
        self.url = node_url(config)
        self.started_at = clock.wall()
        self._task: asyncio.Task[None] | None = None

    @property
    def clustered(self) -> bool:
        return bool(self.name)

    async def start(self) -> None:
        if self.clustered:
            await self.beat()
            self._task = asyncio.ensure_future(self._beat_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.clustered:
            try:  # a clean stop leaves no heartbeat to wait out
                await self._database.run(self._sign_off)
            except sqlite3.Error:
                log.exception("node %s: could not sign off", self.name)

    def _sign_off(self) -> None:
        self._database.db.execute("DELETE FROM nodes WHERE name = ?", (self.name,))

    async def beat(self) -> None:
        """Says this node is alive (and whether it drains); ends the calls of silent nodes."""
        await self._database.run(self._beat)

    def _beat(self) -> None:
        now = self._clock.wall()
        db = self._database.db
        db.execute(
            "INSERT OR REPLACE INTO nodes (name, url, started_at, seen_at, draining) VALUES (?, ?, ?, ?, ?)",
            (self.name, self.url, self.started_at, now, self._draining()),
        )
        lost = db.execute(
            "UPDATE calls SET ended_at = ?, end_reason = 'node_lost' WHERE ended_at IS NULL AND node != '' "
            "AND node != ? AND node NOT IN (SELECT name FROM nodes WHERE seen_at >= ?)",
            (now, self.name, now - self._config.dead_after_s),
        ).rowcount
        if lost:
            silent = self._config.dead_after_s
            log.warning("node %s: ended %d call(s) of nodes silent for %.0f s", self.name, lost, silent)

    async def alive(self) -> list[Node]:
        return await self._database.run(self._alive)

    def _alive(self) -> list[Node]:
        since = self._clock.wall() - self._config.dead_after_s
        rows = self._database.db.execute(
            "SELECT name, url, seen_at, draining FROM nodes WHERE seen_at >= ? ORDER BY name", (since,)
        ).fetchall()
        return [Node(r["name"], r["url"], r["seen_at"], bool(r["draining"])) for r in rows]

    async def url_of(self, name: str) -> str | None:
        """Where a live node answers; None when it is unknown or silent too long."""
        return next((n.url for n in await self.alive() if n.name == name), None)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_s)
            try:
                await self.beat()
            except sqlite3.Error:  # the database is away for a moment: calls go on, try again
                log.exception("node %s: heartbeat failed", self.name)
