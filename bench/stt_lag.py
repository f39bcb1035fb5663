#!/usr/bin/env python3
"""Streaming STT under real-time load: N calls at once, real or random Whisper weights.

    python bench/stt_lag.py --model /work/whisper-base --calls 1 --seconds 60 --json
    python bench/stt_lag.py --model tiny --calls 4 --seconds 60 --json      # random weights
    python bench/stt_lag.py --model PATH --set chunk_s=0.5 --set workers=2  # any SttConfig key

--model: a CTranslate2 Whisper folder (real weights), or a size (tiny|base|small): the
REAL architecture of that size with random weights, built by tests/tiny_models.py and
cached under ~/.cache/callguard-bench. Random weights give real compute and garbage text;
a random model never says end-of-text, so its decoding cap (--tokens-per-s, default 6/s
+ 4, a realistic Korean token rate) sets its decoding cost.

Each call is one customer side (espeak-ng utterances with pauses, --lang ko|en, a
different order and pauses per call) fed in 20 ms frames at real-time pace by one feeder
thread (the event loop's role: feed() and pending() only). Passes run as the relay runs
them: --driver pool (default) is the relay's ThreadPoolExecutor with stt.workers threads,
one step() at a time per call; --driver batched runs every call's passes through one
moderation.stt_batcher.BatchedEngine (batches across calls); --driver simulated runs the
pool's schedule in virtual time, each pass costing its modelled time (--pass-cost, fitted
on this machine), so two settings can be compared on a busy machine, run after run.
After its audio each call stays on the line, silent, until its tail has played.

Figures (JSON keys):
- rtf: engine compute seconds / audio seconds, all calls together (the batched driver
  counts a batch's time once);
- lag_p50_s, lag_p95_s: per pass, wall time the pass finished minus wall time the newest
  audio it covered arrived (word end to word known, for a word at the newest audio);
- decision lag (watermark_lag_*): sampled every 50 ms, now minus cleared_until;
- skipped_s: audio dropped unheard by skip-ahead;
- undecided_pct: share of the audio that reached playout (media time t plays at
  t + --delay) before cleared_until passed it, or inside a skipped span: what the
  counselor heard undecided; undecided_speech_pct: the same over the utterances only;
  undecided_tail_pct: the same against the end of the newest text judged, the
  provisional tail included (what the checks had seen of it: the relay judges the tail
  at once and mutes a provisional hit from the word's onset); all three against a fixed
  delay (media time t plays at t + --delay);
- played_undecided_pct, played_undecided_speech_pct: what the counselor hears undecided
  through the product's own delay line (relay/media/delay_line.py), elastic delay
  included: each call's recorded watermark timeline is replayed into a real DelayLine
  (delay_s = --delay, max_s = --max-delay; --max-delay at or below --delay is fixed) and
  its own judgement of every played sample is counted; delay_mean_s, delay_p95_s,
  stretched_s: what the elastic delay applied to get there;
- cpu_pct: this process, % of one core; passes; compute_per_pass_ms (mean engine time
  per transcriber pass);
- streaming_vs_offline_cer: the confirmed streaming transcript against the same model's
  offline beam-1 transcript of the same audio (real weights only; mean over calls);
  script_cer (English only): against the text espeak-ng spoke.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stt_speech import call_audio, cer, offline_transcript  # noqa: E402

from moderation.speech import SAMPLE_RATE  # noqa: E402
from moderation.stt_config import SttConfig  # noqa: E402
from moderation.whisper_engine import WhisperEngine  # noqa: E402
from offline.eval_calls import resample, to_int16  # noqa: E402
from relay.config import DelayConfig, WebRTCConfig  # noqa: E402
from relay.media.audio_format import FRAME_SAMPLES, RATE, frames_per_packet  # noqa: E402
from relay.media.delay_line import DelayLine  # noqa: E402

CACHE = Path(os.environ.get("CALLGUARD_BENCH_CACHE", Path.home() / ".cache" / "callguard-bench"))
FRAME_S = 0.02
SIZES = ("tiny", "base", "small")


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_sets(items: list[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(SttConfig)}
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {key}: not an SttConfig field")
        current = getattr(SttConfig(), key)
        if isinstance(current, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            out[key] = int(value)
        elif isinstance(current, float):
            out[key] = float(value)
        else:
            out[key] = value
    return out


class VirtualClock:
    """The simulated driver's time: moves only when a frame is due or a pass is charged."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclasses.dataclass(frozen=True)
