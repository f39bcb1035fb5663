"""`callguard eval-calls` on Korean calls synthesised word by word (tests/korean_calls.py).

The issue's targets, reference transcriber with lag 0.8 s and delay 1.5 s: at least 99 %
of abusive words fully muted, at most 1 % of clean speech muted. A word released at its
end + lag is decided before its start plays only if end + lag <= start + D, i.e. for words
up to D - lag = 0.7 s long (0.62 s with the policy's 0.08 s of padding before it, less up
to 40 ms where a 60 ms packet of the delayed stream was pulled before the decision): the
calls of the target hold abusive words of 0.43-0.59 s, espeak-ng's lengths for two- and
three-syllable words; test_words_longer_than_the_margin_are_muted_from_the_decision pins
down what happens to longer ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from moderation.text_model_config import TextModelConfig
from offline import eval_calls
from offline.eval_calls import EvalError, evaluate_calls, read_manifest
from offline.eval_text import load_checks
from relay.config import Config, DelayConfig
from tests import korean_calls

pytestmark = pytest.mark.skipif(not korean_calls.espeak_available(), reason="espeak-ng is not installed")

KEYS = (
    "calls",
    "toxic_words",
    "toxic_fully_muted_pct",
    "toxic_partly_muted_pct",
    "toxic_missed_pct",
    "clean_speech_muted_pct",
    "decision_lag_p50_s",
    "decision_lag_p95_s",
    "undecided_playout_pct",
)


# The fixed delay these figures were first pinned on (delay.max_s <= delay_s: no stretch);
# the elastic delay and partial words: the tests at the end.
FIXED = Config(delay=DelayConfig(max_s=0.0))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return korean_calls.write_calls(tmp_path_factory.mktemp("calls"))


@pytest.fixture(scope="module")
def keywords():  # type: ignore[no-untyped-def]
    """The keyword lists alone: what the figures here were set by (the shipped text model
    beside them mutes a little more clean speech: see docs/OPERATIONS.md)."""
    checks = load_checks(Config(text_model=TextModelConfig(enabled=False)), classifier=False)
    assert checks.keywords is not None, checks.info
    return checks


def test_manifest_holds_the_true_word_times(manifest: Path) -> None:
    calls = read_manifest(manifest)
    assert [c.id for c in calls] == list(korean_calls.CALLS)
    toxic = [w for c in calls for w in c.words if w.toxic]
    assert len(toxic) == 15 and max(w.end - w.start for w in toxic) < 0.62
    # Abuse opens, sits inside and closes utterances, and comes back to back.
    texts = [u.split() for u in sum(korean_calls.CALLS.values(), [])]
    assert any(u[0].startswith("!") for u in texts) and any(u[-1].startswith("!") for u in texts)
    assert any(any(w.startswith("!") for w in u[1:-1]) for u in texts)
    assert any(a.startswith("!") and b.startswith("!") for u in texts for a, b in zip(u, u[1:]))


def test_reference_transcriber_meets_the_targets(manifest: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    report = evaluate_calls(manifest, FIXED, delay_s=1.5, transcriber="reference", reference_lag_s=0.8, checks=keywords)
    summary = {k: report[k] for k in KEYS}
    print("eval-calls reference lag 0.8 s, delay 1.5 s:", json.dumps(summary, ensure_ascii=False))
    assert report["calls"] == 4 and report["toxic_words"] == 15
    assert report["toxic_fully_muted_pct"] >= 99, report["per_call"]
    assert report["clean_speech_muted_pct"] <= 1, report["per_call"]
    assert report["decision_lag_p50_s"] == pytest.approx(0.8) and report["decision_lag_p95_s"] == pytest.approx(0.8)
    # What the delay line played agrees with the silenced record sample for sample.
    assert report["playout_check"]["mismatches"] == 0 and report["playout_check"]["samples"] > 0.9 * 48000 * 160
    assert report["speed_x"] > 5 and report["checks"]["keywords"]["available"]


def test_control_lag_beyond_the_delay_misses(manifest: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    """The same calls with words released after their audio played: the figures must show it."""
    report = evaluate_calls(manifest, FIXED, delay_s=1.5, reference_lag_s=1.7, checks=keywords)
    assert report["toxic_missed_pct"] == 100 and report["toxic_fully_muted_pct"] == 0
    assert report["late_mutes"] == report["spans_added"] > 0
    assert report["undecided_playout_pct"] == 100 and report["clean_speech_muted_pct"] == 0
    assert report["decision_lag_p50_s"] == pytest.approx(1.7)


def test_words_longer_than_the_margin_are_muted_from_the_decision(tmp_path: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    """A word decided at end + lag plays unmuted up to end + lag - D; the rest is silenced.
    With undecided_policy = "mute" the unjudged head is silenced too, at a cost in clean speech."""
    manifest = korean_calls.write_calls(tmp_path, korean_calls.LONG_CALLS)
    report = evaluate_calls(manifest, FIXED, delay_s=1.5, reference_lag_s=0.8, checks=keywords)
    (call,) = report["per_call"]
    assert (
        report["toxic_words"] == 4 and report["toxic_fully_muted_pct"] == 0 and report["toxic_partly_muted_pct"] == 100
    )
    # The counselor's track pulls a packet's frames when its first is due, so a packet under
    # way when the decision lands plays unmuted whole: up to ptime - 20 ms more than with
    # 20 ms packets (webrtc.delayed_ptime_ms; docs/OPERATIONS.md).
    early = FIXED.webrtc.delayed_ptime_ms / 1000 - 0.02
    for w in call["toxic_not_fully_muted"]:
        length = w["end"] - w["start"]
        assert (1.5 - 0.8 - early) / length - 0.03 <= w["muted_fraction"] <= (1.5 - 0.8) / length + 0.03, w
    muted = Config(delay=dataclasses.replace(FIXED.delay, undecided_policy="mute"))
    strict = evaluate_calls(manifest, muted, delay_s=1.5, reference_lag_s=0.8, checks=keywords)
    assert strict["toxic_fully_muted_pct"] == 100
    assert strict["clean_speech_muted_pct"] > report["clean_speech_muted_pct"]
    # A packet's last frame fades out toward undecided audio that is silenced when it is
    # pulled; cleared before the next packet, that audio plays (faded in) and the record
    # has no edge there: one fade each side (here once, in near-silence). With 20 ms
    # packets the watermark has 20 ms instead of 60 to move in between.
    assert strict["playout_check"]["mismatches"] <= 2 * 240
    twenty = dataclasses.replace(muted, webrtc=dataclasses.replace(muted.webrtc, delayed_ptime_ms=20))
    exact = evaluate_calls(manifest, twenty, delay_s=1.5, reference_lag_s=0.8, checks=keywords)
    assert exact["toxic_fully_muted_pct"] == 100 and exact["playout_check"]["mismatches"] == 0


def test_whisper_transcriber_runs_on_simulated_time(tmp_path: Path, tiny_whisper: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    """The real StreamingTranscriber and WhisperEngine (tiny random weights): structure only."""
    from moderation.stt_config import SttConfig

    short = [korean_calls.CALLS["billing"][0], korean_calls.CALLS["billing"][3]]  # the second ends in abuse
    manifest = korean_calls.write_calls(tmp_path, {"short": short})
    config = Config(stt=SttConfig(model=str(tiny_whisper), device="cpu", workers=1))
    report = evaluate_calls(manifest, config, delay_s=1.5, transcriber="whisper", checks=keywords)
    for key in KEYS:
        assert key in report
    assert report["transcriber"] == "whisper" and report["calls"] == 1 and report["toxic_words"] == 2
    assert report["whisper"]["passes"] > 0 and report["whisper"]["compute_s"] > 0
    assert report["speed_x"] > 1  # simulated time runs faster than real time
    assert report["playout_check"]["mismatches"] == 0


def test_whisper_without_a_model_is_a_clear_error(manifest: Path, tmp_path: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    from moderation.stt_config import SttConfig

    config = Config(stt=SttConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(EvalError, match="no speech model could be loaded"):
        evaluate_calls(manifest, config, delay_s=1.5, transcriber="whisper", checks=keywords)


def test_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = korean_calls.write_calls(tmp_path, {"short": korean_calls.CALLS["delivery"][:3]})
    parser = argparse.ArgumentParser()
    eval_calls.add_arguments(parser)
    args = parser.parse_args(
        [
            str(manifest),
            "--delay",
            "1.5",
            "--transcriber",
            "reference",
            "--reference-lag",
            "0.8",
            "--json",
            "--no-classifier",
        ]
    )
    assert eval_calls.main(args, Config()) == 0
    report = json.loads(capsys.readouterr().out)
    assert {*KEYS} <= set(report) and report["toxic_fully_muted_pct"] == 100
    assert report["checks"]["classifier"]["available"] is False
    assert eval_calls.main(parser.parse_args([str(manifest), "--no-classifier"]), Config()) == 0
    assert "toxic_fully_muted_pct" in capsys.readouterr().out


def test_manifest_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "m.jsonl"
    bad.write_text(
        '{"id": "a", "audio": "a.wav", "words": []}\n{"id": "b", "audio": "b.wav", '
        '"words": [{"text": "x", "start": 1.0, "end": 0.5, "toxic": false}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(EvalError, match=r"m.jsonl:2: word 0 \('x'\) has bad times"):
        read_manifest(bad)
    bad.write_text('{"id": "a", "audio": "a.wav", "words": [{"text": "x", "start": 0, "end": 1, "toxic": "yes"}]}\n')
    with pytest.raises(EvalError, match=r"m.jsonl:1: word 0: toxic must be true or false"):
        read_manifest(bad)


def test_partial_words_and_the_elastic_delay_meet_the_targets(tmp_path: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    """Issue 12's targets on calls whose abusive words are mostly longer than D - lag."""
    manifest = korean_calls.write_calls(tmp_path, korean_calls.PARTIAL_CALLS)
    config = Config()  # the elastic delay as shipped: max_s 2.0
    wide = evaluate_calls(manifest, config, delay_s=1.5, reference_lag_s=0.5, reference_partial=True, checks=keywords)
    short = evaluate_calls(manifest, config, delay_s=1.0, reference_lag_s=0.5, reference_partial=True, checks=keywords)
    whole = evaluate_calls(manifest, config, delay_s=1.5, reference_lag_s=0.8, checks=keywords)
    for name, r in (("D 1.5 partial", wide), ("D 1.0 partial", short), ("D 1.5 whole words lag 0.8", whole)):
        print(name, json.dumps({k: r[k] for k in eval_calls.SUMMARY_KEYS}, ensure_ascii=False))
        assert r["playout_check"]["mismatches"] == 0
    assert wide["toxic_words"] == 12 and wide["reference_partial"] is True
    assert wide["toxic_fully_muted_pct"] >= 95 and wide["clean_speech_muted_pct"] <= 1 and wide["delay_p95_s"] <= 2.0
    assert short["toxic_fully_muted_pct"] >= 90 and short["delay_p95_s"] <= 1.8
    assert wide["speculative_spans"] > 0 and wide["speculative_spans_lifted_late"] == 0
    # Whole words at lag 0.8 s: the fixed delay mutes a third of them fully (the long ones
    # start playing before their decision); the elastic delay waits for most.
    assert whole["toxic_fully_muted_pct"] >= 75 and whole["stretched_s"] > 0
    assert whole["delay_p95_s"] <= 2.0 and whole["delay_mean_s"] < whole["delay_p95_s"]


def test_speculation_revised_away_after_playout_is_counted(tmp_path: Path, keywords) -> None:  # type: ignore[no-untyped-def]
    """시발점 (a starting point) is 시발 until its last syllable: muted speculatively, lifted
    in time at D 1.5 s; at a delay shorter than the lag the lift comes late, and is counted."""
    manifest = korean_calls.write_calls(tmp_path, {"clean": ["시발점이 어디였는지 확인해 주세요"]})
    in_time = evaluate_calls(manifest, FIXED, delay_s=1.5, reference_lag_s=0.5, reference_partial=True, checks=keywords)
    assert in_time["speculative_spans"] > 0 and in_time["spans_lifted"] > 0
    assert in_time["speculative_spans_lifted_late"] == 0 and in_time["clean_speech_muted_pct"] == 0
    late = evaluate_calls(manifest, FIXED, delay_s=0.5, reference_lag_s=0.5, reference_partial=True, checks=keywords)
    assert late["speculative_spans_lifted_late"] >= 1 and late["clean_speech_muted_pct"] > 0
