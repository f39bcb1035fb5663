"""`callguard replay CALL_ID`: the moderation re-run over a logged call under another config.

QA's question is "what would this config have silenced on that call?": new keyword
lists, another threshold, padding or speech model. A replay answers it two ways:

- transcript (--transcript-only): the call's logged words (call_words, the words the
  live transcription confirmed), each released as a confirmed word at its end, as a
  transcriber would, and judged by CallModerator with the replay config's checks and
  policy. Cheap and deterministic: with the call's own config it gives back the call's
  own spans, so every difference is the config's doing.
- audio (the default): the customer recording decoded and run through the real
  StreamingTranscriber over the configured speech model, each pass judged as the
  server judges it. It sees what a new model or [stt] setting would have heard. The
  machine is taken as fast enough: a pass runs whenever one is due and no audio is
  skipped for lag, so the result is the config's, not this machine's load.

The replay's final spans (added and never lifted) are compared with the call's own
(its decisions that were not lifted) by moderation/span_diff.py: added, removed,
changed. The replay is stored in call_replays with its config, the checks' versions,
the words it judged and its spans, for the QA page to show beside the original, and
the access is logged (the replay reads the call's recording and words).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from moderation.call_moderator import CallModerator, PrefixCheck, TextCheck
from moderation.policy import Decision, PolicyConfig
from moderation.resample import Resampler48kTo16k
from moderation.span_diff import DEFAULT_TOLERANCE_S, Span, SpanDiff, diff_spans
from moderation.span_ledger import SpanLedger
from moderation.speech import TranscriptUpdate, Word
from offline.eval_text import Checks, load_checks
from relay.config import Config
from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.records.access_log import cli_user, record_access
from relay.records.call_log import redacted
from relay.records.database import database_file, open_call_log
from relay.records.logged_call import (
    CallFilter,
    CallHistory,
    LoggedDecision,
    LoggedWord,
    UnknownCall,
    list_calls,
    load_call,
    recording_file,
)

Mode = Literal["audio", "transcript"]

# An audio replay re-times every word (Whisper's word times are good to a few tens of
# ms): a mute that moved less than the policy's padding still covers its word, so it is
# no change for QA. Transcript replays judge the very same words: edges agree exactly.
AUDIO_TOLERANCE_S = 0.08
# A check's "why unavailable" in the text output, at most this long.
REASON_CHARS = 100


class ReplayError(Exception):
    """A replay that cannot run (no recording, no model, no check); the message says why."""


@dataclass
class Judged:
    """What the moderation made of the call in the replay."""

    words: list[Word]  # every word it judged, in order
    spans: list[dict[str, Any]]  # its final spans, shaped as call_decisions rows
    lifted: int = 0  # provisional spans added, then lifted when their words were revised away
    skipped: list[tuple[float, float]] = field(default_factory=list)  # audio never transcribed
    stt: dict[str, Any] = field(default_factory=dict)  # what transcribed it


@dataclass
class ReplayResult:
    call_id: str
    mode: Mode
    at: float
    config_file: str | None
    config: dict[str, Any]  # the replay's config, secrets left out
    versions: dict[str, Any]  # the replay's checks and speech model
    call_versions: dict[str, Any]  # the call's own, for the comparison
    judged: Judged
    call_spans: int  # the call's own final spans
    diff: SpanDiff
    notes: list[str] = field(default_factory=list)
    replay_id: int | None = None  # once stored

    def to_dict(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "call_id": self.call_id,
            "mode": self.mode,
            "at": self.at,
            "config_file": self.config_file,
            "versions": self.versions,
            "call_versions": self.call_versions,
            "summary": {
                "added": len(self.diff.added),
                "removed": len(self.diff.removed),
                "changed": len(self.diff.changed),
                "unchanged": self.diff.unchanged,
                "call_spans": self.call_spans,
                "replay_spans": len(self.judged.spans),
                "lifted": self.judged.lifted,
                "words": len(self.judged.words),
            },
            "diff": self.diff.to_dict(),
            "spans": self.judged.spans,
            "words": _word_rows(self.judged.words),
            "notes": self.notes,
        }


# ------------------------------------------------------------------- the moderation


class _ReplaySpans:
    """A replay's span sink: ids handed out as the live delay line does, with the media time
    of the newest audio heard when each span was decided."""

    def __init__(self) -> None:
        self._next_id = 1
        self.media_now = 0.0
        self.decided_media: dict[int, float] = {}

    def add_span(self, decision: Decision) -> int:
        span_id, self._next_id = self._next_id, self._next_id + 1
        self.decided_media[span_id] = self.media_now
        return span_id

    def lift_span(self, span_id: int) -> bool:
        return self.decided_media.pop(span_id, None) is not None


class _Judging:
    """One replay's moderation, kept as the live call keeps it: the call's moderator, its
    checks, and the span ledger (moderation/span_ledger.py) over a replay sink."""

    def __init__(
        self,
        policy: PolicyConfig,
        checks: list[TextCheck],
        wall: Callable[[], float],
        prefix_check: PrefixCheck | None = None,
    ) -> None:
        self.moderator = CallModerator(policy, clock=wall)
        self._checks = checks
        self._prefix_check = prefix_check  # entry starts on the provisional tail, as live
        self._sink = _ReplaySpans()
        self.ledger = SpanLedger(self._sink)

    def judge(self, update: TranscriptUpdate, media_now: float) -> None:
        """`media_now`: the media time of the newest audio heard when this was decided."""
        self._sink.media_now = media_now
        self.ledger.apply(self.moderator.judge(update, self._checks, self._prefix_check))

    @property
    def lifted(self) -> int:
        return self.ledger.lifted

    def spans(self) -> list[dict[str, Any]]:
        rows = [_span_row(span_id, d, self._sink.decided_media[span_id]) for span_id, d in self.ledger.active()]
        return sorted(rows, key=lambda r: (r["start"], r["span_id"]))


def _span_row(span_id: int, d: Decision, media_now: float) -> dict[str, Any]:
    """A decision as relay/records/call_log.py writes it to call_decisions, plus when it was decided
    in media time (on a fast enough machine: the audio heard by then)."""
    return {
        "span_id": span_id,
        "start": d.start,
        "end": d.end,
        "word_start": d.key[0],
        "word_end": d.key[1],
        "words": [w.text for w in d.words],
        "provisional": d.provisional,
        "categories": list(d.categories or sorted({h.category for h in d.hits})),
        "hits": [h.record() for h in d.hits],
        "decided_at": d.decided_at,
        "decided_media_s": round(media_now, 4),
    }


def judge_transcript(
    words: list[LoggedWord], checks: list[TextCheck], policy: PolicyConfig, wall: Callable[[], float] = time.time
) -> Judged:
    """The logged words, each confirmed at its end in the order the call confirmed them."""
    judging = _Judging(policy, checks, wall)
    judged = [Word(w.text, w.start, w.end, True, w.probability) for w in words]
    for word in judged:
        judging.judge(TranscriptUpdate(confirmed=[word], cleared_until=word.end), media_now=word.end)
    return Judged(judged, judging.spans(), judging.lifted, stt={"source": "the call's logged words"})


def judge_audio(
    pcm48: Iterable[np.ndarray],
    media_s: float,
    engine: Any,
    stt_config: Any,
    checks: list[TextCheck],
    policy: PolicyConfig,
    wall: Callable[[], float] = time.time,
    prefix_check: PrefixCheck | None = None,
) -> Judged:
    """Audio (int16 mono 48 kHz chunks, contiguous, the first sample at media time `media_s`)
    through the streaming transcriber as the relay feeds it: 20 ms frames through the
    server's resampler, a pass whenever one is due, the last one at the end; every pass
    judged. The audio streams through: an hour-long call never sits in memory whole."""
    from moderation.transcriber import StreamingTranscriber

    transcriber = StreamingTranscriber(engine, stt_config)
    resampler = Resampler48kTo16k()
    judging = _Judging(policy, checks, wall, prefix_check)
    words: list[Word] = []
    skipped: list[tuple[float, float]] = []

    def take(update: TranscriptUpdate) -> None:
        words.extend(update.confirmed)
        skipped.extend(update.skipped)
        judging.judge(update, media_now=transcriber.received_until)

    fed = 0
    for frame in _frames(pcm48):
        transcriber.feed(resampler.process(frame), media_s + fed / RATE)
        fed += frame.size
        while transcriber.pending():
            take(transcriber.step())
    final = transcriber.finish()
    take(final)
    # finish() confirms every word; a tail left provisional would still have been judged.
    words.extend(final.provisional)
    stats = transcriber.stats
    return Judged(
        words,
        judging.spans(),
        judging.lifted,
        skipped,
        stt={
            "model": str(getattr(engine, "version", type(engine).__name__)),
            "passes": stats.passes,
            "engine_s": round(stats.engine_s, 3),
            "audio_s": round(fed / RATE, 3),
        },
    )


def _frames(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The audio cut into FRAME_SAMPLES-sample frames (the last one may be short)."""
    held = np.zeros(0, dtype=np.int16)
    for chunk in chunks:
        held = np.concatenate([held, chunk]) if held.size else chunk
        whole = held.size - held.size % FRAME_SAMPLES
        for k in range(0, whole, FRAME_SAMPLES):
            yield held[k : k + FRAME_SAMPLES]
        held = held[whole:]
    if held.size:
        yield held