class PassCost:
    """Modelled seconds of one pass on an otherwise idle machine: base + per encoder frame
    + per decoded token (fitted by least squares on this machine's own passes, real base
    weights, int8, 2 threads; residual about 0.04 s). It makes a run repeatable on a
    shared machine, where measured pass times swing by half."""

    base_s: float = 0.11
    per_frame_s: float = 0.00009
    per_token_s: float = 0.0107

    @classmethod
    def parse(cls, text: str) -> PassCost:
        base, frame, token = (float(v) for v in text.split(","))
        return cls(base, frame, token)

    def of(self, info: dict) -> float:
        if not info:  # a clip too short to transcribe
            return 0.0
        return self.base_s + self.per_frame_s * info["window_frames"] + self.per_token_s * info["tokens"]


class CallTimer:
    """One call's view of the shared engine: records each pass's media end and wall times."""

    def __init__(self, engine, t0: float, clock=time.monotonic, cost: PassCost | None = None) -> None:
        self.engine = engine
        self.t0 = t0
        self.tr = None  # set once the transcriber exists
        self.passes: list[dict] = []
        self.clock = clock
        # Simulated driver: each pass charges its modelled cost to the virtual clock.
        self.cost = cost

    @property
    def version(self) -> str:
        return self.engine.version

    @property
    def supports_prefix(self) -> bool:
        # The transcriber's prefix mode asks its engine; a timer that hid it measured
        # the schedule without it.
        return bool(getattr(self.engine, "supports_prefix", False))

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = ""):
        start_media = self.tr.buffer_start
        started = self.clock()
        result = self.engine.transcribe(audio, prompt, language, prefix)
        if self.cost is not None:
            self.clock.t += self.cost.of(self.engine.last_pass())
        finished = self.clock()
        end_media = start_media + len(audio) / SAMPLE_RATE
        self.passes.append(
            {
                "compute_s": finished - started,
                "lag_s": finished - (self.t0 + end_media),
                "audio_s": len(audio) / SAMPLE_RATE,
                "prefix": bool(prefix),
            }
        )
        return result


@dataclasses.dataclass
class Call:
    audio: np.ndarray
    spans: list
    timer: CallTimer
    tr: object
    busy: bool = False
    confirmed: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    cleared: list = dataclasses.field(default_factory=list)  # (wall, cleared_until)
    heard: list = dataclasses.field(default_factory=list)  # (wall, end of the text judged, tail included)
    watermark: list = dataclasses.field(default_factory=list)
    errors: int = 0
    where: dict = dataclasses.field(default_factory=dict)


def build_engine(args, config: SttConfig):
    if args.model in SIZES:
        from tests import tiny_models

        path = tiny_models.cached_whisper_ct2(CACHE, args.model, "int8")
        config = dataclasses.replace(config, model=str(path))
        kwargs = {"tokens_per_s": args.tokens_per_s, "tokens_base": args.tokens_base}
    else:
        config = dataclasses.replace(config, model=args.model)
        kwargs = {}
    engine = WhisperEngine(config, cpu_threads=args.threads_per_worker, **kwargs)
    return engine, config


