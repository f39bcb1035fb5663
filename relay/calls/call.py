"""One call: its two peers, the delay line between them, and its event stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import av
from aiortc.mediastreams import MediaStreamTrack

from moderation.speech import Word
from relay.calls.events import EventBus
from relay.calls.moderation import CallModeration
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.calls.transcription import CallTranscription
from relay.config import Config, IceServer
from relay.media.clock import CallClock
from relay.media.delay_line import DelayLine
from relay.media.watermark import ClearAll, ClearNothing, JudgedUntil, Watermark
from relay.records.call_log import CallLog
from relay.webrtc.forwarding import ForwardedTrack, PacketForwarder
from relay.webrtc.peer import PeerLink, Side
from relay.webrtc.tracks import OpusVoiceDecoder, PacedTrack

log = logging.getLogger(__name__)

CallState = Literal["waiting", "active", "ended"]
PEER_CLOSE_TIMEOUT_S = 5.0


@dataclass
class CallRecord:
    call_id: str
    counselor: str
    created_at: float
    delay_s: float
    invite_expires_at: float
    ended_at: float | None = None
    end_reason: str | None = None


class Call:
    def __init__(
        self,
        record: CallRecord,
        config: Config,
        stt: SttService,
        checks: TextChecks,
        on_ended: Callable[[Call], None],
        call_log: CallLog | None = None,
        clock: CallClock = CallClock(),
    ) -> None:
        self.record = record
        self.clock = clock
        self._config = config
        self._stt = stt
        self._checks = checks
        self._on_ended = on_ended
        self.state: CallState = "waiting"
        self.events = EventBus()
        # Switched off, everything is cleared; unavailable, nothing is, and the undecided
        # policy decides; ready, the transcription moves the watermark as it judges.
        judged = JudgedUntil()
        watermark: Watermark = judged if stt.state == "ready" else ClearAll() if stt.state == "off" else ClearNothing()
        self.delay_line = DelayLine(config.delay, watermark)
        self.moderation: CallModeration | None = None
        self.transcription: CallTranscription | None = None
        if stt.state == "ready":
            self.moderation = CallModeration(
                record.call_id,
                checks.check,
                config.policy,
                self.delay_line,
                self.events,
                mute_skipped=config.delay.undecided_policy == "mute",
                prefix_check=checks.prefixes,
            )
            self.transcription = CallTranscription(
                record.call_id, stt, self.delay_line, judged, self.events, clock, judge=self.moderation.judge
            )
        self.forwarder = PacketForwarder(clock.monotonic)
        # Decodes the customer's current connection (each connection is its own Opus stream).
        self._decoder: OpusVoiceDecoder | None = None
        self._decoder_peer = 0
        self.peers: dict[Side, PeerLink | None] = {"customer": None, "counselor": None}
        # Monotonic time a peer was last seen connected (or the call created): drives the
        # idle timeout.
        self.last_connected = clock.monotonic()
        self._stats_task = asyncio.ensure_future(self._publish_stats())
        # The call log sees the audio, the words, the decisions and the events; it lives
        # in relay/records/call_log.py, the call only hands it things.
        self.log = call_log
        if call_log is not None:
            self.events.observers.append(call_log.on_bus_event)
            if self.moderation is not None:
                self.moderation.on_decision = call_log.decision
            call_log.start(self.delay_line, self._log_stats, self._words)

    @property
    def call_id(self) -> str:
        return self.record.call_id

    def peer_states(self) -> dict[str, str]:
        return {side: (peer.state if peer else "none") for side, peer in self.peers.items()}

    def any_connected(self) -> bool:
        return any(p is not None and p.state == "connected" for p in self.peers.values())

    async def accept_offer(self, side: Side, offer_sdp: str) -> str:
        """Answer a side's offer; a side that offers again replaces its old connection."""
        old = self.peers[side]
        outgoing: MediaStreamTrack
        if side == "customer":
            outgoing, sink = ForwardedTrack(self.forwarder), self._customer_frame
        else:
            on_packet = None if self.log is None else self._delivered_packet
            outgoing, sink = (
                PacedTrack(self.delay_line, self.clock.monotonic, on_packet=on_packet),
                self._counselor_frame,
            )
        link = PeerLink(
            side,
            self._ice(),
            outgoing,
            sink,
            self._peer_changed,
            self._config.calls.connect_timeout_s,
            self.clock.monotonic,
        )
        self.peers[side] = link
        if old is not None:
            await old.close()
        try:
            answer = await link.answer(offer_sdp)
        except Exception:
            self.peers[side] = None
            await link.close()
            raise
        self._publish_state()
        return answer

    def add_mute(self, start: float, end: float, reason: str) -> dict[str, Any]:
        span, late_s = self.delay_line.add_mute(start, end, reason=reason)
        if late_s > 0:
            log.warning("call %s: mute %.2f-%.2f arrived %.3f s late", self.call_id, start, end, late_s)
        event = {"type": "mute", "span_id": span.span_id, "start": span.start, "end": span.end, "reason": "manual"}
        self.events.publish(event, staff_only=True)
        return {**event, "late_s": late_s}

    async def end(self, reason: str) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.record.ended_at = self.clock.wall()
        self.record.end_reason = reason
        self._stats_task.cancel()
        peers = [p for p in self.peers.values() if p is not None]
        self.peers = {"customer": None, "counselor": None}
        try:
            # A peer stuck closing must not keep the call (and the reaper) from ending.
            await asyncio.wait_for(asyncio.gather(*(p.close() for p in peers)), PEER_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.error("call %s: peer connections did not close within %.0f s", self.call_id, PEER_CLOSE_TIMEOUT_S)
        self.events.publish({"type": "ended", "reason": reason})
        self.events.close()
        # Both sides have gone by now; the last words are only for the call's record.
        if self.transcription is not None:
            await self.transcription.close()
        if self.log is not None:  # after the final pass: its words and decisions are logged too
            self.log.close(self._log_stats(), self._words())
        self._on_ended(self)

    def info(self, staff: bool) -> dict[str, Any]:
        view: dict[str, Any] = {"call_id": self.call_id, "state": self.state, "peers": self.peer_states()}
        if not staff:
            return view
        r = self.record
        stats = self.delay_line.stats()
        cleared = self.delay_line.watermark.cleared_until()
        return {
            **view,
            "counselor": r.counselor,
            "created_at": r.created_at,
            "ended_at": r.ended_at,
            "end_reason": r.end_reason,
            "delay_s": r.delay_s,
            "undecided_policy": self._config.delay.undecided_policy,
            "moderation": {
                **self._stt.view(),
                **(self.transcription.view() if self.transcription else {}),
                **(self.moderation.view() if self.moderation else {}),
                **self._checks.view(),
            },
            "stats": {
                **{k: _rounded(v) for k, v in vars(stats).items()},
                "cleared_until_s": None if cleared == float("inf") else cleared,
                "counselor_packets_forwarded": self.forwarder.forwarded,
                "counselor_packets_dropped": self.forwarder.dropped,
            },
        }

    def _ice(self) -> list[IceServer]:
        return self._config.webrtc.ice_servers

    def _customer_frame(self, pts: int, payload: bytes, arrival: float, peer_id: int) -> None:
        if self._decoder is None or peer_id != self._decoder_peer:
            self._decoder, self._decoder_peer = OpusVoiceDecoder(), peer_id
        try:
            samples = self._decoder.decode(payload)
        except av.FFmpegError as exc:
            log.warning("call %s: undecodable customer frame: %s", self.call_id, exc)
            if self.log is not None:
                self.log.error("undecodable_customer_frame", str(exc))
            return
        media_start = self.delay_line.push(pts, samples, arrival, source=peer_id)
        if self.log is not None and media_start is not None:
            self.log.customer_packet(payload, media_start)
        if self.transcription is not None and media_start is not None:
            self.transcription.feed(samples, media_start)
        if self.state == "waiting":
            self.state = "active"
            self._publish_state()

    def _counselor_frame(self, pts: int, payload: bytes, arrival: float, peer_id: int) -> None:
        out_pts = self.forwarder.push(pts, payload, source=peer_id)
        if self.log is not None:
            self.log.counselor_packet(payload, out_pts, arrival)

    def _delivered_packet(self, packet: av.Packet[Any], due: float) -> None:
        assert self.log is not None
        self.log.delivered_packet(bytes(packet), due)

    def _words(self) -> list[Word] | None:
        return None if self.transcription is None else self.transcription.words

    def _log_stats(self) -> dict[str, Any]:
        # Where playout ran slowed since the last stats, for QA's timeline (the log calls
        # this every few seconds and once at the end).
        if self.log is not None:
            for s in self.delay_line.elastic.take_stretches():
                self.log.event("stretch", s.record())
        info = self.info(staff=True)
        return {"stats": info["stats"], "moderation": info["moderation"], "peers": info["peers"]}

    def _peer_changed(self, peer: PeerLink) -> None:
        if self.peers.get(peer.side) is not peer:
            return  # a replaced connection winding down
        if peer.state == "connected" or self.any_connected():
            self.last_connected = self.clock.monotonic()
        self._publish_state()

    def _publish_state(self) -> None:
        self.events.publish({"type": "state", "state": self.state, "peers": self.peer_states()})

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if len(self.events):
                info = self.info(staff=True)
                self.events.publish(
                    {"type": "stats", "stats": info["stats"], "moderation": info["moderation"]},
                    staff_only=True,
                    droppable=True,
                )


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
