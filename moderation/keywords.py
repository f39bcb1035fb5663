"""Keyword and phrase lists by category, matched in one pass over an utterance's words.

The lists live in a folder (KeywordConfig.lists_dir): <category>.txt for each category
(profanity, insult, threat, sexual_harassment; any other file name is a category too)
and allow.txt for false friends. One entry per line; '#' starts a comment; blank lines
are skipped. An entry is a word or a phrase, written as a person would write it:
spacing does not matter ("죽여 버린다" also matches "죽여버린다"), and entries go through
the same folding as the checked words (moderation/normalise.py), so "씨발" also matches
"씨1발", "씨이이발", "ㅆㅣㅂㅏㄹ" and "Tlqkf". An entry written in initial consonants
("ㅅㅂ") matches those consonants, never ordinary syllables ("수박" stays clean).
Digit readings are added for entries that hold 씨발/시발/씨팔/시팔 (18) or 십/씹 (10):
"씨발놈" also matches "18놈" (never "18년", "18일": a number before a counter word).

A match of a one-word entry may run across words ("씨 발", "개 새끼", typed apart to dodge
a filter) only where it starts at a word's start, and a two-character match only where it
takes its last word whole: "아저씨 발가락" (from inside 아저씨) and "결제 시 발송" (the
first syllable of 발송) are not 씨발/시발, "18 놈아" is still 18놈. An entry written with a
space, a phrase, matches wherever its folded text does.

An allowlist entry suppresses every match lying inside one of its own matches:
"시발점" (starting point) keeps "시발" quiet there, "병신년" (a year's name) keeps "병신"
quiet, "죽어버려요" (a battery dying, said politely) keeps "죽어버려" quiet.

Every entry, allowlisted or not, goes into one Aho-Corasick automaton, so one pass over
the folded text finds them all: the cost follows the length of the text, not the number
of entries. Lists are re-read when a file changes (reload_if_changed, called
periodically by the server); a file that cannot be read keeps the old lists in force.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from moderation.hits import Hit
from moderation.keyword_config import KeywordConfig
from moderation.keyword_prefix import PrefixIndex
from moderation.normalise import Normalised, normalise, normalise_words

log = logging.getLogger(__name__)

ALLOW = "allow"  # allow.txt: the false friends
_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Digit readings of a syllable run, typed to dodge filters: 18 (십팔) for 씨발, 10 for 십/씹.
_DIGIT_READINGS = (("씨발", "18"), ("시발", "18"), ("씨팔", "18"), ("시팔", "18"), ("십", "10"), ("씹", "10"))
# After a number these are counters and units ("18년 동안", "10시"), never a swear word.
_COUNTERS = frozenset("년일월시분초세살개번원만명층호차회권장대주평톤도점억천백")


class KeywordListError(ValueError):
    """A list folder or file that cannot be used; the message names the file (and line)."""


@dataclass(frozen=True)
class Entry:
    category: str  # the list it came from ("allow" for the allowlist)
    text: str  # as written in the file (what a Hit's detail shows)


@dataclass(frozen=True)
class _Pattern:
    """One folded string in the automaton and the entries it stands for."""

    entries: tuple[Entry, ...]
    digit_start: bool  # a match must not continue a longer number ("2018년")
    digit_end: bool


_P = TypeVar("_P")


class Automaton(Generic[_P]):
    """Aho-Corasick over folded strings: every occurrence of every pattern in one pass."""

    __slots__ = ("_goto", "_fail", "_out", "size")

    def __init__(self, patterns: Mapping[str, _P]) -> None:
        goto: list[dict[str, int]] = [{}]
        out: list[list[tuple[int, _P]]] = [[]]
        for pattern, payload in patterns.items():
            if not pattern:
                raise ValueError("empty pattern")
            state = 0
            for c in pattern:
                nxt = goto[state].get(c)
                if nxt is None:
                    nxt = len(goto)
                    goto.append({})
                    out.append([])
                    goto[state][c] = nxt
                state = nxt
            out[state].append((len(pattern), payload))
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:
            state = queue.popleft()
            for c, nxt in goto[state].items():
                queue.append(nxt)
                f = fail[state]
                while f and c not in goto[f]:
                    f = fail[f]
                fail[nxt] = goto[f].get(c, 0)
                out[nxt] = out[nxt] + out[fail[nxt]]  # fail[nxt] is shallower: already complete
        self._goto = goto
        self._fail = fail
        self._out = [tuple(o) if o else None for o in out]
        self.size = len(patterns)

    def find(self, text: str) -> list[tuple[int, int, _P]]:
        """(start, end, payload) of every occurrence, in order of end."""
        goto, fail, out = self._goto, self._fail, self._out
        found: list[tuple[int, int, _P]] = []
        state = 0
        for pos, c in enumerate(text):
            while state and c not in goto[state]:
                state = fail[state]
            state = goto[state].get(c, 0)
            hits = out[state]
            if hits is not None:
                end = pos + 1
                for length, payload in hits:
                    found.append((end - length, end, payload))
        return found


@dataclass(frozen=True)
class KeywordLists:
    """One compiled set of lists: immutable, swapped whole on reload."""

    version: str  # content hash of every list file, allowlist included
    counts: dict[str, int]  # entries per category, "allow" included
    automaton: Automaton[_Pattern]
    prefixes: PrefixIndex  # starts of the entries, for words still being spoken

    @classmethod
    def compile(cls, files: dict[str, str], version: str | None = None) -> KeywordLists:
        """`files`: list name ("profanity", "allow", ...) -> file text. Raises KeywordListError."""
        if version is None:
            version = content_version({f"{name}.txt": text.encode() for name, text in files.items()})
        patterns: dict[str, list[Entry]] = {}
        counts: dict[str, int] = {}
        for name in sorted(files):
            if not _CATEGORY_NAME.fullmatch(name):
                raise KeywordListError(f"{name}.txt: a list's name must be lower-case letters, digits and _")
            counts[name] = 0
            for lineno, entry_text in _entries(files[name]):
                folded = normalise(entry_text)
                if not folded:
                    raise KeywordListError(
                        f"{name}.txt:{lineno}: {entry_text!r} has nothing to match "
                        "(only spacing, punctuation or symbols)"
                    )
                entry = Entry(name, entry_text)
                counts[name] += 1
                forms = [folded] if name == ALLOW else [folded, *_digit_readings(folded)]
                for form in forms:
                    same = patterns.setdefault(form, [])
                    if all(e.category != name for e in same):
                        same.append(entry)
        compiled = {
            form: _Pattern(tuple(entries), form[0].isdigit(), form[-1].isdigit()) for form, entries in patterns.items()
        }
        prefixes = PrefixIndex.build(
            (form, e.category, e.text) for form, p in compiled.items() for e in p.entries if e.category != ALLOW
        )
        return cls(version, counts, Automaton(compiled), prefixes)

    @classmethod
    def load(cls, folder: Path) -> KeywordLists:
        """Every *.txt in `folder` (hidden files skipped). Raises KeywordListError."""
        raw = read_folder(folder)
        files = {}
        for filename, data in raw.items():
            try:
                files[filename[:-4]] = data.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise KeywordListError(f"{folder / filename}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        try:
            return cls.compile(files, content_version(raw))
        except KeywordListError as e:
            raise KeywordListError(f"{folder}/{e}") from None

    def scan(self, norm: Normalised) -> list[tuple[int, int, Entry]]:
        """Matches of list entries in folded text, allowlisted ones and those inside a
        longer match of the same category removed: (start, end, entry)."""
        allowed, bad = self._find(norm)
        return [
            (start, end, entry)
            for start, end, entry in bad
            if not any(a <= start and end <= b for a, b in allowed)
            and not any(
                s <= start and end <= e and (s, e) != (start, end) and other.category == entry.category
                for s, e, other in bad
            )
        ]

    def allowed_words(self, norm: Normalised) -> set[int]:
        """The words an allowlist entry's match lies on: false friends, for every check."""
        return {i for start, end in self._find(norm)[0] for i in range(norm.index[start], norm.index[end - 1] + 1)}

    def _find(self, norm: Normalised) -> tuple[list[tuple[int, int]], list[tuple[int, int, Entry]]]:
        """(allowlist matches, other entries' matches) in folded text."""
        text = norm.text
        found = self.automaton.find(text)
        allowed: list[tuple[int, int]] = []
        bad: list[tuple[int, int, Entry]] = []
        index = norm.index
        for start, end, pattern in found:
            joined = index[start] != index[end - 1] and _false_join(index, start, end)
            if pattern.digit_start and start > 0 and text[start - 1].isdigit():
                continue
            if pattern.digit_end and end < len(text) and text[end].isdigit():
                continue
            for entry in pattern.entries:
                if joined and " " not in entry.text:
                    continue  # a one-word entry may not join these words; a phrase may
                if entry.category == ALLOW:
                    allowed.append((start, end))
                else:
                    bad.append((start, end, entry))
        return allowed, bad


