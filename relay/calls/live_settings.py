"""The settings a supervisor changes without a restart: for one running call, or as the
default for calls created from then on.

They are the delay's: delay_s, max_s, undecided_policy and mute_sound. A running call
takes them through its delay line (relay/media/delay_line.py `reconfigure`: a rise is a
stretch, a fall is cut from the customer's pauses, so nothing jumps). Each is checked as
the config file checks it (relay/config.py), so a value the file would refuse is refused
here too. The config file stays the source at start, and SIGHUP reloads it
(relay/calls/config_reload.py) over a default changed on the console.
"""

from __future__ import annotations

from typing import Any

from relay.config import Config, ConfigError, DelayConfig

LIVE = ("delay_s", "max_s", "undecided_policy", "mute_sound")


def changed(config: Config, changes: dict[str, Any]) -> Config:
    """`config` with `changes` (a subset of LIVE) applied to its delay section; ConfigError
    on an unknown name, an empty change, or a value out of type or range."""
    unknown = sorted(set(changes) - set(LIVE))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a setting that changes live (one of {', '.join(LIVE)})")
    if not changes:
        raise ConfigError(f"nothing to change: give one or more of {', '.join(LIVE)}")
    return config.with_changes("delay", changes)


def view(delay: DelayConfig) -> dict[str, Any]:
    return {name: getattr(delay, name) for name in LIVE}


def difference(before: DelayConfig, after: DelayConfig) -> dict[str, list[Any]]:
    """The live settings that differ, each as [before, after] (for the call's events and the access log)."""
    old, new = view(before), view(after)
    return {name: [old[name], new[name]] for name in LIVE if old[name] != new[name]}
