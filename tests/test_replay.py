"""`callguard replay`: a logged call re-judged under another config, the difference, the stored replay.

The calls are logged by the product's own CallLog and CallModerator (tests/logged_calls.py);
each word is a tone whose frequency a ScriptedEngine maps back to the word, so the audio
mode can transcribe the recording again without a real model.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from moderation.hits import Hit
from moderation.keyword_config import BUILTIN_LISTS
from moderation.policy import Decision
from moderation.span_diff import Span, diff_spans
from offline.replay import ReplayError, run_replay, store_replay
from relay import cli
from relay.config import load_config
from relay.records.access_log import accesses, cli_user
from relay.records.call_log import CallLog
from relay.records.database import database_file, open_database
from relay.records.db_thread import DirectWrites
from relay.records.logged_call import logged_decisions, logged_words, replays
from tests.logged_calls import ABUSIVE_CALL, CLEAN_CALL, KEYWORDS_ONLY, LoggedCall, write_logged_call
from tests.stt_doubles import ScriptedEngine, vocab

ROOT = Path(__file__).resolve().parent.parent
CALL = "call-abusive"
VOCAB = vocab(*[text for text, _, _ in ABUSIVE_CALL])
PAD_BEFORE, PAD_AFTER = 0.08, 0.12  # the policy's defaults: a span is its word padded by these


def word_times(text: str) -> tuple[float, float]:
    return next((start, end) for t, start, end in ABUSIVE_CALL if t == text)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    db = open_database(database_file(folder))
    write_logged_call(db, folder, LoggedCall(CALL, "anna", 1_700_000_000.0, ABUSIVE_CALL, tone_freqs=VOCAB))
    db.close()
    return folder


@pytest.fixture
def db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(database_file(data_dir))
    yield conn
    conn.close()


@pytest.fixture
def edited_config(tmp_path: Path) -> Path:
    """A config whose keyword lists no longer have 멍청이 and newly list 환불 (a clean word of the call)."""
    lists = tmp_path / "keywords"
    shutil.copytree(BUILTIN_LISTS, lists)
    insult = lists / "insult.txt"
    kept = [line for line in insult.read_text(encoding="utf-8").splitlines() if line.strip() != "멍청이"]
    assert len(kept) == len(insult.read_text(encoding="utf-8").splitlines()) - 1
    insult.write_text("\n".join(kept + ["환불"]) + "\n", encoding="utf-8")
    path = tmp_path / "edited.toml"
    path.write_text(f'[keywords]\nlists_dir = "{lists}"\n[text_model]\nenabled = false\n', encoding="utf-8")
    return path


def span_words(items: list) -> list[list[str]]:  # type: ignore[type-arg]
    return [[w for s in (i.after or i.before) for w in s.words] for i in items]


# ------------------------------------------------------------------ transcript mode


def test_the_calls_own_config_gives_back_its_spans(db: sqlite3.Connection, data_dir: Path) -> None:
    result = run_replay(db, data_dir, CALL, KEYWORDS_ONLY, mode="transcript", classifier=False)
    logged = [d for d in logged_decisions(db, CALL) if d.lifted_at is None]
    assert len(logged) == 3
    assert [(s["start"], s["end"], s["words"], s["categories"]) for s in result.judged.spans] == [
        (d.start, d.end, d.words, d.categories) for d in logged
    ]
    assert result.diff.empty and result.diff.unchanged == 3
    assert [w.text for w in result.judged.words] == [w.text for w in logged_words(db, CALL)]


def test_a_changed_keyword_list_adds_and_removes_exactly_its_spans(
    db: sqlite3.Connection, data_dir: Path, edited_config: Path
) -> None:
    result = run_replay(db, data_dir, CALL, load_config(edited_config), mode="transcript", classifier=False)
    diff = result.diff
    assert span_words(diff.added) == [["환불"]] and span_words(diff.removed) == [["멍청이"]]
    assert diff.changed == [] and diff.unchanged == 2  # 씨발 and 개새끼 stay as they were
    for item, word in ((diff.added[0], "환불"), (diff.removed[0], "멍청이")):
        start, end = word_times(word)
        assert item.start == pytest.approx(start - PAD_BEFORE) and item.end == pytest.approx(end + PAD_AFTER)
        (span,) = item.after or item.before
        assert span.categories == ("insult",) and span.reasons == ["keyword:insult"]
        (hit,) = span.hits
        assert hit["detail"] and hit["score"] == 1.0 and hit["version"].startswith("kw-")
    # The replay ran other lists than the call: its version says so.
    assert result.versions["checks"]["keywords"]["version"] != result.call_versions["keywords"]["detail"]


def test_a_lifted_span_of_the_call_is_not_one_of_its_spans(db: sqlite3.Connection, data_dir: Path) -> None:
    """Only the spans that stood are compared: one lifted live shows as added by the replay."""
    (first, *_) = logged_decisions(db, CALL)
    db.execute("UPDATE call_decisions SET lifted_at = 1 WHERE call_id = ? AND span_id = ?", (CALL, first.span_id))
    result = run_replay(db, data_dir, CALL, KEYWORDS_ONLY, mode="transcript", classifier=False)
    assert span_words(result.diff.added) == [first.words] and not result.diff.removed and not result.diff.changed


def test_a_counselors_manual_mute_is_not_one_of_moderations_spans(db: sqlite3.Connection, data_dir: Path) -> None:
    """A dump or hold is no decision a replay can make: it is left out of the comparison."""
    hit = Hit(words=(), source="manual", category="dump", score=1.0, threshold=1.0, detail="by anna", version="")
    CallLog(DirectWrites(db), data_dir, CALL).decision(Decision(0.5, 1.5, (), (hit,), False, 1.0, ("dump",)), 99, 0.0)
    assert [d.manual for d in logged_decisions(db, CALL)].count(True) == 1
    result = run_replay(db, data_dir, CALL, KEYWORDS_ONLY, mode="transcript", classifier=False)
    assert result.diff.empty and result.diff.unchanged == 3


def test_a_changed_policy_changes_every_span(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    padded = tmp_path / "padded.toml"
    padded.write_text("[policy]\npad_after_s = 0.3\n[text_model]\nenabled = false\n", encoding="utf-8")
    assert (
        cli.main(
            [
                "replay",
                CALL,
                "--data-dir",
                str(data_dir),
                "--config",
                str(padded),
                "--transcript-only",
                "--no-classifier",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    changed = [line for line in lines if line.startswith("~ ")]
    assert len(changed) == 3 and not any(line.startswith(("+ ", "- ")) for line in lines)
    start, end = word_times("씨발")
    assert changed[0] == (
        f"~ {start - PAD_BEFORE:.2f}-{end + 0.3:.2f} s  씨발  "
        f"was {start - PAD_BEFORE:.2f}-{end + PAD_AFTER:.2f} keyword:profanity  "
        f"now {start - PAD_BEFORE:.2f}-{end + 0.3:.2f} keyword:profanity"
    )


def test_the_replay_is_stored_for_the_qa_page(db: sqlite3.Connection, data_dir: Path, edited_config: Path) -> None:
    result = run_replay(
        db,
        data_dir,
        CALL,
        load_config(edited_config),
        mode="transcript",
        classifier=False,
        config_file=str(edited_config),
    )
    replay_id = store_replay(db, result, "quinn", "qa")
    (stored,) = replays(db, CALL)
    assert stored.replay_id == replay_id == result.replay_id
    assert (stored.mode, stored.by_user) == ("transcript", "quinn")
    assert stored.config["keywords"]["lists_dir"] == str(edited_config.parent / "keywords")
    assert stored.versions["checks"]["keywords"]["available"] is True
    assert stored.words == [{"text": w.text, "start": w.start, "end": w.end} for w in logged_words(db, CALL)]
    # Spans are shaped as call_decisions rows, so the page draws both with one renderer.
    columns = {r["name"] for r in db.execute("PRAGMA table_info(call_decisions)")} - {"call_id", "late_s", "lifted_at"}
    assert all(columns <= set(span) for span in stored.spans)
    assert sorted(w for s in stored.spans for w in s["words"]) == sorted(["씨발", "환불", "개새끼"])
    assert [i["words"] for i in stored.diff["added"]] == [["환불"]]
    assert [i["words"] for i in stored.diff["removed"]] == [["멍청이"]]
    assert stored.diff["changed"] == []
    (access,) = [a for a in accesses(db, CALL) if a.action == "replay"]
    assert (access.user_name, access.role, access.detail["replay_id"]) == ("quinn", "qa", replay_id)


def test_unknown_call_and_missing_checks_are_errors(db: sqlite3.Connection, data_dir: Path, tmp_path: Path) -> None:
    from relay.records.logged_call import UnknownCall

    with pytest.raises(UnknownCall):
        run_replay(db, data_dir, "no-such-call", KEYWORDS_ONLY, mode="transcript", classifier=False)
    no_lists = tmp_path / "off.toml"
    no_lists.write_text("[keywords]\nenabled = false\n[text_model]\nenabled = false\n", encoding="utf-8")
    with pytest.raises(ReplayError, match="no text check"):
        run_replay(db, data_dir, CALL, load_config(no_lists), mode="transcript", classifier=False)


# ------------------------------------------------------------------------ the command


def test_command_prints_json_and_stores(
    data_dir: Path, edited_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "replay",
        CALL,
        "--data-dir",
        str(data_dir),
        "--config",
        str(edited_config),
        "--transcript-only",
        "--no-classifier",
    ]
    assert cli.main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {
        "added": 1,
        "removed": 1,
        "changed": 0,
        "unchanged": 2,
        "call_spans": 3,
        "replay_spans": 3,
        "lifted": 0,
        "words": len(ABUSIVE_CALL),
    }
    assert [i["words"] for i in report["diff"]["added"]] == [["환불"]]
    assert report["diff"]["removed"][0]["reasons"] == ["keyword:insult"]

    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "+ 2.32-3.02 s  환불  keyword:insult"
    assert lines[1] == "- 4.12-4.82 s  멍청이  keyword:insult"
    assert lines[2].startswith("replay ") and "1 added, 1 removed, 0 changed, 2 unchanged" in lines[2]

    db = open_database(database_file(data_dir))
    stored = replays(db, CALL)
    assert [r.replay_id for r in stored] == [report["replay_id"], report["replay_id"] + 1]
    assert {r.by_user for r in stored} == {cli_user()[0]}
    assert len([a for a in accesses(db, CALL) if a.action == "replay"]) == 2
    db.close()


def test_command_errors_are_one_line_and_exit_2(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", "nope", "--data-dir", str(data_dir), "--transcript-only", "--no-classifier"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no logged call 'nope'" in err
    assert cli.main(["replay", CALL, "--data-dir", str(tmp_path / "empty"), "--transcript-only"]) == 2
    assert "no call log in" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()  # not created by looking


# ----------------------------------------------------------------------- audio mode


def test_audio_mode_transcribes_the_recording_again(
    db: sqlite3.Connection, data_dir: Path, edited_config: Path
) -> None:
    same = run_replay(db, data_dir, CALL, KEYWORDS_ONLY, mode="audio", classifier=False, engine=ScriptedEngine(VOCAB))
    assert [s["words"] for s in same.judged.spans] == [["씨발"], ["멍청이"], ["개새끼"]]
    for span in same.judged.spans:
        start, end = word_times(span["words"][0])
        # Word times come from the decoded recording (10 ms analysis hops, the codec's delay).
        assert span["word_start"] == pytest.approx(start, abs=0.03)
        assert span["word_end"] == pytest.approx(end, abs=0.03)
    assert same.diff.empty and same.diff.unchanged == 3
    # Half-heard words ("씨발~") muted provisionally were lifted when confirmed: counted, not kept.
    assert same.judged.lifted > 0
    assert "환불" in [w.text for w in same.judged.words] and same.judged.stt["model"] == "scripted-1"

    edited = run_replay(
        db, data_dir, CALL, load_config(edited_config), mode="audio", classifier=False, engine=ScriptedEngine(VOCAB)
    )
    assert span_words(edited.diff.added) == [["환불"]] and span_words(edited.diff.removed) == [["멍청이"]]
    assert not edited.diff.changed
    store_replay(db, edited, "quinn", "qa")
    (stored,) = replays(db, CALL)
    assert stored.mode == "audio" and stored.versions["stt"]["model"] == "scripted-1"
    assert [w["text"] for w in stored.words] == [w.text for w in edited.judged.words]


def test_audio_mode_without_a_recording_points_to_transcript_only(
    db: sqlite3.Connection, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "calls" / CALL / "customer.opus").unlink()
    with pytest.raises(ReplayError, match="--transcript-only"):
        run_replay(db, data_dir, CALL, KEYWORDS_ONLY, mode="audio", classifier=False, engine=ScriptedEngine(VOCAB))
    assert cli.main(["replay", CALL, "--data-dir", str(data_dir), "--no-classifier"]) == 2
    assert "no customer recording" in capsys.readouterr().err


def test_audio_mode_on_an_undecodable_recording_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "calls" / CALL / "customer.opus").write_bytes(b"not an ogg file" * 100)
    assert cli.main(["replay", CALL, "--data-dir", str(data_dir), "--no-classifier"]) == 2
    err = capsys.readouterr().err
    assert "cannot decode" in err and "Traceback" not in err


def test_audio_mode_without_a_model_is_a_clear_error(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "nomodel.toml"
    config.write_text(f'[stt]\nmodel = "{tmp_path / "no-such-model"}"\ndevice = "cpu"\n', encoding="utf-8")
    assert cli.main(["replay", CALL, "--data-dir", str(data_dir), "--config", str(config), "--no-classifier"]) == 2
    err = capsys.readouterr().err
    assert "no speech model could be loaded" in err and "--transcript-only" in err
    assert "Traceback" not in err and "--transcriber" not in err


def test_audio_mode_through_the_real_whisper_engine(
    tmp_path: Path, tiny_whisper: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Random weights: the words are noise; this proves the loading and feeding path runs and stores."""
    folder = tmp_path / "data"
    db = open_database(database_file(folder))
    write_logged_call(db, folder, LoggedCall("call-clean", "ben", 1_700_000_000.0, CLEAN_CALL, duration_s=3.5))
    config = tmp_path / "whisper.toml"
    config.write_text(f'[stt]\nmodel = "{tiny_whisper}"\ndevice = "cpu"\nworkers = 1\n', encoding="utf-8")
    assert (
        cli.main(
            ["replay", "call-clean", "--data-dir", str(folder), "--config", str(config), "--json", "--no-classifier"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "audio" and report["versions"]["stt"]["passes"] > 0
    (stored,) = replays(db, "call-clean")
    assert stored.mode == "audio" and stored.replay_id == report["replay_id"]
    assert stored.versions["stt"]["model"] == report["versions"]["stt"]["model"] != ""
    assert stored.config["stt"]["model"] == str(tiny_whisper)
    db.close()


# ------------------------------------------------------------------- the span diff


def span(span_id: int, start: float, end: float, *categories: str) -> Span:
    return Span(
        span_id,
        start,
        end,
        (f"w{span_id}",),
        categories or ("insult",),
        tuple({"source": "keyword", "category": c} for c in categories or ("insult",)),
    )


def test_diff_groups_overlapping_spans_and_compares_what_they_silence() -> None:
    before = [span(1, 1.0, 2.0), span(2, 5.0, 6.0), span(3, 8.0, 9.0), span(4, 11.0, 12.0, "profanity")]
    after = [
        span(11, 1.0, 1.5),
        span(12, 1.5, 2.005),  # the same stretch, split in two: unchanged
        span(13, 5.0, 6.5),  # longer: changed
        span(14, 3.0, 3.5),  # new: added
        span(15, 11.0, 12.0, "profanity", "insult"),  # a reason more: changed
    ]  # 8.0-9.0 is gone: removed
    diff = diff_spans(before, after, tolerance_s=0.01)
    assert diff.unchanged == 1
    assert [(i.start, i.end) for i in diff.added] == [(3.0, 3.5)]
    assert [(i.start, i.end) for i in diff.removed] == [(8.0, 9.0)]
    assert [(i.start, i.end, len(i.before), len(i.after)) for i in diff.changed] == [
        (5.0, 6.5, 1, 1),
        (11.0, 12.0, 1, 1),
    ]
    assert [i.kind for i in diff.items()] == ["added", "changed", "removed", "changed"]
    changed = diff.changed[1].to_dict()
    assert changed["categories"] == ["insult", "profanity"] and changed["before"][0]["categories"] == ["profanity"]


def test_diff_chains_spans_of_both_sides_into_one_change() -> None:
    """Two old spans bridged by one new span are one change, not two."""
    diff = diff_spans([span(1, 1.0, 2.0), span(2, 2.5, 3.0)], [span(3, 1.8, 2.7)])
    (item,) = diff.changed
    assert (item.start, item.end) == (1.0, 3.0) and [s.span_id for s in item.before] == [1, 2]
    assert not diff.added and not diff.removed
    assert diff_spans([], []).empty


# ------------------------------------------------------------------ many calls at once


def test_yesterdays_calls_under_a_new_list(
    data_dir: Path, edited_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every call in the window replayed with the lists loaded once; the totals add up."""
    from datetime import datetime

    db = open_database(database_file(data_dir))
    day = 1_700_000_000.0  # CALL was logged at this time
    write_logged_call(db, data_dir, LoggedCall("call-clean", "ben", day + 3600, CLEAN_CALL, duration_s=4.0))
    write_logged_call(db, data_dir, LoggedCall("call-later", "anna", day + 3 * 86400, ABUSIVE_CALL))
    window = [
        "--since",
        datetime.fromtimestamp(day - 60).isoformat(),
        "--until",
        datetime.fromtimestamp(day + 86400).isoformat(),
    ]
    common = ["--data-dir", str(data_dir), "--config", str(edited_config), "--transcript-only", "--no-classifier"]

    assert cli.main(["replay", *window, *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["call_id"] for r in report["replays"]] == [CALL, "call-clean"]  # oldest first
    assert report["totals"] == {
        "added": 1,
        "removed": 1,
        "changed": 0,
        "calls": 2,
        "failed": 0,
        "unchanged": 2,
        "calls_with_differences": 1,
    }
    assert [len(replays(db, c)) for c in (CALL, "call-clean", "call-later")] == [1, 1, 0]

    assert cli.main(["replay", "--counselor", "ben", *common]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("1 calls replayed (0 with differences, 0 failed)")
    assert cli.main(["replay", *common]) == 2  # neither a call nor a choice of calls
    assert cli.main(["replay", CALL, "--counselor", "ben", *common]) == 2  # both
    assert cli.main(["replay", "--counselor", "nobody", *common]) == 2
    db.close()
