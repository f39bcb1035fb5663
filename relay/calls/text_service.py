"""The text checks every call's words go through, loaded once: keyword lists and kor_unsmile.

The keyword lists are cheap and run on the event loop; a supervisor's edit to them is
picked up within `keywords.reload_interval_s`, no restart. The classifier runs on its own
worker thread behind a batcher shared by all calls. Either may be unavailable; the other
keeps working, and the state is reported on the counselor page and in the call stats.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moderation.classifier import AbuseClassifier
from moderation.classifier_batch import ClassifierBatcher, ClassifierOverloaded
from moderation.hits import Hit
from moderation.keywords import KeywordMatcher
from moderation.model_store import ModelUnavailable

from relay.config import Config

log = logging.getLogger(__name__)


class TextChecks:
    def __init__(self, config: Config) -> None:
        self._config = config
        self.keywords: KeywordMatcher | None = None
        self.keyword_state, self.keyword_detail = "off", "keyword lists are switched off (keywords.enabled)"
        self.classifier_state, self.classifier_detail = "off", "the classifier is switched off (classifier.enabled)"
        self._batcher: ClassifierBatcher | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier")
        self._reloader: asyncio.Task[None] | None = None
        self.overloaded = 0

    async def load(self) -> None:
        if self._config.keywords.enabled:
            try:
                self.keywords = KeywordMatcher(self._config.keywords)
                self.keyword_state, self.keyword_detail = "ready", self.keywords.version
                if self._config.keywords.reload_interval_s > 0:
                    self._reloader = asyncio.ensure_future(self._reload_forever())
            except Exception as exc:  # unreadable folder, broken lists: say so, keep relaying
                self.keyword_state, self.keyword_detail = "unavailable", str(exc)
                log.error("keyword lists unavailable: %s", exc)
        if self._config.classifier.enabled:
            self.classifier_state, self.classifier_detail = "loading", ""
            try:
                classifier = await asyncio.get_running_loop().run_in_executor(
                    self._executor, lambda: AbuseClassifier.load(self._config.classifier))
            except ModelUnavailable as exc:
                self.classifier_state, self.classifier_detail = "unavailable", str(exc)
                log.error("classifier unavailable (keywords keep working): %s", exc)
                return
            self._batcher = ClassifierBatcher.from_config(classifier, self._executor, self._config.classifier)
            self.classifier_state, self.classifier_detail = "ready", classifier.version
            log.info("classifier ready: %s", classifier.version)

    async def check(self, words: list[str]) -> list[Hit]:
        hits = self.keywords.match(words) if self.keywords is not None else []
        if self._batcher is not None:
            try:
                hits += await self._batcher.judge(words)
            except ClassifierOverloaded:
                # Judged by the keywords alone this time; counted, shown in the stats.
                self.overloaded += 1
        return hits

    async def _reload_forever(self) -> None:
        assert self.keywords is not None
        while True:
            await asyncio.sleep(self._config.keywords.reload_interval_s)
            try:
                if self.keywords.reload_if_changed():
                    self.keyword_detail = self.keywords.version
                    log.info("keyword lists reloaded: %s", self.keywords.version)
            except Exception:
                log.exception("keyword lists could not be reloaded; the previous lists stay in force")

    def view(self) -> dict[str, Any]:
        return {"keywords": {"state": self.keyword_state, "detail": self.keyword_detail},
                "classifier": {"state": self.classifier_state, "detail": self.classifier_detail,
                               "overloaded": self.overloaded}}

    async def close(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
