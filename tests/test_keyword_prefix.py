"""Entry prefixes as provisional hits on a word still being spoken (moderation/keyword_prefix.py)."""

from __future__ import annotations

import dataclasses

import pytest

from moderation.call_moderator import CallModerator
from moderation.keyword_config import KeywordConfig
from moderation.keywords import KeywordMatcher
from moderation.policy import PolicyConfig
from moderation.speech import TranscriptUpdate, Word


@pytest.fixture(scope="module")
def matcher() -> KeywordMatcher:
    return KeywordMatcher(KeywordConfig())  # the shipped lists, prefix_min_chars = 2


def test_the_start_of_an_entry_is_a_prefix_hit(matcher: KeywordMatcher) -> None:
    (hit,) = matcher.match_prefixes(["그냥", "죽여"])  # 죽여 버린다
    assert hit.source == "keyword_prefix" and hit.category == "threat" and hit.words == (1,)
    assert "죽여" in hit.detail and hit.version == matcher.version
    assert [h.category for h in matcher.match_prefixes(["병시"])] == ["insult"]
    # A phrase's start reaching back over a finished word: 너 죽는다.
    assert any(h.words == (0, 1) for h in matcher.match_prefixes(["너", "죽"]))


def test_clean_words_sharing_a_first_syllable_stay_clean(matcher: KeywordMatcher) -> None:
    for words in (["병"], ["병원"], ["지난"], ["미리"], ["개인"], ["존경"], ["안녕하세요"]):
        assert matcher.match_prefixes(words) == [], words
    # A whole entry is the ordinary matcher's, not a prefix; a prefix starts a word.
    assert matcher.match_prefixes(["씨발"]) == [] and matcher.match(["씨발"])
    assert matcher.match_prefixes(["고병시"]) == []


def test_min_chars_sets_the_prefix_length() -> None:
    one = KeywordMatcher(KeywordConfig(prefix_min_chars=1))
    assert one.match_prefixes(["병"]) and not one.match_prefixes(["병원"])
    off = KeywordMatcher(dataclasses.replace(KeywordConfig(), prefix_min_chars=0))
    assert off.match_prefixes(["병시"]) == []
    with pytest.raises(ValueError, match="prefix_min_chars"):
        KeywordConfig(prefix_min_chars=11).validate()


def test_a_prefix_hit_mutes_provisionally_from_the_onset_and_is_lifted_when_revised(matcher: KeywordMatcher) -> None:
    moderator = CallModerator(PolicyConfig(), clock=lambda: 0.0)
    growing = Word("병시", 2.0, 2.3, confirmed=False)
    changes = moderator.judge(TranscriptUpdate(provisional=[growing]), [matcher.match], matcher.match_prefixes)
    (span,) = changes.add
    assert span.provisional and span.start == pytest.approx(2.0 - PolicyConfig().pad_before_s)
    # The next pass shows another word: the speculative span goes.
    revised = Word("병원", 2.0, 2.4, confirmed=True)
    changes = moderator.judge(TranscriptUpdate(confirmed=[revised]), [matcher.match], matcher.match_prefixes)
    assert changes.add == [] and [d.key for d in changes.lift] == [span.key]


def test_finished_text_gives_no_prefix_hits(matcher: KeywordMatcher) -> None:
    moderator = CallModerator(PolicyConfig())
    window = [Word("그냥", 0.0, 0.3, True), Word("죽여", 0.4, 0.7, True)]
    assert moderator.tail_hits(window, matcher.match_prefixes) == []
    assert moderator.tail_hits(window[:1] + [Word("죽여", 0.4, 0.7, False)], matcher.match_prefixes)
