"""The text checks every call's words go through, loaded once: keyword lists, the shipped
text model and kor_unsmile.

The keyword lists are cheap and run on the event loop; a supervisor's edit to them is
picked up within `keywords.reload_interval_s`, no restart. The shipped text model (well
under a millisecond a sentence) runs on a worker thread of its own; the classifier on its
own worker thread behind a batcher shared by all calls, or (classifier.backend = "ray")
on the shared inference tier, the batcher then sending each batch there. Any may be
unavailable; the others keep working, and the state is reported on the counselor page
and in the call stats. A tier that fails a batch makes the classifier unavailable, as a
missing model does: the windows are judged by the other checks, the tier is asked again
after classifier.tier_retry_s, and its first answer makes the classifier ready again for
every call, those started while it was away included. The hits combine under [checks]
(moderation/check_combination.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from moderation.check_combination import combine
from moderation.check_loading import load_classifier, load_keywords, load_text_model
from moderation.classifier import AbuseClassifier
from moderation.classifier_batch import ClassifierBatcher, ClassifierOverloaded
from moderation.classifier_remote import RemoteClassifier
from moderation.hits import Hit
from moderation.keywords import KeywordMatcher
from moderation.text_model import TextModel
from moderation.tier_client import TierUnavailable
from relay.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedChecks:
    config: Config
    keywords: KeywordMatcher | None
    text_model: TextModel | None
    classifier: AbuseClassifier | None  # None: the running one stays


class TextChecks:
    def __init__(self, config: Config) -> None:
        self._config = config
        self.keywords: KeywordMatcher | None = None
        self.keyword_state, self.keyword_detail = "off", "keyword lists are switched off (keywords.enabled)"
        self.text_model: TextModel | None = None
        self.text_model_state, self.text_model_detail = "off", "the text model is switched off (text_model.enabled)"
        self._text_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="text-model")
        self.classifier_state, self.classifier_detail = "off", "the classifier is switched off (classifier.enabled)"
        self._batcher: ClassifierBatcher | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier")
        self._reloader: asyncio.Task[None] | None = None
        self.overloaded = 0
        # classifier.backend = "ray": batches that failed at the tier, and until when
        # (monotonic) the classifier rests after the last one.
        self._remote: RemoteClassifier | None = None
        self.tier_failures = 0
        self._resting_until = 0.0

    async def load(self) -> None:
        keywords = load_keywords(self._config.keywords)
        self.keywords, self.keyword_state, self.keyword_detail = keywords.check, keywords.state, keywords.detail
        if self.keywords is not None and self._config.keywords.reload_interval_s > 0:
            self._reloader = asyncio.ensure_future(self._reload_forever())
        loop = asyncio.get_running_loop()
        text_model = await loop.run_in_executor(
            self._text_executor, load_text_model, self._config.text_model, self.keywords
        )
        self.text_model, self.text_model_state, self.text_model_detail = (
            text_model.check,
            text_model.state,
            text_model.detail,
        )
        if self._config.classifier.enabled:
            self.classifier_state, self.classifier_detail = "loading", ""
        if self._config.classifier.enabled and self._config.classifier.backend == "ray":
            await self._connect_tier()
            return
        loaded = await loop.run_in_executor(self._executor, load_classifier, self._config.classifier)
        self.classifier_state, self.classifier_detail = loaded.state, loaded.detail
        if loaded.check is not None:
            self._batcher = ClassifierBatcher.from_config(loaded.check, self._executor, self._config.classifier)
            log.info("classifier ready: %s", loaded.detail)

    async def _connect_tier(self) -> None:
        config = self._config.classifier
        remote = RemoteClassifier(config.tier_url, config.tier_timeout_s)
        self._remote = remote
        self._batcher = ClassifierBatcher.from_config(remote, self._executor, config)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, remote.connect)
        except TierUnavailable as exc:
            # Calls judge by the other checks meanwhile; their first windows ask the tier again.
            self._tier_failed(exc)
            return
        self.classifier_state, self.classifier_detail = "ready", remote.version
        log.info("classifier on the inference tier: %s", remote.version)

    async def check(self, words: list[str], context: Sequence[str] = ()) -> list[Hit]:
        """Hits on `words`; `context` is what the customer said just before (moderation/call_moderator.py)."""
        hits = self.keywords.match(words, context) if self.keywords is not None else []
        if self.text_model is not None:
            hits += await asyncio.get_running_loop().run_in_executor(
                self._text_executor, self.text_model.judge, words, context
            )
        if self._batcher is not None and time.monotonic() >= self._resting_until:
            try:
                hits += await self._batcher.judge(words)
            except ClassifierOverloaded:
                # Judged by the keywords alone this time; counted, shown in the stats.
                self.overloaded += 1
            except TierUnavailable as exc:
                self._tier_failed(exc)
            else:
                if self._remote is not None and self.classifier_state != "ready":
                    self.classifier_state, self.classifier_detail = "ready", self._remote.version
                    log.warning("classifier back on the inference tier: %s", self._remote.version)
        return combine(hits, self._config.checks)

    def _tier_failed(self, exc: TierUnavailable) -> None:
        self.tier_failures += 1
        self._resting_until = time.monotonic() + self._config.classifier.tier_retry_s
        if self.classifier_state != "unavailable":
            log.error("classifier unavailable (the other checks keep working): %s", exc)
        self.classifier_state, self.classifier_detail = "unavailable", str(exc)

    def prefixes(self, words: list[str]) -> list[Hit]:
        """Entry starts the words end in (a word still being spoken); cheap, synchronous."""
        return self.keywords.match_prefixes(words) if self.keywords is not None else []

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

    # A reload (relay/calls/config_reload.py): everything that can fail is built first, in
    # prepare(); apply() only swaps, between two checks of the event loop, so every call's
    # next utterance is judged wholly by the old checks or wholly by the new ones.

    async def prepare(self, config: Config) -> PreparedChecks:
        """The checks for a reloaded config; raises ValueError naming what cannot be loaded."""
        loop = asyncio.get_running_loop()
        keywords = self.keywords
        if config.keywords != self._config.keywords:
            loaded = await loop.run_in_executor(None, load_keywords, config.keywords)
            if loaded.state == "unavailable":
                raise ValueError(f"keywords: {loaded.detail}")
            keywords = loaded.check
        text_model = self.text_model
        if config.text_model != self._config.text_model:
            model = await loop.run_in_executor(self._text_executor, load_text_model, config.text_model, keywords)
            if model.state == "unavailable":
                raise ValueError(f"text_model: {model.detail}")
            text_model = model.check
        elif text_model is not None and keywords is not self.keywords:  # the model keeps the lists' allowlist
            text_model = text_model.with_allowlist(keywords.allowed_words if keywords is not None else None)
        classifier = None
        running = self._batcher.classifier if self._batcher is not None else None
        if isinstance(running, RemoteClassifier) and config.classifier != self._config.classifier:
            log.warning("config reload: [classifier] settings are the inference tier's; reload the tier to change them")
        if isinstance(running, AbuseClassifier) and config.classifier != self._config.classifier:
            classifier = AbuseClassifier(running.scorer, running.labels, config.classifier, version=running.version)
            classifier.device = running.device
        return PreparedChecks(config, keywords, text_model, classifier)

    def apply(self, prepared: PreparedChecks) -> None:
        config = prepared.config
        self._config = config
        self.keywords = prepared.keywords
        if prepared.keywords is None:
            self.keyword_state, self.keyword_detail = "off", "keyword lists are switched off (keywords.enabled)"
        else:
            self.keyword_state, self.keyword_detail = "ready", prepared.keywords.version
        if self._reloader is not None and (prepared.keywords is None or config.keywords.reload_interval_s <= 0):
            self._reloader.cancel()
            self._reloader = None
        elif self._reloader is None and prepared.keywords is not None and config.keywords.reload_interval_s > 0:
            self._reloader = asyncio.ensure_future(self._reload_forever())
        self.text_model = prepared.text_model
        if prepared.text_model is None:
            self.text_model_state, self.text_model_detail = "off", "the text model is switched off (text_model.enabled)"
        else:
            self.text_model_state, self.text_model_detail = "ready", prepared.text_model.version
        if prepared.classifier is not None and self._batcher is not None:
            self._batcher.classifier = prepared.classifier

    def view(self) -> dict[str, Any]:
        return {
            "keywords": {"state": self.keyword_state, "detail": self.keyword_detail},
            "text_model": {"state": self.text_model_state, "detail": self.text_model_detail},
            "classifier": {
                "state": self.classifier_state,
                "detail": self.classifier_detail,
                "overloaded": self.overloaded,
                "tier_failures": self.tier_failures,
            },
        }

    async def close(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._text_executor.shutdown(wait=False, cancel_futures=True)
