"""The shipped text model's cost: load time and milliseconds per utterance on one core.

    python bench/text_model_speed.py [--model-dir DIR] [--rounds 50]

Judges the call-centre utterances of keyword_speed.py (~13 words, some abusive) through
TextModel.judge (folding, features, scores, word attribution, Hit building), one at a
time on one thread, with the folding cache emptied before each utterance (every word new:
the worst case) and warm, and warm again with the utterance before it as context (as
the server runs it: moderation/call_moderator.py). The model runs under the shipped
keyword lists' allowlist, as the server loads it. Prints one JSON object: load_s,
size_mb, p50/p99 ms, hits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.keyword_speed import UTTERANCES  # noqa: E402
from moderation.keyword_config import KeywordConfig  # noqa: E402
from moderation.keywords import KeywordMatcher  # noqa: E402
from moderation.normalise import normalise_word  # noqa: E402
from moderation.text_model import TextModel  # noqa: E402
from moderation.text_model_config import TextModelConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="", help="a train-text folder (default: the shipped model)")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    model = TextModel.load(TextModelConfig(model_dir=args.model_dir), KeywordMatcher(KeywordConfig()).allowed_words)
    load_s = time.perf_counter() - started
    utterances = [u.split() for u in UTTERANCES]
    cold: list[float] = []
    warm: list[float] = []
    in_context: list[float] = []
    hits = 0
    for _ in range(args.rounds):
        for k, words in enumerate(utterances):
            normalise_word.cache_clear()
            t = time.perf_counter()
            found = model.judge(words)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.judge(words)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.judge(words, utterances[k - 1])
            in_context.append(time.perf_counter() - t)
            hits += bool(found)

    def ms(samples: list[float], q: float) -> float:
        return round(statistics.quantiles(samples, n=100)[int(q) - 1] * 1000, 3)

    print(
        json.dumps(
            {
                "model": str(model.folder),
                "version": model.version,
                "size_mb": round(sum(p.stat().st_size for p in model.folder.iterdir()) / 1e6, 2),
                "load_s": round(load_s, 3),
                "utterances": len(utterances),
                "words_per_utterance": round(sum(map(len, utterances)) / len(utterances), 1),
                "utterances_flagged": hits // args.rounds,
                "cold_p50_ms": ms(cold, 50),
                "cold_p99_ms": ms(cold, 99),
                "warm_p50_ms": ms(warm, 50),
                "warm_p99_ms": ms(warm, 99),
                "with_context_p50_ms": ms(in_context, 50),
                "with_context_p99_ms": ms(in_context, 99),
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