# ------------------------------------------------------------------------ the audio


def decode_recording(path: Path) -> Iterator[np.ndarray]:
    """An Ogg/Opus recording as int16 mono chunks at 48 kHz, decoded as they are read
    (browsers may send stereo: the channels are averaged). The file is probed here, so a
    missing or foreign file fails before a speech model is loaded; a ReplayError either way."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ReplayError(f"cannot decode {path}: it holds no audio")
    except (av.FFmpegError, OSError) as exc:
        raise ReplayError(f"cannot decode {path}: {exc}") from None
    return _decoded(path)


def _decoded(path: Path) -> Iterator[np.ndarray]:
    import av

    def mono(frame: Any) -> np.ndarray:
        x = frame.to_ndarray().mean(axis=0)  # planar float: (channels, samples)
        mono: np.ndarray = np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)
        return mono

    resampler = av.AudioResampler(format="fltp", rate=RATE)  # channels kept, averaged in mono()
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    yield mono(out)
            for out in resampler.resample(None):
                yield mono(out)
    except (av.FFmpegError, OSError) as exc:
        raise ReplayError(f"cannot decode {path}: {exc}") from None


def customer_recording(call: CallHistory, data_dir: str | Path) -> tuple[Path, float, list[str]]:
    """The customer's recording file, the media time of its sample 0, and notes."""
    recording = next((r for r in call.recordings if r.stream == "customer"), None)
    path = recording_file(data_dir, recording) if recording is not None else None
    if recording is None or path is None:
        raise ReplayError(
            f"call {call.summary.call_id} has no customer recording in {data_dir} (not recorded, "
            "or purged): --transcript-only replays the logged words instead"
        )
    notes = []
    media_s = recording.media_s
    if media_s is None:
        notes.append("the customer recording has no media time logged: taken to start at 0 s")
        media_s = 0.0
    return path, media_s, notes


