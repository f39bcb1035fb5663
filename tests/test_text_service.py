"""The server's text checks: live list reload, and each check failing alone."""

import asyncio
from pathlib import Path

from relay.calls.text_service import TextChecks
from relay.config import parse_config


def config(lists_dir: Path, text_model: bool = False, **classifier: object):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "keywords": {"lists_dir": str(lists_dir), "reload_interval_s": 0.1},
            "text_model": {"enabled": text_model},
            "classifier": {"model": str(lists_dir / "no-model"), **classifier},
        }
    )


async def test_edited_lists_are_picked_up_without_a_restart(tmp_path: Path) -> None:
    (tmp_path / "insult.txt").write_text("멍청이\n")
    checks = TextChecks(config(tmp_path))
    await checks.load()
    try:
        assert [h.category for h in await checks.check(["이", "멍청이"])] == ["insult"]
        assert await checks.check(["바보", "같은"]) == []
        before = checks.view()["keywords"]["detail"]
        (tmp_path / "insult.txt").write_text("멍청이\n바보 같은\n")
        for _ in range(30):
            await asyncio.sleep(0.1)
            if checks.view()["keywords"]["detail"] != before:
                break
        hits = await checks.check(["바보", "같은"])
        assert [h.words for h in hits] == [(0, 1)]  # the phrase covers both words
    finally:
        await checks.close()


async def test_no_classifier_model_keeps_the_keywords_working(tmp_path: Path) -> None:
    (tmp_path / "profanity.txt").write_text("씨발\n")
    checks = TextChecks(config(tmp_path))
    await checks.load()
    try:
        view = checks.view()
        assert view["classifier"]["state"] == "unavailable" and "no-model" in view["classifier"]["detail"]
        assert view["keywords"]["state"] == "ready"
        assert [h.source for h in await checks.check(["씨 발"])] == ["keyword"]
    finally:
        await checks.close()


async def test_unreadable_lists_are_reported_not_fatal(tmp_path: Path) -> None:
    checks = TextChecks(config(tmp_path / "missing-folder", enabled=False))
    await checks.load()
    try:
        view = checks.view()
        assert view["keywords"]["state"] == "unavailable" and view["keywords"]["detail"]
        assert view["classifier"]["state"] == "off"
        assert await checks.check(["씨발"]) == []
    finally:
        await checks.close()


async def test_the_classifier_joins_the_keywords_when_it_loads(tmp_path: Path, tiny_bert_model: Path) -> None:
    (tmp_path / "insult.txt").write_text("멍청이\n")
    checks = TextChecks(
        parse_config(
            {
                "keywords": {"lists_dir": str(tmp_path)},
                "text_model": {"enabled": False},  # the shipped model would find 멍청이 too
                "classifier": {
                    "model": str(tiny_bert_model),
                    "device": "cpu",
                    "thresholds": {"악플/욕설": 0.0},
                    "abusive_labels": ["악플/욕설"],
                },
            }
        )
    )
    await checks.load()
    try:
        assert checks.view()["classifier"]["state"] == "ready"
        sources = {h.source for h in await checks.check(["이", "멍청이"])}
        assert sources == {"keyword", "classifier"}  # a zero threshold makes the random model fire
    finally:
        await checks.close()


async def test_the_shipped_text_model_runs_beside_the_keywords(tmp_path: Path) -> None:
    (tmp_path / "profanity.txt").write_text("씨발\n")
    checks = TextChecks(config(tmp_path, text_model=True))
    await checks.load()
    try:
        assert checks.view()["text_model"]["state"] == "ready"
        hits = await checks.check("이 새끼야 빨리 환불해 줘".split())
        assert [(h.source, h.category) for h in hits] == [("text_model", "abusive")]
        assert 1 in hits[0].words and len(hits[0].words) < 5  # the carrying words, not the utterance
    finally:
        await checks.close()


async def test_the_combination_rule_is_config(tmp_path: Path) -> None:
    (tmp_path / "profanity.txt").write_text("씨발\n")
    raw = {
        "keywords": {"lists_dir": str(tmp_path), "reload_interval_s": 0},
        "classifier": {"enabled": False},
        "checks": {"rule": "weighted", "threshold": 1.0, "weights": {"keyword": 1.0, "text_model": 0.5}},
    }
    checks = TextChecks(parse_config(raw))
    await checks.load()
    try:
        assert await checks.check("이 새끼야 빨리 환불해 줘".split()) == []  # the model alone: 0.5 * p < 1
        hits = await checks.check("씨발 새끼야".split())
        assert {h.source for h in hits} >= {"keyword"} and all(0 in h.words or 1 in h.words for h in hits)
    finally:
        await checks.close()


async def test_a_reload_swaps_lists_and_thresholds_or_refuses_and_keeps_them(
    tmp_path: Path, tiny_bert_model: Path
) -> None:
    import dataclasses

    import pytest

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "insult.txt").write_text("멍청이\n")
    (tmp_path / "b" / "insult.txt").write_text("바보\n")
    classifier = {"model": str(tiny_bert_model), "device": "cpu", "abusive_labels": ["악플/욕설"]}

    def at(lists: str, threshold: float):  # type: ignore[no-untyped-def]
        return parse_config(
            {
                "keywords": {"lists_dir": str(tmp_path / lists)},
                "text_model": {"enabled": False},
                "classifier": {**classifier, "thresholds": {"악플/욕설": threshold}},
            }
        )

    checks = TextChecks(at("a", 0.0))
    await checks.load()
    try:
        assert {h.source for h in await checks.check(["멍청이"])} == {"keyword", "classifier"}
        prepared = await checks.prepare(at("b", 1.0))
        assert {h.source for h in await checks.check(["멍청이"])} == {"keyword", "classifier"}  # not yet applied
        checks.apply(prepared)
        assert [h.source for h in await checks.check(["바보"])] == ["keyword"]  # new list, classifier never fires
        assert await checks.check(["멍청이"]) == []
        with pytest.raises(ValueError, match="keywords"):
            await checks.prepare(at("missing", 0.0))
        with pytest.raises(ValueError, match="abusive_labels"):
            bad = at("b", 1.0)
            await checks.prepare(
                dataclasses.replace(bad, classifier=dataclasses.replace(bad.classifier, abusive_labels=["nope"]))
            )
        assert [h.source for h in await checks.check(["바보"])] == ["keyword"]  # the refused ones changed nothing
    finally:
        await checks.close()