def run(args) -> dict:
    from moderation.transcriber import StreamingTranscriber

    overrides = {"device": args.device, "compute_type": args.compute_type, "beam_size": 1, "language": args.lang}
    overrides.update(parse_sets(args.set))
    config = dataclasses.replace(SttConfig(), **overrides)
    engine, config = build_engine(args, config)
    shared = engine
    batcher = None
    if args.driver == "batched":
        from moderation.stt_batcher import BatchedEngine

        batcher = shared = BatchedEngine(engine, max_batch=config.batch_max, max_queue=config.queue_max)
    pool_size = args.calls if args.driver == "batched" else max(1, config.workers)
    pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="stt")

    simulated = args.driver == "simulated"
    clock = VirtualClock() if simulated else time.monotonic
    cost = PassCost.parse(args.pass_cost) if simulated else None
    t0 = 0.0 if simulated else time.monotonic() + 0.5
    calls: list[Call] = []
    for i in range(args.calls):
        audio, spans = call_audio(args.seconds, args.lang, seed=args.first_seed + i)
        timer = CallTimer(shared, t0, clock, cost)
        tr = StreamingTranscriber(timer, config, clock=clock)
        timer.tr = tr
        calls.append(Call(audio, spans, timer, tr))
    engine_s0 = batcher.stats.compute_s if batcher else 0.0
    n_frames = int(args.seconds / FRAME_S)
    # The customer stays on the line, silent, until the tail has played: a call cut off
    # mid-word would leave its last words undecided by the bench's doing, not the product's.
    tail_frames = int(np.ceil((max(args.delay, args.max_delay) + 0.5) / FRAME_S))
    if simulated:
        wall, cpu = simulate(calls, clock, n_frames, tail_frames)
    else:
        wall, cpu = drive_real_time(calls, pool, t0, n_frames, tail_frames)
    pool.shutdown()
    passes = [p for c in calls for p in c.timer.passes]
    lags = [p["lag_s"] for p in passes]
    per_pass = [p["compute_s"] for p in passes]
    compute = (batcher.stats.compute_s - engine_s0) if batcher else sum(per_pass)
    audio_s = args.seconds * args.calls
    und_all, und_speech, und_tail = [], [], []
    for c in calls:
        und_tail.append(undecided(c, t0, args.delay, n_frames, c.heard)[0])
        a, s = undecided(c, t0, args.delay, n_frames)  # last: c.where is of cleared_until
        und_all.append(a)
        und_speech.append(s)
    delay_cfg = DelayConfig(delay_s=args.delay, max_s=args.max_delay)
    played = [played_undecided(c, t0, delay_cfg) for c in calls]
    out = {
        "model": args.model,
        "calls": args.calls,
        "seconds": args.seconds,
        "lang": args.lang,
        "driver": args.driver,
        "rtf": round(compute / audio_s, 3),
        "lag_p50_s": percentile(lags, 50),
        "lag_p95_s": percentile(lags, 95),
        "watermark_lag_p50_s": percentile([w for c in calls for w in c.watermark], 50),
        "watermark_lag_p95_s": percentile([w for c in calls for w in c.watermark], 95),
        "skipped_s": round(sum(b - a for c in calls for a, b in c.skipped), 2),
        "undecided_pct": round(float(np.mean(und_all)), 2),
        "undecided_speech_pct": round(float(np.mean(und_speech)), 2),
        "undecided_tail_pct": round(float(np.mean(und_tail)), 2),
        "undecided_where": calls[0].where,
        "played_undecided_pct": round(float(np.mean([p["all_pct"] for p in played])), 2),
        "played_undecided_speech_pct": round(float(np.mean([p["speech_pct"] for p in played])), 2),
        "max_delay_s": delay_cfg.max_s,
        "delay_mean_s": round(float(np.mean([p["delay_mean_s"] for p in played])), 3),
        "delay_p95_s": round(float(max(p["delay_p95_s"] for p in played)), 3),
        "stretched_s": round(sum(p["stretched_s"] for p in played), 2),
        "cpu_pct": None if simulated else round(100 * cpu / wall, 1),
        "passes": len(passes),
        "compute_per_pass_ms": round(1000 * float(np.mean(per_pass)), 1) if per_pass else None,
        "mean_pass_audio_s": round(float(np.mean([p["audio_s"] for p in passes])), 2) if passes else None,
        "prefix_passes": sum(p["prefix"] for p in passes),
        "confirmed_words": sum(len(c.confirmed) for c in calls),
        "errors": sum(c.errors for c in calls),
        "delay_s": args.delay,
        "config": {k: getattr(config, k) for k in ("workers", "chunk_s", "max_lag_s", "buffer_max_s")}
        | {k: v for k, v in overrides.items() if k not in ("device", "compute_type", "language")},
        "threads_per_worker": engine.cpu_threads,
        "model_version": engine.version,
    }
    if batcher is not None:
        out["batches"] = batcher.stats.batches
        out["mean_batch"] = round(batcher.stats.items / max(1, batcher.stats.batches), 2)
    stats = [c.tr.stats for c in calls]
    out["transcriber_stats"] = {
        "passes": sum(s.passes for s in stats),
        "final_passes": sum(s.final_passes for s in stats),
        "skips": sum(s.skips for s in stats),
        "forced_cuts": sum(s.forced_cuts for s in stats),
        "aged_confirms": sum(s.aged_confirms for s in stats),
        "dropped": dict(sum((s.dropped for s in stats), start=type(stats[0].dropped)())),
    }
    texts = [" ".join(w.text for w in c.confirmed) for c in calls]
    out["transcript_head"] = texts[0][:200]
    out["transcript_call0"] = texts[0]
    if args.model not in SIZES and not args.no_offline:
        refs = [offline_transcript(args.model, c.audio, args.lang, threads=2) for c in calls]
        out["streaming_vs_offline_cer"] = round(float(np.mean([cer(t, r) or 0.0 for t, r in zip(texts, refs)])), 3)
        out["offline_head"] = refs[0][:200]
        out["offline_call0"] = refs[0]
    else:
        out["streaming_vs_offline_cer"] = None
    if args.lang == "en":
        scripts = [" ".join(s[2] for s in c.spans) for c in calls]
        out["script_cer"] = round(float(np.mean([cer(t, r) or 0.0 for t, r in zip(texts, scripts)])), 3)
    return out


