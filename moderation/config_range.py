"""The one bounds check of moderation's config sections (each validate() names its key)."""

from __future__ import annotations


def check_range(key: str, value: float, low: float, high: float) -> None:
    """Raises ValueError naming `key` when `value` lies outside [low, high]."""
    if not low <= value <= high:
        raise ValueError(f"{key} = {value} is out of range [{low}, {high}]")
