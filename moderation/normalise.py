"""Korean text folded into one canonical form for keyword matching, mapped back to words.

Abuse gets disguised, in typed text above all, and a little in transcripts ("씨이발"
for a drawn-out word). Both the keyword lists and the checked words go through the same
folding, so an entry matches every disguise the folding undoes:

- NFKC (full- and half-width forms, circled digits, half-width jamo), then Latin to lower
  case; conjoining jamo become compatibility jamo (ㅅ, ㅏ) so there is one alphabet.
- Everything but Hangul syllables, jamo, Latin letters and digits goes: spaces,
  punctuation, symbols, emoji ("씨.발", "씨*발"). Spacing between words goes too, so a
  phrase matches across words ("죽여 버린다" = "죽여버린다").
- One digit or Latin letter standing between two Hangul characters is filler and goes
  ("씨1발", "씨 1 발", "ㅅ1ㅂ", "씨x발"); longer digit runs stay, so list entries such as
  "18놈" and "10새끼" (digit readings of 씨발 and 십) can match.
- Jamo spelled out one by one are composed the way a 2-set Korean keyboard would
  ("ㅆㅣㅂㅏㄹ" -> 씨발, "ㄱㅐ새끼" -> 개새끼); consonants with no vowel stay as they are, so
  an initial-consonant form ("ㅅㅂ", "ㅂㅅ", "ㅈㄹ") matches an entry written in choseong.
  A double-consonant letter splits ("ㅄ" -> "ㅂㅅ").
- Repeats inside a word collapse: a run of one syllable or letter becomes one
  ("씨발발발" -> 씨발), a run of three or more jamo becomes two ("ㅋㅋㅋㅋ" -> "ㅋㅋ"), and
  a vowel drawn out with ㅇ folds into the syllable before it
  ("씨이이발" -> 씨발, "주우욱여" -> 죽여, "벼엉신" -> 병신: a y- or w- vowel is held as
  the plain vowel it ends on).
- Symbols that mask a letter (*, ●, ○, ■, ×) read as "x", like a typed X: between Hangul
  it is filler and goes ("씨*발"), at a word's edge it stays ("씨X", "씨**" -> "씨x"), for
  list entries written with X.

Some disguises have two readings, so each word also has an alternative form (used only
when it differs, in a second scan): Latin letters read as keys typed on a 2-set Korean
keyboard ("tlqkf" -> 시발, "Tlqkf" -> 씨발, "qt" -> ㅂㅅ) where they spell whole syllables
or only consonants (English words leave stray jamo and keep their letters), and a syllable next to a lone
consonant reduced to its initial consonant ("ㅅ발", "시ㅂ" -> "ㅅㅂ").

Every character of the folded text keeps the index of the word it came from (`index`), so
a match maps back to the words it covers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

SYLLABLE_FIRST = 0xAC00
SYLLABLE_LAST = 0xD7A3
CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
JONGSEONG = (
    "",
    "ㄱ",
    "ㄲ",
    "ㄳ",
    "ㄴ",
    "ㄵ",
    "ㄶ",
    "ㄷ",
    "ㄹ",
    "ㄺ",
    "ㄻ",
    "ㄼ",
    "ㄽ",
    "ㄾ",
    "ㄿ",
    "ㅀ",
    "ㅁ",
    "ㅂ",
    "ㅄ",
    "ㅅ",
    "ㅆ",
    "ㅇ",
    "ㅈ",
    "ㅊ",
    "ㅋ",
    "ㅌ",
    "ㅍ",
    "ㅎ",
)
_CHO_INDEX = {c: i for i, c in enumerate(CHOSEONG)}
_JUNG_INDEX = {c: i for i, c in enumerate(JUNGSEONG)}
_JONG_INDEX = {c: i for i, c in enumerate(JONGSEONG) if c}
_VOWEL_PAIRS = {
    ("ㅗ", "ㅏ"): "ㅘ",
    ("ㅗ", "ㅐ"): "ㅙ",
    ("ㅗ", "ㅣ"): "ㅚ",
    ("ㅜ", "ㅓ"): "ㅝ",
    ("ㅜ", "ㅔ"): "ㅞ",
    ("ㅜ", "ㅣ"): "ㅟ",
    ("ㅡ", "ㅣ"): "ㅢ",
}
_FINAL_PAIRS = {
    ("ㄱ", "ㅅ"): "ㄳ",
    ("ㄴ", "ㅈ"): "ㄵ",
    ("ㄴ", "ㅎ"): "ㄶ",
    ("ㄹ", "ㄱ"): "ㄺ",
    ("ㄹ", "ㅁ"): "ㄻ",
    ("ㄹ", "ㅂ"): "ㄼ",
    ("ㄹ", "ㅅ"): "ㄽ",
    ("ㄹ", "ㅌ"): "ㄾ",
    ("ㄹ", "ㅍ"): "ㄿ",
    ("ㄹ", "ㅎ"): "ㅀ",
    ("ㅂ", "ㅅ"): "ㅄ",
}
# A double-consonant letter typed on its own stands for its two consonants ("ㅄ" = ㅂㅅ).
_SPLIT_CONSONANTS = str.maketrans({v: a + b for (a, b), v in _FINAL_PAIRS.items()})

# Conjoining jamo (what NFKC makes of ㅅ, and what NFD text holds) -> compatibility jamo.
_TO_COMPAT = str.maketrans(
    {
        **{chr(0x1100 + i): c for i, c in enumerate(CHOSEONG)},
        **{chr(0x1161 + i): c for i, c in enumerate(JUNGSEONG)},
        **{chr(0x11A8 + i - 1): c for i, c in enumerate(JONGSEONG) if c},
    }
)

# A 2-set (dubeolsik) Korean keyboard: the key each jamo is on. Shift gives the five
# doubled consonants and two vowels; other capitals type like lower case.
_KEYBOARD = {
    "q": "ㅂ",
    "w": "ㅈ",
    "e": "ㄷ",
    "r": "ㄱ",
    "t": "ㅅ",
    "y": "ㅛ",
    "u": "ㅕ",
    "i": "ㅑ",
    "o": "ㅐ",
    "p": "ㅔ",
    "a": "ㅁ",
    "s": "ㄴ",
    "d": "ㅇ",
    "f": "ㄹ",
    "g": "ㅎ",
    "h": "ㅗ",
    "j": "ㅓ",
    "k": "ㅏ",
    "l": "ㅣ",
    "z": "ㅋ",
    "x": "ㅌ",
    "c": "ㅊ",
    "v": "ㅍ",
    "b": "ㅠ",
    "n": "ㅜ",
    "m": "ㅡ",
}
_KEYBOARD.update({k.upper(): v for k, v in _KEYBOARD.items()})
_KEYBOARD.update({"Q": "ㅃ", "W": "ㅉ", "E": "ㄸ", "R": "ㄲ", "T": "ㅆ", "O": "ㅒ", "P": "ㅖ"})
_FROM_KEYBOARD = str.maketrans(_KEYBOARD)

_HANGUL = "가-힣ㄱ-ㅣ"
_PLAIN_WORD = re.compile("[가-힣]+")
_DROP = re.compile(f"[^{_HANGUL}A-Za-z0-9]+")
_JAMO_RUN = re.compile("[ㄱ-ㅣ]+")
_HAS_VOWEL = re.compile("[ㅏ-ㅣ]")
_LATIN_RUN = re.compile("[A-Za-z]+")
# Syllables and letters: a run becomes one. Jamo: a run of three or more becomes two, so
# doubled abbreviations ("ㅅㅅ", "ㅂㅂ") keep their meaning. Digits are numbers: never.
_REPEAT = re.compile(r"([가-힣a-z])\1+")
_JAMO_REPEAT = re.compile(r"([ㄱ-ㅣ])\1\1+")
_O_SYLLABLE = re.compile("[아-잏]")  # syllables starting with ㅇ: the ones a drawn-out vowel makes
# One digit or Latin letter between Hangul characters (after spacing is gone) is filler.
_FILLER = re.compile(f"(?<=[{_HANGUL}])[0-9a-z](?=[{_HANGUL}])")
_HAS_FILLER_CANDIDATE = re.compile("[0-9a-z]")
# A y- or w- vowel ends on a plain one: drawn out, it is that one that is held
# ("벼어엉신": ㅕ held as ㅓ). Indices into JUNGSEONG.
_GLIDES_INTO = {
    JUNGSEONG.index(glide): JUNGSEONG.index(plain)
    for glide, plain in (
        ("ㅑ", "ㅏ"),
        ("ㅕ", "ㅓ"),
        ("ㅛ", "ㅗ"),
        ("ㅠ", "ㅜ"),
        ("ㅒ", "ㅐ"),
        ("ㅖ", "ㅔ"),
        ("ㅘ", "ㅏ"),
        ("ㅝ", "ㅓ"),
        ("ㅙ", "ㅐ"),
        ("ㅞ", "ㅔ"),
        ("ㅟ", "ㅣ"),
        ("ㅢ", "ㅣ"),
    )
}
# Symbols that mask a letter ("씨X", "씨**", "개●끼") read as "x", one masked letter: where
# Hangul stands on both sides the filler rule drops it ("씨*발" = 씨발), at a word's edge it
# stays, so list entries written with X ("씨X", "X발") match every masking symbol.
_MASKS = str.maketrans({c: "x" for c in "*●○◯■□×"})
# Lone consonants that are laughter, not abbreviations: they never reduce a neighbour.
_LAUGHTER = frozenset("ㅋㅎ")


def is_syllable(c: str) -> bool:
    return SYLLABLE_FIRST <= ord(c) <= SYLLABLE_LAST


def split_syllable(c: str) -> tuple[str, str, str]:
    """(initial consonant, vowel, final consonant or "") of a Hangul syllable."""
    code = ord(c) - SYLLABLE_FIRST
    return CHOSEONG[code // 588], JUNGSEONG[code % 588 // 28], JONGSEONG[code % 28]


def join_syllable(initial: str, vowel: str, final: str = "") -> str:
    return chr(
        SYLLABLE_FIRST + (_CHO_INDEX[initial] * 21 + _JUNG_INDEX[vowel]) * 28 + (_JONG_INDEX[final] if final else 0)
    )


def choseong(text: str) -> str:
    """Each syllable reduced to its initial consonant; other characters kept ("시발" -> "ㅅㅂ")."""
    return "".join(split_syllable(c)[0] if is_syllable(c) else c for c in text)


def compose_jamo(jamo: str) -> str:
    """Jamo in typing order composed as a 2-set keyboard's input method would ("ㅆㅣㅂㅏㄹ" -> "씨발").

    A consonant followed by a vowel starts a syllable; a consonant not followed by a vowel
    closes the syllable before it. Consonants with no vowel and vowels with no consonant
    are left as they are.
    """
    out: list[str] = []
    i, n = 0, len(jamo)
    while i < n:
        c = jamo[i]
        if c in _CHO_INDEX and i + 1 < n and jamo[i + 1] in _JUNG_INDEX:
            vowel, j = jamo[i + 1], i + 2
            if j < n and (vowel, jamo[j]) in _VOWEL_PAIRS:
                vowel, j = _VOWEL_PAIRS[vowel, jamo[j]], j + 1
            final = ""
            if j < n and jamo[j] in _JONG_INDEX and not (j + 1 < n and jamo[j + 1] in _JUNG_INDEX):
                final, j = jamo[j], j + 1
                if j < n and (final, jamo[j]) in _FINAL_PAIRS and not (j + 1 < n and jamo[j + 1] in _JUNG_INDEX):
                    final, j = _FINAL_PAIRS[final, jamo[j]], j + 1
            out.append(join_syllable(c, vowel, final))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def from_keyboard(latin: str) -> str:
    """Latin letters read as keys of a 2-set Korean keyboard ("tlqkf" -> "시발")."""
    return compose_jamo(latin.translate(_FROM_KEYBOARD))


def _keyboard_reading(m: re.Match[str]) -> str:
    """A Latin run as 2-set keys, where that reads as Korean: whole syllables ("tlqkf") or
    consonants only ("tq" = ㅅㅂ). English does not ("macro", "accident" leave stray jamo)."""
    jamo = m.group().translate(_FROM_KEYBOARD)
    if not _HAS_VOWEL.search(jamo):
        return jamo
    composed = compose_jamo(jamo)
    return composed if _PLAIN_WORD.fullmatch(composed) else m.group()


def _compose_runs(text: str) -> str:
    """Compose every run of jamo that holds a vowel; consonant-only runs stay (choseong forms)."""

    def compose(m: re.Match[str]) -> str:
        run = m.group()
        return compose_jamo(run) if _HAS_VOWEL.search(run) else run

    return _JAMO_RUN.sub(compose, text)


def _squeeze(text: str) -> str:
    """Repeats collapse: runs of one character, and vowels drawn out with ㅇ ("씨이이발")."""
    if _REPEAT.search(text):
        text = _REPEAT.sub(_first, text)
    if _JAMO_REPEAT.search(text):
        text = _JAMO_REPEAT.sub(_first_two, text)
    if not any(_drawn_out(text[m.start() - 1], m.group()) for m in _O_SYLLABLE.finditer(text, 1)):
        return text
    out: list[str] = []
    for c in text:
        if out and _drawn_out(out[-1], c):
            drawn_final = (ord(c) - SYLLABLE_FIRST) % 28
            if drawn_final:  # "주우욱" -> 죽: the drawn-out syllable's final closes the one before
                out[-1] = chr(ord(out[-1]) + drawn_final)
            continue
        out.append(c)
    return "".join(out)


def _drawn_out(before: str, c: str) -> bool:
    """`c` (ㅇ + vowel) only draws out `before`: `before` has no final, and `c`'s vowel is
    the one `before` ends on (the same, or the plain vowel a y- or w- vowel glides into:
    "벼엉" ㅕ then ㅓ, "과아" ㅘ then ㅏ)."""
    b, d = ord(before) - SYLLABLE_FIRST, ord(c) - SYLLABLE_FIRST
    if not (0 <= b < 11172 and b % 28 == 0 and 0 <= d < 11172 and d // 588 == 11):
        return False
    vowel, drawn = b % 588 // 28, d % 588 // 28
    return drawn == vowel or drawn == _GLIDES_INTO.get(vowel)


def _first(m: re.Match[str]) -> str:
    return m.group(1)


def _first_two(m: re.Match[str]) -> str:
    return m.group(1) * 2


def _reduce_next_to_consonants(text: str) -> str:
    """A syllable touching a lone consonant becomes its initial consonant ("ㅅ발" -> "ㅅㅂ")."""
    chars = list(text)
    for i, c in enumerate(text):
        if c in _CHO_INDEX and c not in _LAUGHTER:
            for j in (i - 1, i + 1):
                if 0 <= j < len(text) and is_syllable(text[j]):
                    chars[j] = split_syllable(text[j])[0]
    return "".join(chars)


@lru_cache(maxsize=65536)
def normalise_word(word: str) -> tuple[str, str | None]:
    """(folded form, alternative form or None when it is the same) of one word on its own.

    The filler rule (one digit or letter between Hangul) needs the neighbouring words,
    so it is applied by normalise_words, not here.
    """
    if _PLAIN_WORD.fullmatch(word):  # the common case in transcripts: syllables only
        return _squeeze(word), None
    # Canonical composition first (text stored decomposed keeps its syllables), then
    # NFKC one character at a time, so NFKC cannot glue separate jamo into a syllable
    # the typist did not write ("ㅆㅣㅂㅏㄹ" is composed below, with its final consonant).
    word = unicodedata.normalize("NFC", word).translate(_SPLIT_CONSONANTS)
    text = "".join(unicodedata.normalize("NFKC", c) for c in word).translate(_MASKS)
    text = _DROP.sub("", text.translate(_TO_COMPAT)).translate(_SPLIT_CONSONANTS)
    main = _squeeze(_compose_runs(text).lower())
    alt = _LATIN_RUN.sub(_keyboard_reading, text) if _LATIN_RUN.search(text) else text
    alt = _reduce_next_to_consonants(_compose_runs(alt).lower())
    alt = _squeeze(alt)
    return main, (alt if alt != main else None)


@dataclass(frozen=True)
class Normalised:
    """Folded text of a list of words; index[k] is the word that character k came from."""

    text: str
    index: tuple[int, ...]


def _assemble(parts: list[str]) -> Normalised:
    text = "".join(parts)
    index: list[int] = []
    for i, part in enumerate(parts):
        index.extend([i] * len(part))
    if _HAS_FILLER_CANDIDATE.search(text):
        keep = [True] * len(text)
        for m in _FILLER.finditer(text):
            # Filler inside a word ("씨1발") or a word of its own ("씨 1 발"); one ending or
            # starting a longer word is a masked letter ("씨X 진짜") and stays.
            k = m.start()
            before, after = index[k - 1] == index[k], index[k + 1] == index[k]
            if before == after:
                keep[k] = False
        if not all(keep):
            text = "".join(c for c, k in zip(text, keep) if k)
            index = [i for i, k in zip(index, keep) if k]
    return Normalised(text, tuple(index))


def normalise_words(words: list[str]) -> tuple[Normalised, Normalised | None]:
    """The folded form of `words`, and the alternative form where any word has one."""
    forms = [normalise_word(w) for w in words]
    main = _assemble([m for m, _ in forms])
    if all(a is None for _, a in forms):
        return main, None
    return main, _assemble([m if a is None else a for m, a in forms])


def normalise(text: str) -> str:
    """The folded form of a text (split at whitespace): what a list entry is matched as."""
    return normalise_words(text.split())[0].text