def frame_of(call: Call, k: int) -> np.ndarray:
    """The call's k-th 20 ms frame; silence past the end of its audio."""
    frame = int(FRAME_S * SAMPLE_RATE)
    x = call.audio[k * frame : (k + 1) * frame]
    return x if x.size == frame else np.zeros(frame, dtype=np.float32)


def record(call: Call, upd, now: float) -> None:
    call.confirmed.extend(upd.confirmed)
    call.skipped.extend(upd.skipped)
    call.cleared.append((now, upd.cleared_until))
    tail = upd.provisional[-1].end if upd.provisional else 0.0
    call.heard.append((now, max(upd.cleared_until, tail)))


def drive_real_time(calls: list[Call], pool, t0: float, n_frames: int, tail_frames: int) -> tuple[float, float]:
    """One feeder thread at real-time pace, passes on the pool (the relay's schedule)."""
    lock = threading.Lock()

    def step(call: Call) -> None:
        try:
            while True:
                upd = call.tr.step()
                with lock:
                    record(call, upd, time.monotonic())
                if not call.tr.pending():
                    break
        except Exception:  # noqa: BLE001 - count and go on, as the relay does
            call.errors += 1
        finally:
            call.busy = False

    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            now = time.monotonic()
            for c in calls:
                c.watermark.append(min(now - t0, c.tr.received_until) - c.tr.cleared_until)
            time.sleep(0.05)

    cpu0 = cpu_seconds()
    sampler_thread = threading.Thread(target=sampler, daemon=True)
    while time.monotonic() < t0:
        time.sleep(0.001)
    sampler_thread.start()
    for k in range(n_frames + tail_frames):
        due = t0 + (k + 1) * FRAME_S  # the frame's last sample has been "spoken" by now
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for c in calls:
            c.tr.feed(frame_of(c, k), k * FRAME_S)
            if not c.busy and c.tr.pending():
                c.busy = True
                pool.submit(step, c)
    end_wall = time.monotonic()
    while any(c.busy for c in calls) and time.monotonic() < end_wall + 30:
        time.sleep(0.01)
    stop.set()
    sampler_thread.join()
    for c, final in zip(calls, pool.map(lambda c: c.tr.finish(), calls)):
        record(c, final, time.monotonic())
    return time.monotonic() - t0, cpu_seconds() - cpu0


