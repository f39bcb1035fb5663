"""One call's log, written as the call runs: audio files under the data folder, rows in SQLite.

Per call, under <data_dir>/calls/<call_id>/ (folder 0700, files 0600: recordings are
personal data, for the server's user only):
    customer.opus   the customer's audio as received (Opus packets as the browser sent them)
    delivered.opus  what the delay line played to the counselor (the packets we sent)
    counselor.opus  the counselor's voice as forwarded to the customer
and in the database (relay/records/database.py): the config and model versions in force
(call_config), each file's place on the call's media clock (call_recordings), every
confirmed word (call_words), every decision with its hits (call_decisions), and the
events (call_events: peers joining and leaving, mutes and lifts, stats with the STT lag
and undecided playout every few seconds, errors, the end).

Nothing here decodes or re-encodes: the relay already has every stream as Opus packets
(relay/records/ogg_opus.py). Packets are buffered and their pages written every FLUSH_INTERVAL_S,
rows are written as things happen: in the server through the database thread
(relay/records/db_thread.py), queued in order, so a slow database never holds the call's
audio and a database that is away gets every row once it is back. A killed server loses
at most the last half second or so, and every file stays readable. A failing disk or
database is logged and never ends the call.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from moderation.policy import Decision
from moderation.speech import Word
from relay.media.audio_format import RATE
from relay.media.clock import CallClock
from relay.records.db_thread import RowId, Writes
from relay.records.ogg_opus import OggOpusWriter, packet_samples

log = logging.getLogger(__name__)

Stream = Literal["customer", "delivered", "counselor"]
# Browsers may send stereo Opus (decoders downmix as they need); our encoder is mono.
CHANNELS: dict[Stream, int] = {"customer": 2, "delivered": 1, "counselor": 2}
FLUSH_INTERVAL_S = 0.5
STATS_INTERVAL_S = 5.0
# Events the log keeps from the call's event bus; words and stats are logged on their own.
BUS_EVENTS = {"state", "mute", "unmute", "hold", "escalation", "reported", "ended", "moderation", "settings"}
# Undecodable frames and the like: the first few are logged, then only counted.
MAX_ERROR_EVENTS = 20
_SECRET_KEYS = ("credential", "password", "secret", "token")


# Where a recording's sample 0 sits on the call's media clock: the customer's own packets
# carry their media time; the delivered stream is on the playout clock (media time playing
# at an instant), the counselor's on the receiving one (media time arriving then, the
# playout clock plus the delay).
Placement = Literal["media", "playout", "received"]
PLACEMENT: dict[Stream, Placement] = {"customer": "media", "delivered": "playout", "counselor": "received"}
# A recording that starts before the customer's first frame is placed once the first
# customer audio has played this long: by then playout's anchor is the one that schedules
# the call (before that it follows the fastest frames freely).
SETTLE_S = 0.1
# The delivered file is what played, sample for sample, in server time; media time runs
# beside it at the customer's clock, steps when playout re-anchors (a reconnect) and lags
# while the elastic delay stretches. Once the two part by this much, a sync point
# (call_recording_sync) says where media time is: a stretch at 0.8x writes one every
# 50 ms, A/B stays within this of the original.
SYNC_TOLERANCE_S = 0.01
# Events logged before the media clock had an anchor (a counselor joining first), kept to
# give them their media time once it has one; a waiting call logs only a few.
MAX_UNPLACED_EVENTS = 200


class Playout(Protocol):
    """The delay line as the log sees it: monotonic time to the media time playing then."""

    @property
    def delay_now_s(self) -> float:
        """The delay applied now (elastic: more than delay_s while a decision is pending)."""
        ...

    def media_time_at(self, wall: float) -> float | None: ...


def call_dir(data_dir: str | Path, call_id: str) -> Path:
    return Path(data_dir) / "calls" / call_id


def redacted(value: Any) -> Any:
    """The config without secrets (ICE credentials and the like), for the snapshot."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if any(s in k.lower() for s in _SECRET_KEYS) and v else redacted(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


