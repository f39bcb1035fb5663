import os
from pathlib import Path

import pytest

from moderation.hits import Hit
from moderation.keyword_config import BUILTIN_LISTS, KeywordConfig
from moderation.keywords import Automaton, KeywordListError, KeywordMatcher

LISTS = {
    "profanity.txt": "# test list\n씨발\n시발  # trailing comment\nㅅㅂ\n씨발놈\n존나\n",
    "insult.txt": "개새끼\n병신\n",
    "threat.txt": "죽여 버린다\n찾아가서 죽\n",
    "allow.txt": "시발점\n병신년\n수박씨발라\n",
}


def write_lists(folder: Path, files: dict[str, str] = LISTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def lists_dir(tmp_path: Path) -> Path:
    return write_lists(tmp_path / "keywords")


@pytest.fixture
def matcher(lists_dir: Path) -> KeywordMatcher:
    return KeywordMatcher(KeywordConfig(lists_dir=str(lists_dir)))


def found(matcher: KeywordMatcher, text: str) -> list[tuple[tuple[int, ...], str, str]]:
    return [(h.words, h.category, h.detail) for h in matcher.match(text.split())]


def test_a_hit_is_a_keyword_record_with_the_entry_and_the_lists_version(matcher: KeywordMatcher) -> None:
    (hit,) = matcher.match(["환불", "해", "씨발"])
    assert hit == Hit(
        words=(2,),
        source="keyword",
        category="profanity",
        score=1.0,
        threshold=1.0,
        detail="씨발",
        version=matcher.version,
    )
    assert matcher.version.startswith("kw-") and len(matcher.version) == 15


def test_clean_words_give_no_hits(matcher: KeywordMatcher) -> None:
    assert matcher.match("안녕하세요 환불 좀 해 주세요".split()) == []
    assert matcher.match([]) == []
    assert matcher.match(["ㅋㅋㅋ", "수박", "사부님"]) == []  # ㅅㅂ is not 수박 or 사부


@pytest.mark.parametrize(
    "disguise",
    [
        "씨1발",
        "씨.발",
        "씨 발",
        "씨이이발",
        "ㅆㅣㅂㅏㄹ",
        "Tlqkf",
        "씨x발",
        "ｼ씨발",
        "씨발발",
    ],
)
def test_disguised_spellings_fire(matcher: KeywordMatcher, disguise: str) -> None:
    hits = found(matcher, f"야 {disguise} 뭐야")
    assert hits and all(category == "profanity" for _, category, _ in hits)
    assert {detail for _, _, detail in hits} <= {"씨발", "시발"}


@pytest.mark.parametrize(
    "text, words",
    [
        ("ㅅㅂ 뭐야", (0,)),
        ("ㅅ 1 ㅂ 뭐야", (0, 1, 2)),
        ("ㅅ발 뭐야", (0,)),
        ("tq 뭐야", (0,)),
    ],
)
def test_initial_consonant_forms_fire(matcher: KeywordMatcher, text: str, words: tuple[int, ...]) -> None:
    assert found(matcher, text) == [(words, "profanity", "ㅅㅂ")]


def test_digit_reading_fires_but_numbers_do_not(matcher: KeywordMatcher) -> None:
    assert found(matcher, "이 18놈아") == [((1,), "profanity", "씨발놈")]
    assert found(matcher, "이 18 놈아") == [((1, 2), "profanity", "씨발놈")]
    assert found(matcher, "2018놈") == []  # part of a longer number
    assert found(matcher, "18년 동안 18일 에 18만원") == []


def test_back_to_back_words_give_one_hit_each(matcher: KeywordMatcher) -> None:
    assert found(matcher, "씨발 개새끼 병신") == [
        ((0,), "profanity", "씨발"),
        ((1,), "insult", "개새끼"),
        ((2,), "insult", "병신"),
    ]
    # glued together in one word, the hits share it
    assert found(matcher, "씨발개새끼") == [((0,), "insult", "개새끼"), ((0,), "profanity", "씨발")]


def test_a_longer_entry_of_the_same_category_replaces_the_one_inside_it(matcher: KeywordMatcher) -> None:
    assert found(matcher, "이 씨발놈아") == [((1,), "profanity", "씨발놈")]


def test_a_phrase_matches_across_words_and_covers_exactly_its_words(matcher: KeywordMatcher) -> None:
    assert found(matcher, "내가 너 죽여 버린다 진짜") == [((2, 3), "threat", "죽여 버린다")]
    assert found(matcher, "죽여버린다") == [((0,), "threat", "죽여 버린다")]
    assert found(matcher, "찾아가서 죽일 거야") == [((0, 1), "threat", "찾아가서 죽")]
    assert found(matcher, "매장 찾아가서 교환 했어요") == []


def test_a_hit_covers_the_filler_words_inside_it_but_not_its_neighbours(matcher: KeywordMatcher) -> None:
    assert found(matcher, "아 씨 . 1 발 환불") == [((1, 2, 3, 4), "profanity", "씨발")]


@pytest.mark.parametrize("text", ["시발점 이 어디 예요", "병신년 생 입니다", "수박씨 발라 먹어요", "시발 점"])
def test_allowlisted_false_friends_do_not_fire(matcher: KeywordMatcher, text: str) -> None:
    assert found(matcher, text) == []


def test_true_hits_next_to_false_friends_still_fire(matcher: KeywordMatcher) -> None:
    assert found(matcher, "시발점 에서 시발") == [((2,), "profanity", "시발")]
    assert found(matcher, "병신 병신년") == [((0,), "insult", "병신")]
    # an allow entry hides what lies inside it, not the next word
    assert found(matcher, "수박씨발라 씨발") == [((1,), "profanity", "씨발")]


def test_an_allow_entry_does_not_hide_a_match_reaching_outside_it(tmp_path: Path) -> None:
    folder = write_lists(tmp_path / "kw", {"profanity.txt": "발라먹어\n", "allow.txt": "씨발라\n"})
    matcher = KeywordMatcher(KeywordConfig(lists_dir=str(folder)))
    assert found(matcher, "씨발라먹어") == [((0,), "profanity", "발라먹어")]
    assert found(matcher, "씨발라") == []


def test_mask_hides_the_words_hits_cover(matcher: KeywordMatcher) -> None:
    assert matcher.mask(["환불", "씨발", "해줘"]) == ["환불", "●●", "해줘"]
    assert matcher.mask(["환불", "해줘"]) == ["환불", "해줘"]


def test_the_automaton_finds_overlapping_and_nested_patterns() -> None:
    automaton = Automaton({"he": 1, "she": 2, "his": 3, "hers": 4})
    assert sorted(automaton.find("ushers")) == [(1, 4, 2), (2, 4, 1), (2, 6, 4)]
    assert automaton.find("xyz") == []


# --- reload ---------------------------------------------------------------------------


def test_an_edited_list_is_picked_up_and_changes_the_version(matcher: KeywordMatcher, lists_dir: Path) -> None:
    old_version = matcher.version
    assert matcher.reload_if_changed() is False  # nothing changed
    assert found(matcher, "닥쳐 진짜") == []
    (lists_dir / "insult.txt").write_text("개새끼\n병신\n닥쳐\n", encoding="utf-8")
    assert matcher.reload_if_changed() is True
    assert found(matcher, "닥쳐 진짜") == [((0,), "insult", "닥쳐")]
    assert matcher.version != old_version
    assert matcher.match(["닥쳐"])[0].version == matcher.version
    assert matcher.reload_if_changed() is False


def test_a_new_list_file_is_a_new_category(matcher: KeywordMatcher, lists_dir: Path) -> None:
    (lists_dir / "spam.txt").write_text("광고문자\n", encoding="utf-8")
    assert matcher.reload_if_changed() is True
    assert found(matcher, "광고 문자") == [((0, 1), "spam", "광고문자")]
    assert matcher.counts["spam"] == 1


def test_an_allowlist_edit_changes_the_version_and_the_hits(matcher: KeywordMatcher, lists_dir: Path) -> None:
    old_version = matcher.version
    assert found(matcher, "씨발 점")
    (lists_dir / "allow.txt").write_text(LISTS["allow.txt"] + "씨발점\n", encoding="utf-8")
    assert matcher.reload_if_changed() is True
    assert matcher.version != old_version
    assert found(matcher, "씨발 점") == []


def test_touching_a_file_without_changing_it_is_not_a_reload(matcher: KeywordMatcher, lists_dir: Path) -> None:
    st = (lists_dir / "insult.txt").stat()
    os.utime(lists_dir / "insult.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert matcher.reload_if_changed() is False
    assert matcher.error is None


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "insult.txt").write_bytes(b"\xff\xfe broken \x80\n"), "insult.txt: not UTF-8"),
        (lambda d: (d / "threat.txt").write_text("죽여 버린다\n!!!\n", encoding="utf-8"), "threat.txt:2"),
        (lambda d: ((d / "insult.txt").unlink(), (d / "insult.txt").mkdir()), "insult.txt: cannot read"),
        (lambda d: (d / "Bad Name.txt").write_text("x\n", encoding="utf-8"), "Bad Name.txt"),
        (lambda d: [p.unlink() for p in d.glob("*.txt") if p.name != "allow.txt"], "no keyword lists"),
    ],
)
def test_a_broken_list_keeps_the_old_lists_and_reports(
    matcher: KeywordMatcher, lists_dir: Path, breakage, message: str
) -> None:
    old_version = matcher.version
    breakage(lists_dir)
    assert matcher.reload_if_changed() is False
    assert matcher.error is not None and message in matcher.error
    assert matcher.version == old_version
    assert found(matcher, "씨발 개새끼") == [((0,), "profanity", "씨발"), ((1,), "insult", "개새끼")]
    assert matcher.reload_if_changed() is False  # reported once, not retried until the next edit


