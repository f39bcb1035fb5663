"""One call's customer audio through streaming transcription, and back to the call.

The customer's decoded audio is resampled and fed to the call's StreamingTranscriber as
it arrives; passes run on the shared worker threads, one at a time per call. Each pass's
words are judged (relay/calls/moderation.py) before the pass counts: it moves the call's
watermark only to what has been transcribed AND judged. The words
reach the counselor's page as their audio is played, so text and sound agree, with muted
words masked.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from moderation.resample import Resampler48kTo16k
from moderation.speech import TranscriptUpdate, Word
from moderation.stt_remote import TierUnavailable
from moderation.transcriber import StreamingTranscriber
from relay.calls.events import EventBus
from relay.calls.speech_service import SttService
from relay.media.audio_format import RATE
from relay.media.clock import CallClock
from relay.media.delay_line import DelayLine
from relay.media.watermark import JudgedUntil

log = logging.getLogger(__name__)

# How often words are checked for having reached playout: text within 0.1 s of sound.
RELEASE_INTERVAL_S = 0.1
# A transcriber whose final pass takes longer than this at hangup is abandoned.
FINISH_TIMEOUT_S = 10.0


class CallTranscription:
    def __init__(
        self,
        call_id: str,
        service: SttService,
        delay_line: DelayLine,
        watermark: JudgedUntil,
        events: EventBus,
        clock: CallClock,
        judge: Callable[[TranscriptUpdate], Awaitable[None]] | None = None,
    ) -> None:
        assert service.engine is not None
        self._call_id = call_id
        self._service = service
        self._delay_line = delay_line
        self._events = events
        self._watermark = watermark
        self._judge = judge
        self._clock = clock
        self._transcriber = StreamingTranscriber(service.engine, service.config)
        self._resampler = Resampler48kTo16k()
        self._next_start: float | None = None
        self._stepping: asyncio.Task[None] | None = None
        # Confirmed words whose audio has not been played yet, in order.
        self._unplayed: collections.deque[Word] = collections.deque()
        self._provisional: list[Word] = []
        self._shown_provisional: list[Word] = []
        self.words: list[Word] = []  # every confirmed word of the call
        self.lag_s = 0.0
        self.skipped_s = 0.0
        self.passes = 0
        # Why the call's moderation is degraded right now (the inference tier failed its
        # last pass), or None; reported on the call and in its log like a missing model.
        self.degraded: str | None = None
        self.tier_failures = 0
        self._release_task = asyncio.ensure_future(self._release_forever())

    def feed(self, samples_48k: np.ndarray, media_start: float) -> None:
        """Called on the event loop for every decoded customer frame."""
        if self._next_start is None or abs(media_start - self._next_start) > 0.001:
            self._resampler.reset()  # a gap or a new timeline: no filter state across it
        self._next_start = media_start + len(samples_48k) / RATE
        self._transcriber.feed(self._resampler.process(samples_48k), media_start)
        if self._stepping is None and self._transcriber.pending():
            self._stepping = asyncio.ensure_future(self._step_while_pending())

    async def _step_while_pending(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._service.passes_in_flight += 1
                try:
                    update = await loop.run_in_executor(self._service.executor, self._transcriber.step)
                finally:
                    self._service.passes_in_flight -= 1
                await self._settle(update)
                self._service.answered()
                self._degrade(None)
                if not self._transcriber.pending():
                    break
        except TierUnavailable as exc:
            self.tier_failures += 1
            self._degrade(str(exc))
            # The audio waits in the transcriber; the next try covers it (or skips, past max_lag_s).
            await asyncio.sleep(self._service.config.tier_retry_s)
        except Exception:  # a failing pass must not end the call; the watermark just stops
            log.exception("call %s: transcription pass failed", self._call_id)
        finally:
            self._stepping = None

    def _degrade(self, reason: str | None) -> None:
        changed = (reason is None) != (self.degraded is None)
        self.degraded = reason
        if not changed:
            return
        if reason is not None:
            log.warning("call %s: moderation degraded: %s", self._call_id, reason)
        state = {"state": "degraded", "detail": reason} if reason is not None else {"state": "ready"}
        self._events.publish({"type": "moderation", **state}, staff_only=True)

    async def _settle(self, update: TranscriptUpdate) -> None:
        self._apply(update)
        if self._judge is not None:
            await self._judge(update)
        tail_end = update.provisional[-1].end if update.provisional else 0.0
        self._watermark.advance(update.cleared_until, tail_end)

    def _apply(self, update: TranscriptUpdate) -> None:
        self.passes += 1
        self.lag_s = update.lag_s
        self.words.extend(update.confirmed)
        self._unplayed.extend(update.confirmed)
        self._provisional = update.provisional
        # Never transcribed, so never judged: the moderation marks and (by policy) mutes it.
        self.skipped_s += sum(end - start for start, end in update.skipped)
        if update.skipped:
            log.warning(
                "call %s: transcription fell behind, skipped %.2f s",
                self._call_id,
                sum(e - s for s, e in update.skipped),
            )

    async def _release_forever(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_INTERVAL_S)
            playing = self._delay_line.media_time_at(self._clock.monotonic())
            if playing is not None:  # nothing plays before the customer's first frame
                self.release(playing)

    def release(self, playing: float) -> None:
        """Publish the words whose audio has started playing by media time `playing`."""
        confirmed = []
        while self._unplayed and self._unplayed[0].start <= playing:
            confirmed.append(self._unplayed.popleft())
        provisional = [w for w in self._provisional if w.start <= playing]
        if confirmed or provisional != self._shown_provisional:
            self._shown_provisional = provisional
            muted = [(m.start, m.end, m.reason) for m in self._delay_line.mutes.spans()]
            self._events.publish(
                {
                    "type": "transcript",
                    "confirmed": [_word(w, muted) for w in confirmed],
                    "provisional": [_word(w, muted) for w in provisional],
                },
                staff_only=True,
            )

    def view(self) -> dict[str, Any]:
        degraded = {"state": "degraded", "detail": self.degraded} if self.degraded is not None else {}
        return {
            **degraded,
            "tier_failures": self.tier_failures,
            "lag_s": round(self.lag_s, 3),
            "skipped_s": round(self.skipped_s, 3),
            "passes": self.passes,
            "words": len(self.words),
        }

    async def close(self) -> None:
        self._release_task.cancel()
        if self._stepping is not None:
            await asyncio.wait({self._stepping}, timeout=FINISH_TIMEOUT_S)
        try:
            loop = asyncio.get_running_loop()
            update = await asyncio.wait_for(
                loop.run_in_executor(self._service.executor, self._transcriber.finish), FINISH_TIMEOUT_S
            )
            await self._settle(update)
        except Exception:
            log.exception("call %s: final transcription pass failed", self._call_id)


def _word(w: Word, muted: list[tuple[float, float, str]]) -> dict[str, Any]:
    """A word for the counselor's page: a muted word's text is never sent, only why."""
    for start, end, reason in muted:
        if start < w.end and w.start < end:
            return {"text": None, "muted": reason, "start": round(w.start, 3), "end": round(w.end, 3)}
    return {"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
