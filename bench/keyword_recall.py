"""Keyword lists against korcen (the peer on the package index) on the same labelled text.

    pip install --no-deps korcen==1.0.3        # for this comparison only; never a dependency
    python bench/keyword_recall.py ../shared/data/unsmile/unsmile_valid_v1.0.tsv
    python bench/keyword_recall.py held_out.tsv --json   # from models train-text --held-out-tsv

FILE is anything `callguard eval-text` reads (UnSmile TSV, or text<TAB>0|1). Prints
abusive-vs-clean precision, recall and F1 of the shipped keyword lists, of korcen's
check() and of the two together, and the forms from issue 13 each one catches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moderation.keyword_config import KeywordConfig  # noqa: E402
from moderation.keywords import KeywordMatcher  # noqa: E402
from offline.eval_text import read_labelled  # noqa: E402

# Abusive spellings and innocent joins (the second element: should it fire?).
FORMS = [
    ("쒸발", True),
    ("시볼", True),
    ("시이이발", True),
    ("벼엉신", True),
    ("씨X", True),
    ("씨** 뭐야", True),
    ("니네 새끼들은 왜 그래", True),
    ("아저씨 발가락", False),
    ("결제 시 발송", False),
    ("고양이 새끼 분양", False),
]


def figures(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = read_labelled(args.file)
    matcher = KeywordMatcher(KeywordConfig())
    ours = np.array([bool(matcher.match(t.split())) for t in data.texts], dtype=bool)
    out: dict[str, Any] = {
        "file": str(args.file),
        "sentences": len(data.texts),
        "keywords": figures(ours, data.abusive),
    }
    out["forms"] = {text: bool(matcher.match(text.split())) == want for text, want in FORMS}
    try:
        from korcen import korcen  # type: ignore[import-not-found]
    except ImportError:
        out["korcen"] = "not installed (pip install --no-deps korcen==1.0.3)"
    else:
        theirs = np.array([bool(korcen.check(t)) for t in data.texts], dtype=bool)
        out["korcen"] = figures(theirs, data.abusive)
        out["keywords_or_korcen"] = figures(ours | theirs, data.abusive)
        out["korcen_forms"] = {text: bool(korcen.check(text)) == want for text, want in FORMS}
    print(json.dumps(out, ensure_ascii=False, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