def test_a_fixed_list_is_picked_up_after_a_broken_one(matcher: KeywordMatcher, lists_dir: Path) -> None:
    (lists_dir / "insult.txt").write_bytes(b"\xff\n")
    assert matcher.reload_if_changed() is False and matcher.error
    (lists_dir / "insult.txt").write_text("개새끼\n병신\n닥쳐\n", encoding="utf-8")
    assert matcher.reload_if_changed() is True
    assert matcher.error is None
    assert found(matcher, "닥쳐") == [((0,), "insult", "닥쳐")]


def test_a_missing_folder_keeps_the_old_lists(tmp_path: Path) -> None:
    folder = write_lists(tmp_path / "kw")
    matcher = KeywordMatcher(KeywordConfig(lists_dir=str(folder)))
    folder.rename(tmp_path / "elsewhere")
    assert matcher.reload_if_changed() is False
    assert "cannot list" in (matcher.error or "")
    assert found(matcher, "씨발") == [((0,), "profanity", "씨발")]


def test_unusable_lists_at_start_raise(tmp_path: Path) -> None:
    with pytest.raises(KeywordListError, match="cannot list"):
        KeywordMatcher(KeywordConfig(lists_dir=str(tmp_path / "missing")))
    folder = write_lists(tmp_path / "kw", {"profanity.txt": "씨발\n\xa0?!\n"})
    with pytest.raises(KeywordListError, match="profanity.txt:2"):
        KeywordMatcher(KeywordConfig(lists_dir=str(folder)))


