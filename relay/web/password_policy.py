"""What a new password must be: long, and not one that guessing lists try first.

Length is what makes a password hard to guess; composition rules mostly make people
write Password1!. So the rules are: at least auth.password_min_length characters (12 or
more), not the user's name, more than a handful of distinct characters (eight spaces,
"abcabcabcabc"), and not a common password, also when digits or symbols are stuck on
before or after it (password1234!, 2024sunshine, qwerty123456). The list of common
passwords ships with the package (common_passwords.txt).
"""

from __future__ import annotations

import string
import unicodedata
from functools import cache
from pathlib import Path

COMMON_PASSWORDS = Path(__file__).resolve().parent / "common_passwords.txt"
MAX_LENGTH = 1024  # a passphrase, not a payload: scrypt reads every byte
MIN_DISTINCT = 5
_AFFIXES = string.digits + string.punctuation + " "


class WeakPassword(ValueError):
    pass


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def check_password(password: str, user_name: str, min_length: int) -> None:
    """Raises WeakPassword with the reason a person can act on."""
    if len(password) < min_length:
        raise WeakPassword(f"password must be at least {min_length} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_LENGTH} characters")
    folded = _fold(password)
    if len(set(folded)) < MIN_DISTINCT:
        raise WeakPassword(f"password must have at least {MIN_DISTINCT} different characters")
    name = _fold(user_name)
    if len(name) >= 3 and name in folded:
        raise WeakPassword("password must not contain the user name")
    core = folded.strip(_AFFIXES)
    common = common_passwords()
    if not core or folded in common or core in common or core.replace(" ", "") in common:
        raise WeakPassword("password is too common: choose a longer phrase of unrelated words")