def simulate(calls: list[Call], clock: VirtualClock, n_frames: int, tail_frames: int) -> tuple[float, float]:
    """Computationally-aware simulation: one worker, the calls' steps first come first
    served; a pass takes its modelled cost (PassCost) of virtual time, and the frames that
    arrive meanwhile are fed when it ends, as the feeder would have fed them."""
    queue: collections.deque[Call] = collections.deque()
    cpu0 = cpu_seconds()
    k = 0
    total = n_frames + tail_frames
    while k < total or queue:
        while k < total and (k + 1) * FRAME_S <= clock.t + 1e-9:
            for c in calls:
                c.tr.feed(frame_of(c, k), k * FRAME_S)
                c.watermark.append(min(clock.t, c.tr.received_until) - c.tr.cleared_until)
                if not c.busy and c.tr.pending():
                    c.busy = True
                    queue.append(c)
            k += 1
        if queue:
            c = queue.popleft()
            record(c, c.tr.step(), clock.t)
            c.busy = c.tr.pending()
            if c.busy:
                queue.append(c)
        elif k < total:
            clock.t = (k + 1) * FRAME_S
    for c in calls:
        record(c, c.tr.finish(), clock.t)
    return clock.t, cpu_seconds() - cpu0


class TimelineWatermark:
    """A call's watermark as the run recorded it, read at the replay's wall time."""

    def __init__(self, cleared: list, heard: list) -> None:
        self._walls = np.array([w for w, _ in cleared] or [np.inf])
        self._cleared = np.maximum.accumulate(np.array([c for _, c in cleared] or [0.0]))
        self._heard = np.maximum.accumulate(np.array([h for _, h in heard] or [0.0]))
        self._at = -1

    def at(self, wall: float) -> None:
        self._at = int(np.searchsorted(self._walls, wall, side="right")) - 1

    def cleared_until(self) -> float:
        return float(self._cleared[self._at]) if self._at >= 0 else 0.0

    def heard_until(self) -> float:
        return float(max(self._cleared[self._at], self._heard[self._at])) if self._at >= 0 else 0.0


def played_undecided(call: Call, t0: float, config: DelayConfig) -> dict:
    """Replays the call through a real DelayLine: frames pushed when the feeder fed them,
    one pull per outgoing packet as the call pulls (webrtc.delayed_ptime_ms), the watermark
    as it stood at that wall time."""
    watermark = TimelineWatermark(call.cleared, call.heard)
    per_pull = frames_per_packet(WebRTCConfig().delayed_ptime_ms)
    line = DelayLine(config, watermark, frame_samples=per_pull * FRAME_SAMPLES)
    pcm = to_int16(resample(call.audio.astype(np.float64), SAMPLE_RATE, RATE))
    frames = pcm.size // FRAME_SAMPLES
    speech = np.zeros(frames * FRAME_SAMPLES, dtype=bool)
    for a, b, _ in call.spans:
        speech[round(a * RATE) : round(b * RATE)] = True
    for a, b in call.skipped:
        line.mark_unjudged(a, b)  # never judged, whenever the skip was reported
    undecided = np.zeros(frames * FRAME_SAMPLES, dtype=bool)
    heard = np.zeros(frames * FRAME_SAMPLES, dtype=bool)
    ticks = frames + int(np.ceil((max(config.delay_s, config.max_s) + 0.5) / FRAME_S))
    for k in range(ticks):
        wall = t0 + (k + 1) * FRAME_S  # frame k has just been "spoken" and arrived
        watermark.at(wall)
        if k < frames:
            line.push(k * FRAME_SAMPLES, pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], wall)
        if k % per_pull:
            continue
        line.pull(wall)
        seen = line.played
        if seen is None:
            continue
        lo, hi = max(seen.start, 0), min(seen.start + seen.muted.size, undecided.size)
        if lo < hi:
            undecided[lo:hi] = seen.unjudged[lo - seen.start : hi - seen.start]
            heard[lo:hi] = True
    stats = line.stats()
    return {
        "all_pct": 100 * float(undecided.mean()),
        "speech_pct": 100 * float(undecided[speech].mean()) if speech.any() else 0.0,
        "unplayed_pct": 100 * float((~heard).mean()),
        "delay_mean_s": stats.delay_mean_s,
        "delay_p95_s": stats.delay_p95_s,
        "stretched_s": stats.stretched_s,
    }