def test_the_shipped_lists_are_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    matcher = KeywordMatcher(KeywordConfig())
    assert matcher.folder == BUILTIN_LISTS
    assert {"profanity", "insult", "threat", "sexual_harassment"} <= set(matcher.counts)
    assert found(matcher, "씨발")


def test_config_validation_names_the_key() -> None:
    KeywordConfig().validate()
    with pytest.raises(ValueError, match="keywords.reload_interval_s"):
        KeywordConfig(reload_interval_s=-1).validate()


# --- the shipped lists ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> KeywordMatcher:
    return KeywordMatcher(KeywordConfig())


def test_the_shipped_lists_have_their_categories_and_an_allowlist(shipped: KeywordMatcher) -> None:
    counts = shipped.counts
    assert set(counts) == {"profanity", "insult", "threat", "sexual_harassment", "hate", "allow"}
    assert all(n >= 50 for name, n in counts.items() if name != "hate") and counts["hate"] >= 20


@pytest.mark.parametrize(
    "text, category, words",
    [
        ("아니 씨발 뭐 하는 거야", "profanity", (1,)),
        ("ㅅㅂ 진짜 짜증 나네", "profanity", (0,)),
        ("tlqkf 몇 시간 째야", "profanity", (0,)),
        ("이 개새끼 야", "insult", (1,)),
        ("상담원 주제에 어디서", "insult", (0, 1)),
        ("너 찾아가서 죽여 버린다", "threat", (2, 3)),
        ("집 주소 알아 내는 거 어렵지 않아", "threat", (0, 1, 2)),
        ("퇴근길 조심 해라", "threat", (0, 1)),
        ("목소리가 섹시 하네", "sexual_harassment", (0, 1)),
        ("아가씨 남친 있냐", "sexual_harassment", (1, 2)),
    ],
)
def test_shipped_lists_catch_abuse(shipped: KeywordMatcher, text: str, category: str, words: tuple[int, ...]) -> None:
    assert (words, category) in {(h.words, h.category) for h in shipped.match(text.split())}