def _false_join(index: tuple[int, ...], start: int, end: int) -> bool:
    """A match over several words that a one-word entry may not make (see the docstring)."""
    first, last = index[start], index[end - 1]
    if start > 0 and index[start - 1] == first:
        return True  # begins inside a word
    if end < len(index) and index[end] == last and end - start <= 2:
        return end - index.index(last) < 2  # two syllables, the second the start of a word
    return False


def _entries(text: str) -> Iterable[tuple[int, str]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            yield lineno, entry


def _digit_readings(folded: str) -> list[str]:
    """The entry with 씨발 written 18 and 십/씹 written 10, unless that reads as a number."""
    variant = folded
    for syllables, digits in _DIGIT_READINGS:
        variant = variant.replace(syllables, digits)
    if variant == folded or variant.isdigit():
        return []
    for m in re.finditer(r"\d+", variant):
        if m.end() < len(variant) and variant[m.end()] in _COUNTERS:
            return []
    return [variant]


def read_folder(folder: Path) -> dict[str, bytes]:
    """File name -> bytes of every list file. Raises KeywordListError."""
    try:
        names = sorted(p.name for p in folder.iterdir() if _is_list_file(p.name))
    except OSError as e:
        raise KeywordListError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    if not any(name != f"{ALLOW}.txt" for name in names):
        raise KeywordListError(f"{folder}: no keyword lists (<category>.txt) in the folder")
    raw = {}
    for name in names:
        try:
            raw[name] = (folder / name).read_bytes()
        except OSError as e:
            raise KeywordListError(f"{folder / name}: cannot read ({e.strerror or e})") from None
    return raw


def content_version(raw: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw[name]).digest())
    return "kw-" + digest.hexdigest()[:12]


