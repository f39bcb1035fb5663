import unicodedata

import pytest

from moderation.normalise import choseong, compose_jamo, from_keyboard, normalise, normalise_words


@pytest.mark.parametrize(
    "text, folded",
    [
        # spacing and punctuation between syllables
        ("씨 발", "씨발"),
        ("씨.발", "씨발"),
        ("씨*발!!", "씨발"),
        ("씨~발♥", "씨발"),
        ("죽여 버린다", "죽여버린다"),
        # one digit or letter between Hangul is filler; a longer number stays
        ("씨1발", "씨발"),
        ("씨 1 발", "씨발"),
        ("씨x발", "씨발"),
        ("ㅅ1ㅂ", "ㅅㅂ"),
        ("18놈", "18놈"),
        ("2018년", "2018년"),
        ("사과 3 개", "사과개"),
        # initial consonants stay consonants; double-consonant letters split
        ("ㅅ ㅂ", "ㅅㅂ"),
        ("ㅄ", "ㅂㅅ"),
        # jamo typed one by one compose like a 2-set keyboard
        ("ㅆㅣㅂㅏㄹ", "씨발"),
        ("ㄱㅐ새끼", "개새끼"),
        # repeats
        ("씨이이발", "씨발"),
        ("씨발발발", "씨발"),
        ("주우욱여", "죽여"),
        ("개애애새끼", "개새끼"),
        ("시이이발", "시발"),
        # a y- or w- vowel is held as the plain vowel it ends on
        ("벼엉신", "병신"),
        ("벼어어엉신", "병신"),
        ("과아", "과"),
        ("여우", "여우"),
        # masking symbols are a masked letter: filler between Hangul, kept at a word's edge
        ("씨●발", "씨발"),
        ("씨X", "씨x"),
        ("씨**", "씨x"),
        ("씨X 진짜", "씨x진짜"),
        ("개●끼", "개끼"),
        ("ㅋㅋㅋㅋㅋ", "ㅋㅋ"),
        ("ㅅㅅ", "ㅅㅅ"),
        ("fuuuck", "fuck"),
        # NFKC: full-width letters and digits, half-width jamo, case
        ("ＳＥＸ", "sex"),
        ("１８놈", "18놈"),
        ("ﾡﾻ", "ㄱㅋ"),
        ("FUCK", "fuck"),
        # ordinary words are left alone
        ("안녕하세요", "안녕하세요"),
        ("환불 해 주세요", "환불해주세요"),
    ],
)
def test_folding(text: str, folded: str) -> None:
    assert normalise(text) == folded


def test_decomposed_text_keeps_its_syllables() -> None:
    nfd = unicodedata.normalize("NFD", "갔어 씨발")
    assert nfd != "갔어 씨발"
    assert normalise(nfd) == "갔어씨발"


def test_every_character_maps_back_to_its_word() -> None:
    main, alt = normalise_words(["아니", "씨.발", "1", "진짜", "...", "죽여"])
    assert main.text == "아니씨발진짜죽여"
    assert main.index == (0, 0, 1, 1, 3, 3, 5, 5)
    assert alt is None


def test_filler_between_words_is_dropped_from_the_index_too() -> None:
    main, _ = normalise_words(["씨", "1", "발"])
    assert (main.text, main.index) == ("씨발", (0, 2))


def test_keyboard_latin_is_read_as_korean_in_the_alternative_form() -> None:
    main, alt = normalise_words(["아", "tlqkf", "진짜"])
    assert main.text == "아tlqkf진짜"  # the letters themselves stay in the main form
    assert alt is not None and alt.text == "아시발진짜"
    assert alt.index == (0, 1, 1, 2, 2)
    assert normalise_words(["Tlqkf"])[1].text == "씨발"  # shift-T is ㅆ
    assert normalise_words(["tq"])[1].text == "ㅅㅂ"  # consonants only: an abbreviation


@pytest.mark.parametrize("english", ["macro", "accident", "miracamfree", "Hello"])
def test_english_words_have_no_keyboard_reading(english: str) -> None:
    assert normalise_words([english])[1] is None


def test_a_syllable_next_to_a_lone_consonant_reduces_to_its_initial() -> None:
    assert normalise_words(["ㅅ발"])[1].text == "ㅅㅂ"
    assert normalise_words(["시ㅂ"])[1].text == "ㅅㅂ"
    # laughter never reduces a neighbour
    assert normalise_words(["ㅋㅋ사부님"])[1] is None


def test_compose_jamo() -> None:
    assert compose_jamo("ㄱㅐㅅㅐㄲㅣ") == "개새끼"
    assert compose_jamo("ㅇㅏㄴㅈㅇㅏ") == "앉아"  # compound final, then a new syllable
    assert compose_jamo("ㄷㅗㅣ") == "되"  # compound vowel
    assert compose_jamo("ㅅㅂ") == "ㅅㅂ"  # no vowel: nothing to compose
    assert from_keyboard("dkssud") == "안녕"


def test_choseong() -> None:
    assert choseong("시발 ok") == "ㅅㅂ ok"