@pytest.mark.parametrize(
    "text",
    [
        "결제 시 발송 되나요",
        "카드 분실 시 발급 수수료가 있나요",
        "위반 시 벌금 이 부과 돼요",
        "시발점 이 어디 예요",
        "병신년 생 입니다",
        "수박씨 발라 먹어요",
        "김민수 씨 발표 자료 보냈어요",
        "배터리가 금방 죽어 버려요",
        "전원이 꺼져 있어요",
        "고양이 새끼 를 분양 받았어요",
        "영화 를 보지 않았어요",
        "밤에 자지 마세요",
        "딸이 쓰는 폰 이에요",
        "정액 요금제 로 바꿔 주세요",
        "매장 찾아가서 교환 했어요",
        "전염병 때문에 배송이 늦나요",
        "18년 동안 썼는데 2018년 모델 이에요",
        "사부님 수박 선배 ㅋㅋㅋㅋ",
        "macro accident miracamfree",
        "물에 담가 버렸어요",
    ],
)
def test_shipped_lists_leave_ordinary_service_calls_alone(shipped: KeywordMatcher, text: str) -> None:
    assert shipped.match(text.split()) == []


def test_shipped_lists_fire_on_abuse_next_to_a_false_friend(shipped: KeywordMatcher) -> None:
    hits = shipped.match("시발점 에서 씨발 뭐 하냐".split())
    assert [(h.words, h.category) for h in hits] == [((2,), "profanity")]


@pytest.mark.parametrize(
    "text, detail, words",
    [
        # issue 13: what a peer's own test cases and korcen caught and the lists missed
        ("쒸발 뭐야", "쒸발", (0,)),
        ("시볼 진짜", "시볼", (0,)),
        ("시이이발", "시발", (0,)),
        ("벼엉신 뭐야", "병신", (0,)),
        ("씨X 진짜", "씨X", (0,)),
        ("씨** 뭐하냐", "씨X", (0,)),
        ("개●끼", "개X끼", (0,)),
        ("니네 새끼들은 왜 그래", "새끼", (1,)),
        ("저 새끼야", "저새끼", (0, 1)),
        ("씨 발", "씨발", (0, 1)),  # typed apart: the whole of both words
        ("가만 안 둘 거야", "가만 안 둘 거야", (0, 1, 2, 3)),  # to the end, not up to 둘
    ],
)
def test_shipped_lists_catch_disguised_spellings(
    shipped: KeywordMatcher, text: str, detail: str, words: tuple[int, ...]
) -> None:
    assert (words, detail) in {(h.words, h.detail) for h in shipped.match(text.split())}


@pytest.mark.parametrize(
    "text",
    [
        "아저씨 발가락 이 아파요",
        "김씨 발표 는 내일",
        "고양이 새끼 분양",
        "새끼손가락 을 다쳤어요",
        "하루 세끼 먹어요",
        "개끼리 싸워요",
    ],
)
def test_one_word_entries_do_not_join_innocent_words(shipped: KeywordMatcher, text: str) -> None:
    assert shipped.match(text.split()) == []


def test_a_phrase_entry_may_span_words_a_one_word_entry_may_not(tmp_path: Path) -> None:
    folder = write_lists(tmp_path / "kw", {"profanity.txt": "씨발\n", "threat.txt": "저씨 발\n"})
    matcher = KeywordMatcher(KeywordConfig(lists_dir=str(folder)))
    assert [(h.detail, h.words) for h in matcher.match("아저씨 발가락".split())] == [("저씨 발", (0, 1))]