def _is_list_file(name: str) -> bool:
    return name.endswith(".txt") and not name.startswith(".")


def _signature(folder: Path) -> tuple[object, ...]:
    """What changes when any list file is edited, added, removed or renamed: one stat each."""
    try:
        entries = []
        for path in folder.iterdir():
            if _is_list_file(path.name):
                try:
                    st = path.stat()
                    entries.append((path.name, st.st_mtime_ns, st.st_size))
                except OSError:
                    entries.append((path.name, -1, -1))
        return (folder.stat().st_mtime_ns, tuple(sorted(entries)))
    except OSError:
        return ("unreadable",)


class KeywordMatcher:
    """The server's keyword check: `match(words)` -> hits, lists reloaded when edited.

    Thread-safe: match() may run in several threads while reload_if_changed() swaps in
    new lists (each call uses one compiled set from start to end).
    """

    def __init__(self, config: KeywordConfig) -> None:
        """Loads the lists; raises KeywordListError if they cannot be used at all."""
        folder = config.folder()
        self.config = config
        self.folder = folder
        self._lock = threading.Lock()
        self._signature = _signature(folder)
        self._lists = KeywordLists.load(folder)
        self.error: str | None = None  # why the last reload failed (old lists still in force)

    @property
    def version(self) -> str:
        return self._lists.version

    @property
    def counts(self) -> dict[str, int]:
        """Entries per list ("allow" included), for status pages."""
        return dict(self._lists.counts)

    def match(self, words: list[str], context: Sequence[str] = ()) -> list[Hit]:
        """Hits of list entries on `words`; each names the words its match covers, in order.

        `context` (the words said before, moderation/call_moderator.py) is not read: a list
        entry is abusive on its own, and a phrase is matched within one utterance."""
        lists = self._lists
        main, alt = normalise_words(words)
        hits: dict[tuple[tuple[int, ...], str, str], Hit] = {}
        for norm in (main, alt):
            if norm is None:
                continue
            for start, end, entry in lists.scan(norm):
                covered = tuple(range(norm.index[start], norm.index[end - 1] + 1))
                key = (covered, entry.category, entry.text)
                if key not in hits:
                    hits[key] = Hit(covered, "keyword", entry.category, 1.0, 1.0, entry.text, lists.version)
        return [hits[key] for key in sorted(hits)]

    __call__ = match  # a TextCheck (moderation.call_moderator)

    def allowed_words(self, words: list[str]) -> set[int]:
        """Indices of the words an allowlist entry matches on ("병신년생", "시발점이"): the
        false friends, which no check may call abuse (the text model leaves them out)."""
        lists = self._lists
        main, alt = normalise_words(words)
        return set().union(*(lists.allowed_words(norm) for norm in (main, alt) if norm is not None))

    def match_prefixes(self, words: list[str]) -> list[Hit]:
        """Provisional hits where `words` end in the start of an entry (at least
        config.prefix_min_chars of it): for a word still being spoken, never for finished
        text (moderation/keyword_prefix.py)."""
        if self.config.prefix_min_chars <= 0 or not words:
            return []
        lists = self._lists
        return lists.prefixes.hits(normalise_words(words)[0], self.config.prefix_min_chars, lists.version)

    def mask(self, words: list[str], hits: list[Hit] | None = None, mark: str = "●") -> list[str]:
        """`words` with every word a keyword hit covers replaced by marks of its length."""
        covered = {i for hit in (self.match(words) if hits is None else hits) for i in hit.words}
        return [mark * max(1, len(w)) if i in covered else w for i, w in enumerate(words)]

    def reload_if_changed(self) -> bool:
        """Re-reads the lists if a file changed (a stat per file when nothing did).

        True when new lists are in force. A folder or file that cannot be used leaves the
        old lists in force, sets `error` and logs it; it is tried again after the next edit.
        """
        with self._lock:
            signature = _signature(self.folder)
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                lists = KeywordLists.load(self.folder)
            except KeywordListError as e:
                self.error = str(e)
                log.error("keyword lists not reloaded, %s still in force: %s", self._lists.version, e)
                return False
            self.error = None
            if lists.version == self._lists.version:
                return False
            self._lists = lists
            log.info("keyword lists reloaded: %s %s", lists.version, lists.counts)
            return True
