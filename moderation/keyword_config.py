"""Settings of the keyword and phrase lists ([keywords] in the server's config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeywordConfig:
    enabled: bool = True
    # One file per category (<category>.txt: profanity, insult, threat, sexual_harassment,
    # or any other name) plus allow.txt, the false friends. A relative path is taken from
    # the folder the caller names (KeywordMatcher's root), else the working directory.
    lists_dir: str = "configs/keywords"
    # How often the server looks for edited lists (a stat of each file; 0 = never).
    reload_interval_s: float = 2.0

    def validate(self) -> None:
        """Raises ValueError naming the key (relative to [keywords])."""
        if not self.lists_dir.strip():
            raise ValueError("keywords.lists_dir must name a folder")
        if not 0.0 <= self.reload_interval_s <= 3600.0:
            raise ValueError(f"keywords.reload_interval_s = {self.reload_interval_s} is out of range [0.0, 3600.0]")