def load_speech_engine(config: Config) -> Any:
    """The configured WhisperEngine, as eval-calls loads it (no download)."""
    from offline.eval_calls import load_engine
    from offline.eval_text import EvalError

    try:
        return load_engine(config, purpose="to replay the audio")
    except EvalError as exc:
        raise ReplayError(f"{exc}; --transcript-only replays the logged words without a speech model") from None


# ------------------------------------------------------------------------ the replay


def run_replay(
    db: sqlite3.Connection,
    data_dir: str | Path,
    call_id: str,
    config: Config,
    *,
    mode: Mode = "audio",
    checks: Checks | None = None,
    classifier: bool = True,
    engine: Any = None,
    config_file: str | None = None,
) -> ReplayResult:
    """Re-runs the moderation over a logged call (not stored: see store_replay).

    `checks` default to the configured ones (keywords, and unless `classifier` is False
    the classifier when it loads), loaded once the call is found; in audio mode `engine`
    defaults to the WhisperEngine of config.stt. Raises UnknownCall and ReplayError."""
    if mode not in ("audio", "transcript"):
        raise ReplayError(f"unknown mode {mode!r} (audio or transcript)")
    call = load_call(db, data_dir, call_id)
    if call is None:
        raise UnknownCall(call_id)
    notes: list[str] = []
    audio: Iterator[np.ndarray] | None = None
    media_s = 0.0
    if mode == "audio":  # the recording first: a missing or broken file is the cheaper error to find
        path, media_s, audio_notes = customer_recording(call, data_dir)
        audio = decode_recording(path)
        notes += audio_notes
    checks = checks if checks is not None else load_checks(config, classifier=classifier)
    if not checks.names():
        reasons = "; ".join(f"{k}: {v.get('reason')}" for k, v in checks.info.items())
        raise ReplayError(f"no text check could be loaded ({reasons})")
    policy: PolicyConfig = config.policy
    if audio is None:
        if not call.words:
            notes.append(
                "the call has no logged words (was its transcription unavailable?): "
                "an audio replay transcribes the recording"
            )
        judged = judge_transcript(call.words, checks.as_list(), policy)
    else:
        engine = engine if engine is not None else load_speech_engine(config)
        judged = judge_audio(audio, media_s, engine, config.stt, checks.as_list(), policy, prefix_check=checks.prefixes)
        if judged.skipped:
            notes.append(f"{sum(b - a for a, b in judged.skipped):.2f} s of audio were skipped untranscribed")
    notes += _check_notes(call_checks(call.versions), checks.info)
    # What moderation decided: a counselor's manual mutes are no decision a replay can change.
    own = [_span_of_logged(d) for d in call.decisions if d.lifted_at is None and not d.manual]
    tolerance = AUDIO_TOLERANCE_S if mode == "audio" else DEFAULT_TOLERANCE_S
    diff = diff_spans(own, [_span_of_row(r) for r in judged.spans], tolerance)
    return ReplayResult(
        call_id=call_id,
        mode=mode,
        at=time.time(),
        config_file=config_file,
        config=redacted(config.to_dict()),
        versions={"checks": checks.info, "stt": judged.stt},
        call_versions=call.versions,
        judged=judged,
        call_spans=len(own),
        diff=diff,
        notes=notes,
    )


