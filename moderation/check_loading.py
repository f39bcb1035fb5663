"""Loading the text checks as the server runs them: keyword lists, the shipped text model
and the classifier.

One rule for the live server (relay/calls/text_service.py) and the offline tools
(offline/eval_text.py, eval-calls, replay): a check switched off in the config is "off",
one that cannot be loaded is "unavailable" with the reason, and neither stops the other.
Takes moderation's own config types, so moderation/ stays free of relay/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from moderation.classifier_config import ClassifierConfig
from moderation.keyword_config import KeywordConfig
from moderation.model_store import ModelUnavailable
from moderation.text_model_config import TextModelConfig

if TYPE_CHECKING:  # the heavy modules load when a check does
    from moderation.classifier import AbuseClassifier
    from moderation.keywords import KeywordMatcher
    from moderation.text_model import TextModel

log = logging.getLogger(__name__)

CheckState = Literal["off", "ready", "unavailable"]
T = TypeVar("T")


@dataclass(frozen=True)
class LoadedCheck(Generic[T]):
    check: T | None  # None unless ready
    state: CheckState
    detail: str  # the version when ready; else why not


def load_keywords(config: KeywordConfig) -> LoadedCheck[KeywordMatcher]:
    from moderation.keywords import KeywordMatcher

    if not config.enabled:
        return LoadedCheck(None, "off", "keyword lists are switched off (keywords.enabled)")
    try:
        matcher = KeywordMatcher(config)
    except Exception as exc:  # unreadable folder, broken lists: say so, the rest goes on
        log.error("keyword lists unavailable: %s", exc)
        return LoadedCheck(None, "unavailable", str(exc))
    return LoadedCheck(matcher, "ready", matcher.version)


def load_classifier(config: ClassifierConfig) -> LoadedCheck[AbuseClassifier]:
    """Slow (a model load and a test pass): callers on an event loop run it in a worker."""
    if not config.enabled:
        return LoadedCheck(None, "off", "the classifier is switched off (classifier.enabled)")
    try:
        from moderation.classifier import AbuseClassifier

        classifier = AbuseClassifier.load(config)
    except ModelUnavailable as exc:
        log.error("classifier unavailable (keywords keep working): %s", exc)
        return LoadedCheck(None, "unavailable", str(exc))
    except Exception as exc:  # torch/transformers missing or broken: keywords go on
        log.error("classifier unavailable (keywords keep working): %s", exc)
        return LoadedCheck(None, "unavailable", f"{type(exc).__name__}: {exc}")
    return LoadedCheck(classifier, "ready", classifier.version)


def load_text_model(config: TextModelConfig, keywords: KeywordMatcher | None = None) -> LoadedCheck[TextModel]:
    """The shipped model, or the one in text_model.model_dir (a folder from train-text),
    under the allowlist of `keywords` (the loaded lists) where there are lists."""
    from moderation.text_model import TextModel, TextModelError

    if not config.enabled:
        return LoadedCheck(None, "off", "the text model is switched off (text_model.enabled)")
    try:
        model = TextModel.load(config, keywords.allowed_words if keywords is not None else None)
    except TextModelError as exc:
        log.error("text model unavailable (the other checks keep working): %s", exc)
        return LoadedCheck(None, "unavailable", str(exc))
    return LoadedCheck(model, "ready", model.version)
