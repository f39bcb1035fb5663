"""The one loaded speech model and the worker threads that run it, shared by every call.

With stt.backend = "ray" the model lives on the shared inference tier instead
(moderation/stt_remote.py): the engine is its client, the worker threads only wait on it,
and a tier that cannot be reached at start is retried until it answers. The engine exists
from the start either way, so a call set up while the tier is away is transcribed (its
moderation degraded until then) as soon as the tier answers its passes.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from moderation import model_fetch, model_store
from moderation.model_store import ModelUnavailable
from moderation.speech import SpeechEngine
from moderation.stt_config import SttConfig

log = logging.getLogger(__name__)

# How often a node whose tier was unreachable at start asks again.
TIER_RECONNECT_S = 5.0

SttState = Literal["off", "fetching", "loading", "ready", "unavailable"]


@dataclass
class _Fetching:
    """A first-start fetch in progress: what the state line reports."""

    name: str
    present: int = 0
    total: int = 0

    def __call__(self, present: int, total: int) -> None:
        self.present, self.total = present, total

    def line(self) -> str:
        share = self.present / self.total if self.total else 0.0
        return f"fetching speech model {self.name}: {self.present / 1e6:.1f} / {self.total / 1e6:.1f} MB ({share:.0%})"


class SttService:
    def __init__(self, config: SttConfig) -> None:
        self.config = config
        self.state: SttState = "loading" if config.enabled else "off"
        self.detail = "" if config.enabled else "transcription is switched off in the config (stt.enabled)"
        self.engine: SpeechEngine | None = None
        self._fetching: _Fetching | None = None
        self._reconnect: asyncio.Task[None] | None = None
        # Passes handed to the workers and not yet finished, across all calls (the metrics'
        # queue depth is what exceeds the workers).
        self.passes_in_flight = 0
        # Inference only: never the event loop (CTranslate2 releases the GIL while it works).
        # With the tier the threads only wait on it: one per pass in flight.
        remote = config.backend == "ray"
        workers = config.tier_max_inflight if remote else config.workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    async def load(self) -> None:
        """Load the model off the event loop (fetching it first when stt.download allows);
        a failure leaves the server relaying."""
        if not self.config.enabled:
            return
        if self.config.backend == "ray":
            if not await self._connect_tier():
                self._reconnect = asyncio.ensure_future(self._reconnect_tier())
            return
        loop = asyncio.get_running_loop()
        try:
            try:
                self.engine = await loop.run_in_executor(self.executor, self._open)
            except ModelUnavailable as missing:
                if not self._fetchable():
                    raise
                log.info("%s; fetching it (stt.download = auto)", missing)
                await loop.run_in_executor(self.executor, self._fetch)
                self.state = "loading"
                self.engine = await loop.run_in_executor(self.executor, self._open)
        except ModelUnavailable as exc:
            self.state, self.detail = "unavailable", str(exc)
            log.error("moderation unavailable: %s", exc)
            return
        finally:
            self._fetching = None
        self.state, self.detail = "ready", self.engine.version
        log.info("speech model ready: %s", self.engine.version)

    def view(self) -> dict[str, str]:
        if self._fetching is not None:
            return {"state": self.state, "detail": self._fetching.line()}
        return {"state": self.state, "detail": self.detail}

    def close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _connect_tier(self) -> bool:
        from moderation.stt_remote import RemoteEngine, TierUnavailable

        if self.engine is None:
            self.engine = RemoteEngine(self.config.tier_url, self.config.tier_timeout_s)
        engine = self.engine
        assert isinstance(engine, RemoteEngine)
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, engine.connect)
        except TierUnavailable as exc:
            # Calls started meanwhile are degraded: their audio plays under the undecided
            # policy until their passes reach the tier.
            self.state, self.detail = "unavailable", str(exc)
            log.error("moderation unavailable: %s", exc)
            return False
        self.state, self.detail = "ready", engine.version
        log.info("speech on the inference tier: %s", engine.version)
        return True

    def answered(self) -> None:
        """A call's pass was answered: a tier that a call reached before the reconnect
        loop did is back for every call."""
        if self.state == "unavailable" and self.engine is not None and self.engine.version:
            self.state, self.detail = "ready", self.engine.version
            log.info("speech on the inference tier: %s", self.engine.version)

    async def _reconnect_tier(self) -> None:
        while self.state != "ready":
            await asyncio.sleep(TIER_RECONNECT_S)
            await self._connect_tier()

    def _fetchable(self) -> bool:
        """A hub name (not a path) that stt.download lets the server fetch for itself."""
        return self.config.download == "auto" and not model_store.looks_like_path(self.config.model)

    def _fetch(self) -> None:
        self.state = "fetching"
        self._fetching = progress = _Fetching(self.config.model)
        console = model_fetch.ConsoleProgress(f"fetching speech model {self.config.model}")

        def report(present: int, total: int) -> None:
            progress(present, total)
            console(present, total)

        model_store.pull(self.config.model, self.config.models_dir, progress=report)

    def _open(self) -> SpeechEngine:
        from moderation.whisper_engine import WhisperEngine  # faster-whisper is a heavy import

        # The hub is reached only by _fetch: faster-whisper's own download has no resume or
        # checksum, and a slow hub must not hold up calls without saying so.
        return WhisperEngine(self.config, allow_download=False)