def store_replay(db: sqlite3.Connection, result: ReplayResult, user: str, role: str) -> int:
    """Stores the replay and logs the access in one transaction; sets and returns replay_id.

    Nothing is shown before this commits: a replay whose access cannot be logged is refused."""
    db.execute("BEGIN IMMEDIATE")
    try:
        cursor = db.execute(
            "INSERT INTO call_replays (call_id, at, by_user, mode, config, versions, words, spans, diff) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.call_id,
                result.at,
                user,
                result.mode,
                _json(result.config),
                _json(result.versions),
                _json(_word_rows(result.judged.words)),
                _json(result.judged.spans),
                _json(result.diff.to_dict()),
            ),
        )
        replay_id = int(cursor.lastrowid or 0)
        record_access(
            db,
            user,
            role,
            result.call_id,
            "replay",
            {"replay_id": replay_id, "mode": result.mode, "config": result.config_file},
            now=result.at,
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    result.replay_id = replay_id
    return replay_id


def _span_of_logged(d: LoggedDecision) -> Span:
    return Span(d.span_id, d.start, d.end, tuple(d.words), tuple(d.categories), tuple(d.hits))


def _span_of_row(r: dict[str, Any]) -> Span:
    return Span(r["span_id"], r["start"], r["end"], tuple(r["words"]), tuple(r["categories"]), tuple(r["hits"]))


def call_checks(versions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks a call ran with, as {name: {available, version}}, from the server's
    versions snapshot (each check's {state, detail}: detail is the version when ready)."""
    out = {}
    for name in ("keywords", "text_model", "classifier"):
        view = versions.get(name)
        if isinstance(view, dict):
            ready = view.get("state") == "ready"
            out[name] = {"available": ready, "version": view.get("detail") if ready else None}
    return out


def call_model(versions: dict[str, Any]) -> str | None:
    """The speech model a call ran with (the server's view of it: {state, detail})."""
    view = versions.get("stt")
    if isinstance(view, dict) and view.get("state") == "ready":
        return view.get("detail") or None
    return None


def _check_notes(theirs: dict[str, dict[str, Any]], replay_checks: dict[str, Any]) -> list[str]:
    """A check the call ran with and the replay lacks explains every span it alone decided."""
    notes = []
    for name, info in theirs.items():
        ours = replay_checks.get(name, {})
        if info.get("available") and not ours.get("available"):
            notes.append(
                f"the call ran with the {name} check ({info.get('version') or '?'}); this replay "
                f"has none ({ours.get('reason', 'not loaded')}): its spans show as removed"
            )
    return notes


def _word_rows(words: list[Word]) -> list[dict[str, Any]]:
    return [{"text": w.text, "start": w.start, "end": w.end} for w in words]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# ------------------------------------------------------------------------- output


def format_text(result: ReplayResult) -> str:
    """One line per difference in media-time order, then a summary and the notes."""
    sign = {"added": "+", "removed": "-", "changed": "~"}
    lines = []
    for item in result.diff.items():
        side = item.after or item.before
        head = f"{sign[item.kind]} {item.start:.2f}-{item.end:.2f} s  {' '.join(w for s in side for w in s.words)}"
        if item.kind == "changed":
            lines.append(f"{head}  was {_spans_text(item.before)}  now {_spans_text(item.after)}")
        else:
            lines.append(f"{head}  {','.join(sorted({r for s in side for r in s.reasons}))}")
    d = result.diff
    counts = (
        f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, {d.unchanged} unchanged"
        if not d.empty
        else f"no difference ({d.unchanged} spans alike)"
    )
    lines.append(
        f"replay {result.replay_id} of call {result.call_id} ({result.mode}, "
        f"config {result.config_file or 'embedded defaults'}): {counts}; {result.call_spans} spans in the "
        f"call, {len(result.judged.spans)} in the replay"
    )
    theirs = call_checks(result.call_versions)
    lines.append(
        "checks: "
        + "; ".join(_check_text(name, info, theirs.get(name)) for name, info in result.versions["checks"].items())
    )
    if result.mode == "audio":
        stt = result.judged.stt
        lines.append(
            f"speech model: {stt.get('model')} (call: {call_model(result.call_versions) or '?'}), "
            f"{stt.get('passes')} passes, {len(result.judged.words)} words"
        )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _spans_text(spans: tuple[Span, ...]) -> str:
    return "; ".join(f"{s.start:.2f}-{s.end:.2f} {','.join(s.reasons)}" for s in spans)


def _check_text(name: str, info: dict[str, Any], call_info: dict[str, Any] | None) -> str:
    reason = str(info.get("reason"))
    if len(reason) > REASON_CHARS:  # a model loader's reason runs long: --json has it whole
        reason = reason[: REASON_CHARS - 1] + "…"
    state = f"{info.get('version') or '?'}" if info.get("available") else f"unavailable ({reason})"
    if call_info is not None:
        theirs = call_info.get("version") if call_info.get("available") else "unavailable"
        state += f" (call: {theirs or '?'})"
    return f"{name} {state}"


# ------------------------------------------------------------------------ the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "call_id",
        metavar="CALL_ID",
        nargs="?",
        help="the logged call to replay; or every call chosen by --since/--until/--counselor",
    )
    parser.add_argument(
        "--since",
        type=_when,
        help="replay the calls created from this date or time "
        "(2026-11-20, 2026-11-20T14:00; local time unless it says otherwise)",
    )
    parser.add_argument("--until", type=_when, help="... and created before this one")
    parser.add_argument("--counselor", help="... and taken by this counselor")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many calls, newest first (1000)")
    parser.add_argument(
        "--transcript-only",
        action="store_true",
        help="judge the call's logged words instead of transcribing its recording again (no speech model needed)",
    )
    parser.add_argument("--no-classifier", action="store_true", help="keywords only, even if a classifier loads")
    parser.add_argument("--json", action="store_true", help="print the replay and its difference as JSON")


def main(args: argparse.Namespace, config: Config, *, engine: Any = None) -> int:
    if (args.call_id is None) == (args.since is None and args.until is None and args.counselor is None):
        print("callguard replay: name one CALL_ID, or choose calls with --since/--until/--counselor", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir or config.server.data_dir)
    db = open_call_log(data_dir, config.database.url)  # relay/cli.py reports a missing one
    try:
        if args.call_id is None:
            return _replay_many(db, data_dir, args, config, engine)
        try:
            result = _replay_one(db, data_dir, args.call_id, args, config, engine=engine)
        except (UnknownCall, ReplayError) as exc:
            print(f"callguard replay: {exc}", file=sys.stderr)
            return 2
    except sqlite3.Error as exc:
        print(f"callguard replay: cannot store the replay in {database_file(data_dir)}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) if args.json else format_text(result))
    return 0


def _replay_one(
    db: sqlite3.Connection,
    data_dir: Path,
    call_id: str,
    args: argparse.Namespace,
    config: Config,
    *,
    engine: Any = None,
    checks: Checks | None = None,
) -> ReplayResult:
    result = run_replay(
        db,
        data_dir,
        call_id,
        config,
        mode="transcript" if args.transcript_only else "audio",
        checks=checks,
        classifier=not args.no_classifier,
        engine=engine,
        config_file=str(args.config) if args.config else None,
    )
    store_replay(db, result, *cli_user())
    return result


def _replay_many(db: sqlite3.Connection, data_dir: Path, args: argparse.Namespace, config: Config, engine: Any) -> int:
    """QA's "what would the new list have done to yesterday's calls": every chosen call
    replayed and stored, a line each, then the totals. The checks and the speech model
    are loaded once for all of them."""
    calls = list_calls(db, CallFilter(since=args.since, until=args.until, counselor=args.counselor, limit=args.limit))
    if not calls:
        print("callguard replay: no logged call matches", file=sys.stderr)
        return 2
    checks = load_checks(config, classifier=not args.no_classifier)
    if not args.transcript_only and engine is None:
        try:
            engine = load_speech_engine(config)
        except ReplayError as exc:
            print(f"callguard replay: {exc}", file=sys.stderr)
            return 2
    results: list[ReplayResult] = []
    failed: dict[str, str] = {}
    for call in reversed(calls):  # oldest first, as they happened
        try:
            results.append(_replay_one(db, data_dir, call.call_id, args, config, engine=engine, checks=checks))
        except (UnknownCall, ReplayError) as exc:  # one call's missing file does not stop the rest
            failed[call.call_id] = str(exc)
    totals = {key: sum(len(getattr(r.diff, key)) for r in results) for key in ("added", "removed", "changed")}
    totals.update(
        calls=len(results),
        failed=len(failed),
        unchanged=sum(r.diff.unchanged for r in results),
        calls_with_differences=sum(not r.diff.empty for r in results),
    )
    if args.json:
        print(
            json.dumps(
                {"totals": totals, "failed": failed, "replays": [r.to_dict() for r in results]},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for r in results:
            d = r.diff
            print(
                f"{r.call_id}\treplay {r.replay_id}\t+{len(d.added)} -{len(d.removed)} ~{len(d.changed)}"
                f"\t{r.call_spans} spans -> {len(r.judged.spans)}"
            )
        for call_id, reason in failed.items():
            print(f"{call_id}\tnot replayed: {reason}")
        print(
            f"{totals['calls']} calls replayed ({totals['calls_with_differences']} with differences, "
            f"{totals['failed']} failed): {totals['added']} spans added, {totals['removed']} removed, "
            f"{totals['changed']} changed, {totals['unchanged']} alike"
        )
    return 1 if failed else 0


def _when(value: str) -> float:
    """A date or date-time on the command line as Unix seconds (naive: local time)."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (2026-11-20) or time (2026-11-20T14:00)") from None
