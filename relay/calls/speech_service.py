"""The one loaded speech model and the worker threads that run it, shared by every call."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from moderation.model_store import ModelUnavailable
from moderation.speech import SpeechEngine
from moderation.stt_config import SttConfig

log = logging.getLogger(__name__)

SttState = Literal["off", "loading", "ready", "unavailable"]


class SttService:
    def __init__(self, config: SttConfig) -> None:
        self.config = config
        self.state: SttState = "loading" if config.enabled else "off"
        self.detail = "" if config.enabled else "transcription is switched off in the config (stt.enabled)"
        self.engine: SpeechEngine | None = None
        # Inference only: never the event loop (CTranslate2 releases the GIL while it works).
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="stt")

    async def load(self) -> None:
        """Load the model off the event loop; a failure leaves the server relaying."""
        if not self.config.enabled:
            return
        from moderation.whisper_engine import WhisperEngine  # faster-whisper is a heavy import

        try:
            # Never download at start: a hub that is slow or unreachable must not hold up calls.
            self.engine = await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: WhisperEngine(self.config, allow_download=False)
            )
        except ModelUnavailable as exc:
            self.state, self.detail = "unavailable", str(exc)
            log.error("moderation unavailable: %s", exc)
            return
        self.state, self.detail = "ready", self.engine.version
        log.info("speech model ready: %s", self.engine.version)

    def view(self) -> dict[str, str]:
        return {"state": self.state, "detail": self.detail}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
