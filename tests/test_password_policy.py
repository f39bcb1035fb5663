import pytest

from relay.web.password_policy import WeakPassword, check_password, common_passwords


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password", "at least 12"),
        ("12345678", "at least 12"),
        (" " * 8, "at least 12"),
        (" " * 12, "different characters"),
        ("abcabcabcabc", "different characters"),
        ("password1234", "too common"),
        ("Password1234!", "too common"),
        ("2024sunshine!", "too common"),
        ("qwerty123456", "too common"),
        ("1q2w3e4r5t6y", "too common"),
        ("123456789012", "too common"),
        ("ＰＡＳＳＷＯＲＤ１２３４", "too common"),  # full width is folded first
        ("annabelle-2024", "user name"),
        ("x" * 1025, "at most"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword, match=reason):
        check_password(password, "annabelle", 12)


@pytest.mark.parametrize("password", ["correct-horse-battery", "tangerine kettle voyage", "Wq7#pL0v!zRt"])
def test_good_passwords_pass(password: str) -> None:
    check_password(password, "anna", 12)


def test_the_list_ships_with_the_package_and_is_folded() -> None:
    words = common_passwords()
    assert len(words) > 200 and "password" in words and "qwerty" in words
    assert all(w == w.casefold() and w == w.strip() for w in words)


def test_a_longer_minimum_is_kept() -> None:
    with pytest.raises(WeakPassword, match="at least 16"):
        check_password("correct-horse", "anna", 16)
