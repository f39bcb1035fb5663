#!/usr/bin/env python3
"""Abuse classifier latency on this machine: a bert-base-sized kor_unsmile, random weights.

    python bench/classifier_speed.py --json
    python bench/classifier_speed.py --threads 2 --reps 50

No weights can be downloaded here, so the model is kor_unsmile's architecture (bert-base:
hidden 768, 12 layers, 12 heads, intermediate 3072, the KcBERT vocabulary of 30000, 300
positions, 10 labels) with random weights, built in memory (tests/tiny_bert.py). Compute
is the real one; the scores are noise. torch runs on --threads intra-op threads (2 as in
production here), fp32 and dynamic int8 (moderation.classifier.quantize_int8), through
the product's own TransformersScorer and AbuseClassifier.

Cases, each timed --reps times after --warmup runs, p50/p95 ms:
- sentence: one short Korean sentence, one forward pass (what every utterance costs);
- sentence_loo_batch: the sentence and its leave-one-out variants (1 + words sequences)
  in one forward pass (attribution = "eager");
- judge_on_hit: AbuseClassifier.judge with every label flagged (thresholds 0): the
  sentence, then its variants, two passes (attribution = "on_hit", an abusive utterance);
- batch8_sentences: 8 different short sentences in one pass (a ClassifierBatcher batch of
  clean utterances), total and per utterance.

other_cpu_pct: CPU that other processes took while this measured (% of one core); read
the figures only when it is small.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.tiny_models import KOREAN_LINES  # noqa: E402

SENTENCE = "정말 너무하시네요 몇 번을 전화했는지 아세요"  # 6 words, 10 WordPiece tokens + 2
# The call-centre lines the tests speak, plus two short ones: 8 utterances.
BATCH = [*KOREAN_LINES, "환불은 언제 되는 건가요", "아니 그게 말이 되는 소리예요"]


def _system_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat), or nan."""
    try:
        fields = open("/proc/stat").readline().split()[1:]
        values = [int(x) for x in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def timed(fn, reps: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - started))
    arr = np.array(samples)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "reps": reps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--size", default="base", help="tests/tiny_bert.py size (base, test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from moderation.classifier import AbuseClassifier, TransformersScorer, quantize_int8
    from moderation.classifier_config import UNSMILE_LABELS, ClassifierConfig
    from tests import tiny_bert

    built = time.monotonic()
    tokenizer = tiny_bert.kcbert_tokenizer()
    model = tiny_bert.build_bert_model(args.size)
    build_s = time.monotonic() - built
    params = sum(p.numel() for p in model.parameters())
    words = SENTENCE.split()
    loo = [SENTENCE] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    tokens = len(tokenizer(SENTENCE)["input_ids"])

    busy0, own0, wall0 = _system_busy_s(), _own_cpu_s(), time.monotonic()
    results: dict[str, dict] = {}
    for precision in ("fp32", "int8"):
        m = quantize_int8(copy.deepcopy(model)) if precision == "int8" else model
        scorer = TransformersScorer(m, tokenizer, UNSMILE_LABELS, device="cpu", max_length=300, forward_batch=64)
        judge_cfg = ClassifierConfig(thresholds={label: 0.0 for label in UNSMILE_LABELS}, attribution="on_hit")
        clf = AbuseClassifier(scorer, UNSMILE_LABELS, judge_cfg)
        row = {
            "sentence": timed(lambda: scorer([SENTENCE]), args.reps, args.warmup),  # noqa: B023 - timed here, in the loop
            "sentence_loo_batch": timed(lambda: scorer(loo), args.reps, args.warmup),  # noqa: B023
            "judge_on_hit": timed(lambda: clf.judge(words), args.reps, args.warmup),  # noqa: B023
        }
        batch = timed(lambda: scorer(BATCH), args.reps, args.warmup)  # noqa: B023
        batch["per_utterance_p50_ms"] = round(batch["p50_ms"] / len(BATCH), 2)
        row["batch8_sentences"] = batch
        results[precision] = row
        del m
    wall = time.monotonic() - wall0
    other = 100 * ((_system_busy_s() - busy0) - (_own_cpu_s() - own0)) / wall

    out = {
        "model": f"bert-{args.size} random (kor_unsmile architecture, KcBERT vocab {tiny_bert.vocab_size()})",
        "params_m": round(params / 1e6, 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "sentence": SENTENCE,
        "sentence_tokens": tokens,
        "loo_sequences": len(loo),
        "build_s": round(build_s, 1),
        **{
            f"{p}_{case}_{k}": v
            for p, row in results.items()
            for case, r in row.items()
            for k, v in r.items()
            if k in ("p50_ms", "p95_ms", "per_utterance_p50_ms")
        },
        "design_reference_ms": {"fp32_sentence": 73, "int8_sentence": 14},
        "other_cpu_pct": round(other, 1),
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(f"{out['model']}, {out['params_m']} M params, {args.threads} threads, torch {out['torch']}")
        print(f"sentence: {SENTENCE!r} ({tokens} tokens), leave-one-out batch: {len(loo)} sequences")
        print(f"{'case':<22}{'fp32 p50':>10}{'p95':>8}{'int8 p50':>10}{'p95':>8}  (ms)")
        for case in results["fp32"]:
            f, q = results["fp32"][case], results["int8"][case]
            print(f"{case:<22}{f['p50_ms']:>10.1f}{f['p95_ms']:>8.1f}{q['p50_ms']:>10.1f}{q['p95_ms']:>8.1f}")
        print(f"DESIGN.md reference, one short sentence: fp32 73 ms, int8 14 ms; other_cpu_pct {out['other_cpu_pct']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
