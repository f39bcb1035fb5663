"""One call: its two peers, the delay line between them, and its event stream."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from moderation.hits import Hit
from moderation.policy import Decision
from moderation.speech import Word
from relay.calls import live_settings
from relay.calls.call_metrics import ServerMetrics
from relay.calls.escalation import Escalation
from relay.calls.events import EventBus
from relay.calls.moderation import CallModeration
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.calls.transcription import CallTranscription
from relay.config import Config, DelayConfig, IceServer
from relay.media.audio_format import FRAME_SAMPLES, frames_per_packet
from relay.media.clock import CallClock
from relay.media.delay_line import DelayLine
from relay.media.opus import OpusError, OpusVoiceDecoder
from relay.media.watermark import ClearAll, ClearNothing, JudgedUntil, Watermark
from relay.records.call_log import CallLog
from relay.webrtc.forwarding import ForwardedTrack, PacketForwarder
from relay.webrtc.peer import PeerLink, Side
from relay.webrtc.prompt_mix import PromptMix
from relay.webrtc.tracks import PacedTrack, delayed_encoder

log = logging.getLogger(__name__)

CallState = Literal["waiting", "active", "ended"]
PEER_CLOSE_TIMEOUT_S = 5.0
# Manual mutes, as the call's decision records name them (source "manual").
ManualKind = Literal["span", "dump", "hold"]
# A hold longer than this is a stuck key or a closed page: it ends itself there.
HOLD_MAX_S = 30.0
# A dump of less than this is nothing to dump.
MIN_DUMP_S = 0.02


class NothingToDump(RuntimeError):
    pass


class NotHolding(RuntimeError):
    pass


# Presence is checked about every second; a longer pause means this process stalled, and
# audio that arrived meanwhile is still unread: nobody is taken for lost on that check.
PRESENCE_STALL_S = 2.5


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
        metrics: ServerMetrics | None = None,
        prompt: np.ndarray | None = None,
    ) -> None:
        self.record = record
        self.clock = clock
        self._config = config
        self._stt = stt
        self._checks = checks
        self._on_ended = on_ended
        self.state: CallState = "waiting"
        self.events = EventBus()
        # Switched off, everything is cleared; no model, nothing is, and the undecided
        # policy decides; with an engine (a local one loaded, or the tier's client even
        # while the tier is away), the transcription moves the watermark as it judges.
        judged = JudgedUntil()
        engine = stt.engine is not None
        watermark: Watermark = judged if engine else ClearAll() if stt.state == "off" else ClearNothing()
        # The delay line renders one outgoing packet a pull (relay/webrtc/tracks.py).
        self._delayed_frames = frames_per_packet(config.webrtc.delayed_ptime_ms)
        self.delay_line = DelayLine(config.delay, watermark, frame_samples=self._delayed_frames * FRAME_SAMPLES)
        self.moderation: CallModeration | None = None
        self.transcription: CallTranscription | None = None
        if engine:
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
        self._metrics = metrics
        if self.moderation is not None:
            self.moderation.on_decision = self._decided
            if metrics is not None:
                self.moderation.on_lag = metrics.decision_lag.observe
        self.escalation = Escalation(config.escalation)
        self.events.observers.append(self.escalation.observe)
        self.prompt = PromptMix(prompt) if prompt is not None and prompt.size else None
        self._hold: tuple[int, float] | None = None  # (open span id, start) while a hold lasts
        self._ending: asyncio.Task[None] | None = None
        # Decodes the customer's current connection (each connection is its own Opus stream).
        self._decoder: OpusVoiceDecoder | None = None
        self._decoder_peer = 0
        self.peers: dict[Side, PeerLink | None] = {"customer": None, "counselor": None}
        # Monotonic time a peer was last seen connected (or the call created): drives the
        # idle timeout.
        self.last_connected = clock.monotonic()
        # Presence: when each side's audio last arrived (None: it has not joined yet), and
        # since when a side that joined has been lost (no audio for calls.lost_after_s).
        self.heard: dict[Side, float | None] = {"customer": None, "counselor": None}
        self.lost_since: dict[Side, float | None] = {"customer": None, "counselor": None}
        self._presence_checked: float | None = None
        # The invite's token, for its counselor to see again (a page reload) until the
        # customer joins; the database keeps only its hash.
        self.invite_token: str | None = None
        self._stats_task = asyncio.ensure_future(self._publish_stats())
        # The call log sees the audio, the words, the decisions and the events; it lives
        # in relay/records/call_log.py, the call only hands it things.
        self.log = call_log
        if call_log is not None:
            self.events.observers.append(call_log.on_bus_event)
            call_log.start(self.delay_line, self._log_stats, self._words)

    @property
    def config(self) -> Config:
        """The settings this call runs on: the server's at its start, with any live change."""
        return self._config

    @property
    def call_id(self) -> str:
        return self.record.call_id

    def peer_states(self) -> dict[str, str]:
        states: dict[str, str] = {side: (peer.state if peer else "none") for side, peer in self.peers.items()}
        for side, since in self.lost_since.items():
            # A lost side reconnecting shows that; otherwise it is lost, whatever ICE says.
            if since is not None and states[side] != "connecting":
                states[side] = "lost"
        return states

    def lost_view(self) -> dict[str, dict[str, float]]:
        """The lost sides: how long ago they went, and how long they have left to return."""
        now, grace = self.clock.monotonic(), self._config.calls.lost_grace_s
        return {
            side: {"lost_s": round(now - since, 1), "ends_in_s": round(max(0.0, since + grace - now), 1)}
            for side, since in self.lost_since.items()
            if since is not None
        }

    def check_presence(self) -> Side | None:
        """Notes sides that went silent or came back; returns a side lost beyond its grace.

        A side is present while its connection is up (or coming up again) and its audio keeps coming (browsers
        send a frame every 20 ms, silence included). A closed tab leaves ICE 'connected'
        for about 30 s, so the audio, not the connection state, says who has gone.
        """
        now, calls = self.clock.monotonic(), self._config.calls
        stalled = self._presence_checked is not None and now - self._presence_checked > PRESENCE_STALL_S
        self._presence_checked = now
        changed = False
        for side, heard in self.heard.items():
            if heard is None:
                continue  # never joined: waiting, not lost
            peer = self.peers[side]
            # A side reconnecting (a reload) is not lost while its last audio is recent.
            up = peer is not None and peer.state in ("connected", "connecting")
            present = up and now - heard <= calls.lost_after_s
            since = self.lost_since[side]
            if present and since is not None:
                self.lost_since[side] = None
                changed = True
                log.info("call %s: %s is back after %.1f s", self.call_id, side, now - since)
                if self.log is not None:
                    self.log.event("back", {"side": side, "lost_s": round(now - since, 1)})
            elif not present and since is None and not stalled:
                self.lost_since[side] = now
                changed = True
                log.info("call %s: %s lost (no audio for %.1f s)", self.call_id, side, now - heard)
                if self.log is not None:
                    self.log.event("lost", {"side": side, "silent_s": round(now - heard, 1)})
        if changed:
            self._publish_state()
        for side, since in self.lost_since.items():
            if since is not None and now - since >= calls.lost_grace_s:
                return side
        return None

    def any_connected(self) -> bool:
        return any(p is not None and p.state == "connected" for p in self.peers.values())

    async def accept_offer(self, side: Side, offer_sdp: str) -> str:
        """Answer a side's offer; a side that offers again replaces its old connection."""
        old = self.peers[side]
        outgoing: MediaStreamTrack
        if side == "customer":
            outgoing, sink = ForwardedTrack(self.forwarder, self.prompt), self._customer_frame
        else:
            on_packet = None if self.log is None else self.log.delivered_packet
            frames = self._delayed_frames
            outgoing, sink = (
                PacedTrack(
                    self.delay_line,
                    self.clock.monotonic,
                    on_packet=on_packet,
                    encoder=delayed_encoder(frames),
                    frames_per_packet=frames,
                ),
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
            self._config.webrtc.uplink_ptime_ms,
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

    def add_mute(self, start: float, end: float, by: str, kind: ManualKind = "span") -> dict[str, Any]:
        """A staff member's mute: a decision record like moderation's, with source "manual"."""
        span, late_s = self.delay_line.add_mute(start, end, reason=f"manual:{by}")
        if late_s > 0:
            log.warning("call %s: mute %.2f-%.2f arrived %.3f s late", self.call_id, start, end, late_s)
        hit = Hit(words=(), source="manual", category=kind, score=1.0, threshold=1.0, detail=f"by {by}", version="")
        decision = Decision(span.start, span.end, (), (hit,), False, self.clock.wall(), (kind,))
        self._decided(decision, span.span_id, late_s)
        event = {
            "type": "mute",
            "span_id": span.span_id,
            "start": span.start,
            "end": span.end,
            "provisional": False,
            "reason": "manual",
            "kind": kind,
        }
        self.events.publish(event, staff_only=True)
        return {**event, "late_s": late_s}

    def dump(self, by: str) -> dict[str, Any]:
        """Mute everything still in the buffer: from what the counselor has heard to the
        newest audio received."""
        heard = self.delay_line.stats().playout_media_s
        newest = self.delay_line.received_media_s
        if newest - heard < MIN_DUMP_S:
            raise NothingToDump(f"only {max(0.0, newest - heard):.3f} s of audio is waiting to be played")
        return self.add_mute(heard, newest, by, "dump")

    def hold_start(self, by: str) -> dict[str, Any]:
        """Mute from what the counselor hears now until hold_stop (or HOLD_MAX_S)."""
        if self._hold is None:
            start = self.delay_line.stats().playout_media_s
            span, _ = self.delay_line.add_mute(start, start + HOLD_MAX_S, reason=f"manual:{by}")
            self._hold = (span.span_id, start)
            self.events.publish({"type": "hold", "state": "on", "start": start, "by": by}, staff_only=True)
        return {"holding": True, "start": self._hold[1]}

    def hold_stop(self, by: str) -> dict[str, Any]:
        """End the hold where the counselor's playout is now; the held stretch becomes one
        manual mute span."""
        if self._hold is None:
            raise NotHolding("no hold is on")
        span_id, start = self._hold
        self._hold = None
        end = min(max(self.delay_line.stats().playout_media_s, start + MIN_DUMP_S), start + HOLD_MAX_S)
        # Within one tick of the event loop: no frame is rendered between the two.
        self.delay_line.lift_mute(span_id)
        self.events.publish({"type": "hold", "state": "off", "end": end, "by": by}, staff_only=True)
        return self.add_mute(start, end, by, "hold")

    def change_settings(self, delay: DelayConfig, by: str) -> dict[str, Any]:
        """A supervisor's live change of the delay settings (relay/calls/live_settings.py):
        heard from the next frame on, without a jump, and on the call's record for QA."""
        changes = live_settings.difference(self._config.delay, delay)
        self._config = dataclasses.replace(self._config, delay=delay)
        self.delay_line.reconfigure(delay)
        self.record.delay_s = delay.delay_s
        if self.moderation is not None:
            self.moderation.moderator.mute_skipped = delay.undecided_policy == "mute"
        after = live_settings.view(delay)
        log.info("call %s: settings changed by %s: %s", self.call_id, by, changes or "nothing")
        self.events.publish({"type": "settings", "by": by, "settings": after, "changed": changes}, staff_only=True)
        return after

    def end_and_report(self, by: str) -> asyncio.Task[None]:
        """The counselor's one button at the escalation limit: logged, then the call ends."""
        self.events.publish({"type": "reported", "by": by, **self.escalation.view()}, staff_only=True)
        return self._end_soon("abuse_reported")

    def _end_soon(self, reason: str) -> asyncio.Task[None]:
        # From within the call's own tasks: end() cancels them, so it runs on its own.
        if self._ending is None:
            self._ending = asyncio.ensure_future(self.end(reason))
        return self._ending

    def _decided(self, decision: Decision, span_id: int, late_s: float) -> None:
        if self.log is not None:
            self.log.decision(decision, span_id, late_s)
        if self._metrics is not None:
            self._metrics.mute((h.source, h.category) for h in decision.hits)

    def _escalate(self) -> None:
        for stage in self.escalation.tick(self.delay_line.stats().playout_media_s):
            event: dict[str, Any] = {"type": "escalation", "stage": stage, **self.escalation.view()}
            if stage == "warning" and self.prompt is not None:
                self.prompt.start()
                event["prompt_s"] = round(self.prompt.duration_s, 2)
            if stage == "limit":
                event["action"] = self._config.escalation.on_limit
            log.info("call %s: escalation %s after %d abuse spans", self.call_id, stage, self.escalation.abuse_spans)
            self.events.publish(event)
            if stage == "limit" and self._config.escalation.on_limit == "end":
                self._end_soon("abuse")

    async def end(self, reason: str) -> None:
        if self.state == "ended":
            return
        if self._hold is not None:  # the held stretch so far stays muted, on the record
            self.hold_stop(self.record.counselor)
        self.state = "ended"
        self.record.ended_at = self.clock.wall()
        self.record.end_reason = reason
        self.invite_token = None
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
        view["lost"] = self.lost_view()
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
            "settings": live_settings.view(self._config.delay),
            "escalation": self.escalation.view(),
            "holding": self._hold is not None,
            "provisional_spans": sum(1 for m in self.delay_line.mutes.spans() if m.provisional),
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
                "counselor_packets_late": self.forwarder.late,
            },
        }

    def _ice(self) -> list[IceServer]:
        return self._config.webrtc.ice_servers

    def _customer_frame(self, pts: int, payload: bytes, arrival: float, peer_id: int) -> None:
        if self._decoder is None or peer_id != self._decoder_peer:
            self._decoder, self._decoder_peer = OpusVoiceDecoder(), peer_id
        try:
            samples = self._decoder.decode(payload)
        except OpusError as exc:
            log.warning("call %s: undecodable customer frame: %s", self.call_id, exc)
            if self.log is not None:
                self.log.error("undecodable_customer_frame", str(exc))
            return
        self.heard["customer"] = arrival
        media_start = self.delay_line.push(pts, samples, arrival, source=peer_id)
        if self.log is not None and media_start is not None:
            self.log.customer_packet(payload, media_start, arrival)
        if self.transcription is not None and media_start is not None:
            self.transcription.feed(samples, media_start)
        if self.state == "waiting":
            self.state = "active"
            self.invite_token = None  # joined: the counselor no longer needs the link
            self._publish_state()

    def _counselor_frame(self, pts: int, payload: bytes, arrival: float, peer_id: int) -> None:
        self.heard["counselor"] = arrival
        out_pts = self.forwarder.push(pts, payload, source=peer_id)
        if self.log is not None:
            self.log.counselor_packet(payload, out_pts, arrival)

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
        self.events.publish(self.state_event())

    def state_event(self) -> dict[str, Any]:
        return {"type": "state", "state": self.state, "peers": self.peer_states(), "lost": self.lost_view()}

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._escalate()
            if len(self.events):
                info = self.info(staff=True)
                self.events.publish(
                    {"type": "stats", "stats": info["stats"], "moderation": info["moderation"]},
                    staff_only=True,
                    droppable=True,
                )


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