class _Recording:
    def __init__(self, writer: OggOpusWriter, origin: int, start: float, media_s: float | None) -> None:
        self.writer = writer
        self.origin = origin  # the stream position of the file's sample 0
        self.start = start  # monotonic time of the file's sample 0
        self.media_s = media_s  # its call media time; None until the media clock has an anchor
        self.sync = (0.0, media_s)  # the newest (file seconds, media seconds) the mapping runs from


class CallLog:
    def __init__(self, writes: Writes, data_dir: str | Path, call_id: str, clock: CallClock = CallClock()) -> None:
        self._writes = writes
        self._data_dir = Path(data_dir)
        self.call_id = call_id
        self.folder = call_dir(data_dir, call_id)
        self._wall = clock.wall
        self._monotonic = clock.monotonic
        self._playout: Playout | None = None
        self._recordings: dict[Stream, _Recording] = {}
        self._failed: set[Stream] = set()
        # (row key, monotonic time) of events logged before the media clock had an anchor.
        self._unplaced_events: collections.deque[tuple[str, float]] = collections.deque()
        self._events = 0
        self._words_done = 0
        self._errors = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ wiring

    def snapshot(self, config: dict[str, Any], versions: dict[str, Any]) -> None:
        self._execute(
            "INSERT OR REPLACE INTO call_config (call_id, at, config, versions) VALUES (?, ?, ?, ?)",
            (self.call_id, self._wall(), _json(redacted(config)), _json(versions)),
        )

    def start(
        self,
        playout: Playout,
        stats: Callable[[], dict[str, Any]],
        words: Callable[[], list[Word] | None],
    ) -> None:
        """Flush pages and new words every FLUSH_INTERVAL_S, stats every STATS_INTERVAL_S."""
        self.set_playout(playout)
        self._task = asyncio.ensure_future(self._run(stats, words))

    def set_playout(self, playout: Playout) -> None:
        """What places delivered and counselor audio on the call's media timeline."""
        self._playout = playout

    async def _run(self, stats: Callable[[], dict[str, Any]], words: Callable[[], list[Word] | None]) -> None:
        next_stats = self._monotonic() + STATS_INTERVAL_S
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                self.flush()
                self.sync_words(words())
                if self._monotonic() >= next_stats:
                    next_stats += STATS_INTERVAL_S
                    self.event("stats", stats())
            except Exception:  # the log must never end the call
                log.exception("call %s: call log tick failed", self.call_id)

    # ------------------------------------------------------------------- audio

    def customer_packet(self, payload: bytes, media_s: float, arrival: float) -> None:
        """A customer packet as received at monotonic `arrival`, placed at its call media time."""
        self._write("customer", payload, round(media_s * RATE), arrival, media_s)

    def counselor_packet(self, payload: bytes, pts: int, arrival: float) -> None:
        """A counselor packet on the forwarder's continuous timeline (48 kHz), arrived at `arrival`."""
        self._write("counselor", payload, pts, arrival)

    def delivered_packet(self, payload: bytes, due: float) -> None:
        """A packet sent to the counselor, played from monotonic time `due`."""
        position = round(due * RATE)
        self._write("delivered", payload, position, due)
        rec = self._recordings.get("delivered")
        if rec is not None and rec.media_s is not None:
            # Synced at the packet's end: playout has just rendered up to there, so that is
            # where the delay line's clock is exact (a 60 ms packet's frames may each have
            # stretched since its start).
            end = position + packet_samples(payload)
            self._follow(rec, "delivered", (end - rec.origin) / RATE, self._media_at("playout", end / RATE))

    def _follow(self, rec: _Recording, stream: Stream, file_s: float, media_s: float | None) -> None:
        """Notes a sync point where the file's media time has parted from its linear run."""
        at_file, at_media = rec.sync
        if media_s is None or at_media is None or abs(at_media + (file_s - at_file) - media_s) <= SYNC_TOLERANCE_S:
            return
        rec.sync = (file_s, media_s)
        self._execute(
            "INSERT INTO call_recording_sync (call_id, stream, file_s, media_s) VALUES (?, ?, ?, ?)",
            (self.call_id, stream, round(file_s, 4), media_s),
        )

    def _write(self, stream: Stream, payload: bytes, position: int, at: float, media_s: float | None = None) -> None:
        rec = self._recordings.get(stream)
        if rec is None:
            if stream in self._failed or self._closed:
                return
            rec = self._open(stream, position, at, media_s)
            if rec is None:
                return
        try:
            rec.writer.write(payload, position - rec.origin)
        except OSError as exc:
            self._fail(stream, exc)

    def _media_at(self, placement: Placement, at: float) -> float | None:
        """Media time of a recording's sample 0 taken at monotonic `at` (None: no anchor yet)."""
        playing = self._playout_media_at(at)
        if playing is None or self._playout is None:
            return None
        return round(playing + (self._playout.delay_now_s if placement == "received" else 0.0), 4)

    def _place(self, final: bool = False) -> None:
        """Puts the recordings that began before the media clock had an anchor on it.

        A side that joins before the customer's first frame starts its file then; once the
        customer's audio has been playing a moment, playout's anchor says which media time
        that instant was (negative: before the first frame).
        """
        pending = [(s, r) for s, r in self._recordings.items() if r.media_s is None]
        if (not pending and not self._unplaced_events) or self._playout is None:
            return
        playing = self._playout.media_time_at(self._monotonic())
        if playing is None or (not final and playing < SETTLE_S):
            return
        while self._unplaced_events:
            key, at = self._unplaced_events.popleft()
            self._place_event(key, self._received_media_at(at))
        for stream, rec in pending:
            rec.media_s = self._media_at(PLACEMENT[stream], rec.start)
            rec.sync = (0.0, rec.media_s)
            self._execute(
                "UPDATE call_recordings SET media_s = ? WHERE call_id = ? AND stream = ?",
                (rec.media_s, self.call_id, stream),
            )

    def _open(self, stream: Stream, origin: int, at: float, media_s: float | None) -> _Recording | None:
        try:
            for folder in (self.folder.parent, self.folder):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(folder, 0o700)
            path = self.folder / f"{stream}.opus"
            writer = OggOpusWriter(path, CHANNELS[stream], serial=zlib.crc32(f"{self.call_id}/{stream}".encode()))
        except OSError as exc:
            self._fail(stream, exc)
            return None
        placement = PLACEMENT[stream]
        if media_s is None and placement != "media" and self._playout_ready():
            media_s = self._media_at(placement, at)
        rec = self._recordings[stream] = _Recording(writer, origin, at, media_s)
        # The wall time of sample 0 (a packet is logged a moment after it was due or came).
        started_at = self._wall() - (self._monotonic() - at)
        self._execute(
            "INSERT OR REPLACE INTO call_recordings (call_id, stream, path, channels, started_at, media_s) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.call_id, stream, str(path.relative_to(self._data_dir)), writer.channels, started_at, media_s),
        )
        return rec

    def _playout_ready(self) -> bool:
        """The media clock's anchor is settled: its mapping will not move any more."""
        playing = None if self._playout is None else self._playout.media_time_at(self._monotonic())
        return playing is not None and playing >= SETTLE_S

    def _fail(self, stream: Stream, exc: OSError) -> None:
        log.error("call %s: %s recording stopped: %s", self.call_id, stream, exc)
        self._failed.add(stream)
        rec = self._recordings.pop(stream, None)
        if rec is not None:
            try:
                rec.writer.close()
            except OSError:
                pass
        self.error("recording", f"{stream}: {exc}")

    def flush(self) -> None:
        self._place()
        for stream, rec in list(self._recordings.items()):
            try:
                rec.writer.flush()
            except OSError as exc:
                self._fail(stream, exc)

    # ----------------------------------------------------------------- records

    def sync_words(self, words: list[Word] | None) -> None:
        """Insert the confirmed words not logged yet (`words` only ever grows; None: no transcription)."""
        new = (words or [])[self._words_done :]
        if not new:
            return
        self._words_done += len(new)
        self._writes.write(
            "INSERT INTO call_words (call_id, start, end, text, confirmed, probability) VALUES (?, ?, ?, ?, ?, ?)",
            [(self.call_id, w.start, w.end, w.text, int(w.confirmed), w.probability) for w in new],
            many=True,
        )

    def decision(self, decision: Decision, span_id: int, late_s: float) -> None:
        hits = [h.record() for h in decision.hits]
        categories = decision.categories or tuple(sorted({h.category for h in decision.hits}))
        self._execute(
            "INSERT OR REPLACE INTO call_decisions (call_id, span_id, start, end, word_start, word_end, words, "
            "provisional, categories, hits, decided_at, late_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.call_id,
                span_id,
                decision.start,
                decision.end,
                decision.key[0],
                decision.key[1],
                _json([w.text for w in decision.words]),
                int(decision.provisional),
                _json(list(categories)),
                _json(hits),
                decision.decided_at,
                late_s,
            ),
        )

    def on_bus_event(self, event: dict[str, Any]) -> None:
        """The call's event bus, observed: peers, mutes and lifts, the end."""
        kind = event.get("type")
        if kind not in BUS_EVENTS:
            return
        if kind == "unmute":
            self._execute(
                "UPDATE call_decisions SET lifted_at = ? WHERE call_id = ? AND span_id = ?",
                (self._wall(), self.call_id, event.get("span_id")),
            )
        self.event(str(kind), {k: v for k, v in event.items() if k != "type"})

    def error(self, kind: str, detail: str) -> None:
        self._errors += 1
        if self._errors <= MAX_ERROR_EVENTS:
            self.event("error", {"kind": kind, "detail": detail, "count": self._errors})

    def event(self, kind: str, detail: dict[str, Any]) -> None:
        now = self._monotonic()
        media_s = self._received_media_at(now)
        self._events += 1
        key = f"{self.call_id}/event/{self._events}" if media_s is None else None
        self._execute(
            "INSERT INTO call_events (call_id, at, media_s, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (self.call_id, self._wall(), media_s, kind, _json(detail)),
            key=key,
        )
        if key is not None:
            if len(self._unplaced_events) >= MAX_UNPLACED_EVENTS:
                self._place_event(self._unplaced_events.popleft()[0], None)
            self._unplaced_events.append((key, now))

    def _place_event(self, key: str, media_s: float | None) -> None:
        """Gives an event logged before the anchor its media time (None: it gets none, and
        the writer forgets the row it remembered)."""
        self._execute("UPDATE call_events SET media_s = ? WHERE id = ?", (media_s, RowId(key)))

    # -------------------------------------------------------------------- end

    def close(self, final_stats: dict[str, Any], words: list[Word] | None) -> None:
        """The last words, the final stats, complete files with their durations."""
        if self._closed:
            return
        if self._task is not None:
            self._task.cancel()
        self.sync_words(words)
        self.event("summary", {**final_stats, "recording_errors": self._errors})
        self._closed = True
        self._place(final=True)
        while self._unplaced_events:  # the customer never sent audio: no media time to give
            self._place_event(self._unplaced_events.popleft()[0], None)
        for stream, rec in list(self._recordings.items()):
            w = rec.writer
            try:
                w.close()
            except OSError as exc:
                log.error("call %s: closing %s recording: %s", self.call_id, stream, exc)
            self._execute(
                "UPDATE call_recordings SET duration_s = ?, packets = ?, filled_s = ? WHERE call_id = ? AND stream = ?",
                (w.duration_s, w.packets, w.filled_s, self.call_id, stream),
            )
        self._recordings.clear()

    # ------------------------------------------------------------------ helpers

    def _playout_media_at(self, wall: float) -> float | None:
        return None if self._playout is None else self._playout.media_time_at(wall)

    def _received_media_at(self, wall: float) -> float | None:
        """Media time of the customer audio arriving at `wall` (None before the first frame)."""
        return self._media_at("received", wall)

    def _execute(self, sql: str, params: tuple[Any, ...], key: str | None = None) -> None:
        self._writes.write(sql, params, key=key)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
