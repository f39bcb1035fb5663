"""`callguard serve` re-reads its config file on SIGHUP, without a restart.

What a reload changes: the delay settings, [policy], [escalation] (its warning prompt
included) for calls created from then on; the keyword lists, the text model and its
thresholds, the classifier's thresholds and labels, and [checks] for every call at once
(the checks are shared). Running calls keep running on the settings they started with:
nothing is rebuilt under them. The rest (addresses, database, accounts, the speech model,
the classifier's model and device, limits) is read at start only: a change there is
named in the log as needing a restart, and the running value stays.

A file that does not parse, fails validation, or names lists, a text model, labels or a
prompt that cannot be loaded is refused whole: one log line naming the error, and the
config in force stays as it was.

The delay settings' default can also be changed on the supervisor's console
(relay/calls/live_settings.py); it is applied here, as a reload is, and the next reload
takes the file's values again: the file stays the source.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from relay.calls.registry import Calls
from relay.calls.text_service import TextChecks
from relay.config import Config, ConfigError
from relay.media.prompt import SHIPPED_WARNING, PromptError, load_prompt

log = logging.getLogger(__name__)

# Sections taken from the new file.
RELOADED = ("delay", "policy", "escalation", "keywords", "text_model", "classifier", "checks")
# Classifier settings that need the model loaded again: kept as they run.
CLASSIFIER_AT_START = (
    "enabled",
    "backend",
    "tier_url",
    "tier_timeout_s",
    "tier_retry_s",
    "model",
    "models_dir",
    "device",
    "int8",
    "threads",
    "forward_batch",
    "batch_max",
    "batch_wait_ms",
    "queue_max",
    "overflow",
)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    changed: list[str]  # the reloaded sections whose settings changed
    restart_needed: list[str]  # settings changed in the file that only a restart applies
    error: str = ""


def merge(running: Config, loaded: Config) -> tuple[Config, list[str], list[str]]:
    """The running config with the reloadable parts of `loaded`: (config, changed, restart_needed)."""
    classifier = dataclasses.replace(
        loaded.classifier, **{f: getattr(running.classifier, f) for f in CLASSIFIER_AT_START}
    )
    merged = dataclasses.replace(running, **{name: getattr(loaded, name) for name in RELOADED if name != "classifier"})
    merged = dataclasses.replace(merged, classifier=classifier)
    changed = [name for name in RELOADED if getattr(merged, name) != getattr(running, name)]
    restart = [
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in RELOADED and getattr(loaded, f.name) != getattr(running, f.name)
    ]
    restart += [
        f"classifier.{name}"
        for name in CLASSIFIER_AT_START
        if getattr(loaded.classifier, name) != getattr(running.classifier, name)
    ]
    return merged, changed, restart


class ConfigReloader:
    """Holds the config in force; `reload()` reads the file again and applies what it can."""

    def __init__(self, config: Config, load: Callable[[], Config], calls: Calls, checks: TextChecks) -> None:
        self.config = config
        self._load = load
        self._calls = calls
        self._checks = checks
        self.on_change: list[Callable[[Config], None]] = []

    async def reload(self) -> Outcome:
        try:
            loaded = self._load()
            merged, changed, restart = merge(self.config, loaded)
            prompt = self._prompt(merged) if merged.escalation != self.config.escalation else None
            prepared = await self._checks.prepare(merged)
        except (ConfigError, PromptError, OSError, ValueError) as exc:
            log.error("config reload refused, the config in force stays: %s", exc)
            return Outcome(False, [], [], str(exc))
        self._checks.apply(prepared)
        self.apply(merged, prompt)
        if restart:
            log.warning("config reload: %s changed in the file but apply only at a restart", ", ".join(restart))
        log.info("config reloaded: %s", ", ".join(changed) if changed else "nothing changed")
        return Outcome(True, changed, restart)

    def apply(self, config: Config, prompt: np.ndarray | None = None) -> None:
        """A config already checked (a reload, or the delay settings' default changed on the
        supervisor's console, relay/web/settings_api.py): the config in force from now on."""
        self._calls.reconfigure(config, prompt)
        self.config = config
        for listener in self.on_change:
            listener(config)

    @staticmethod
    def _prompt(config: Config) -> np.ndarray:
        try:
            return load_prompt(config.escalation.prompt or SHIPPED_WARNING, config.escalation.prompt_gain)
        except PromptError as exc:
            raise ConfigError(f"escalation.prompt: {exc}") from None
