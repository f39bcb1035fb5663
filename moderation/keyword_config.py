"""Settings of the keyword and phrase lists ([keywords] in the server's config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moderation.config_range import check_range

# The lists that ship with the package: the default when lists_dir is empty.
BUILTIN_LISTS = Path(__file__).resolve().parent / "keyword_lists"


@dataclass(frozen=True)
class KeywordConfig:
    enabled: bool = True
    # One file per category (<category>.txt: profanity, insult, threat, sexual_harassment,
    # or any other name) plus allow.txt, the false friends. Empty: the lists shipped in the
    # package (moderation/keyword_lists), found from any working directory. A relative
    # path in a config file is taken from that file's folder.
    lists_dir: str = ""
    # How often the server looks for edited lists (a stat of each file; 0 = never).
    reload_interval_s: float = 2.0
    # Shortest start of a list entry (folded characters, about syllables) that mutes a word
    # still being spoken, provisionally (moderation/keyword_prefix.py); 0 = whole entries only.
    prefix_min_chars: int = 2

    def validate(self) -> None:
        """Raises ValueError naming the key (relative to [keywords])."""
        check_range("keywords.reload_interval_s", self.reload_interval_s, 0.0, 3600.0)
        check_range("keywords.prefix_min_chars", self.prefix_min_chars, 0, 10)

    def folder(self) -> Path:
        """The folder the lists are read from."""
        return Path(self.lists_dir).expanduser() if self.lists_dir.strip() else BUILTIN_LISTS