def undecided(call: Call, t0: float, delay: float, n_frames: int, marks: list | None = None) -> tuple[float, float]:
    """% of frames (all, and inside utterances) played before the watermark passed them
    (cleared_until, or the (wall, media) `marks` given)."""
    marks = call.cleared if marks is None else marks
    walls = np.array([w for w, _ in marks] or [np.inf])
    cleared = np.maximum.accumulate(np.array([c for _, c in marks] or [0.0]))
    starts = np.arange(n_frames) * FRAME_S
    play = t0 + starts + delay
    idx = np.searchsorted(walls, play, side="right") - 1
    at_play = np.where(idx >= 0, cleared[np.clip(idx, 0, None)], -np.inf)
    bad = at_play < starts + FRAME_S - 1e-6
    for a, b in call.skipped:
        bad |= (starts + FRAME_S > a) & (starts < b)
    speech = np.zeros(n_frames, dtype=bool)
    for a, b, _ in call.spans:
        speech |= (starts + FRAME_S > a) & (starts < b)
    all_pct = 100 * float(bad.mean())
    speech_pct = 100 * float(bad[speech].mean()) if speech.any() else 0.0
    # Where undecided audio lies, in seconds: an utterance's first second, later in it, silence.
    head = np.zeros(n_frames, dtype=bool)
    for a, b, _ in call.spans:
        head |= (starts + FRAME_S > a) & (starts < min(b, a + 1.0))
    call.where = {
        "utterance_head_s": round(FRAME_S * float((bad & head).sum()), 2),
        "utterance_rest_s": round(FRAME_S * float((bad & speech & ~head).sum()), 2),
        "silence_s": round(FRAME_S * float((bad & ~speech).sum()), 2),
    }
    return all_pct, speech_pct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base", help="model folder, or tiny|base|small (random weights)")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lang", default="ko", choices=["ko", "en"])
    parser.add_argument("--first-seed", type=int, default=0, help="call i speaks script seed first_seed + i")
    parser.add_argument("--delay", type=float, default=1.5, help="the delay line's D (s)")
    parser.add_argument(
        "--max-delay",
        type=float,
        default=DelayConfig().max_s,
        help="the elastic delay's max_s for the replayed delay line (<= --delay: fixed)",
    )
    parser.add_argument("--driver", choices=["pool", "batched", "simulated"], default="pool")
    parser.add_argument(
        "--pass-cost",
        default="0.11,0.00009,0.0107",
        help="simulated driver: seconds per pass, per encoder frame, per decoded token",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        help="CTranslate2 threads per worker (default: CPUs // stt.workers)",
    )
    parser.add_argument("--tokens-per-s", type=float, default=6.0, help="decoding cap, random weights only")
    parser.add_argument("--tokens-base", type=int, default=4, help="decoding cap, random weights only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an SttConfig field")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline reference transcript")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
