"""Keyword matching speed: microseconds per utterance with a large list.

    python bench/keyword_speed.py                 # 5,000 synthetic entries + configs/keywords
    python bench/keyword_speed.py --synthetic 20000 --rounds 200

The real lists (configs/keywords) are copied to a temp folder with a synthetic.txt of N
generated entries (2-6 syllables drawn from common Korean syllables, some phrases), so
the automaton has realistic branching. Utterances are call-centre sentences of 10-15
words, some abusive, some with disguises and false friends. Each is timed through
KeywordMatcher.match (normalisation, both scans, allowlist, Hit building):

- warm: the per-word normalisation cache holds the words (a running call: most words
  recur), the usual case;
- cold: the cache is emptied before every utterance (every word new to the process).

Prints one JSON object: p50/p99 µs per utterance for both, entries, automaton states,
compile time, and hits found (a check that the lists matched something).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moderation.keyword_config import BUILTIN_LISTS, KeywordConfig  # noqa: E402
from moderation.keywords import KeywordMatcher  # noqa: E402
from moderation.normalise import normalise_word  # noqa: E402

UTTERANCES = [
    "안녕하세요 지난주에 주문한 냉장고가 아직 배송이 안 돼서 전화 드렸는데요 언제쯤 받을 수 있을까요",
    "카드 분실 신고 하려고 하는데요 재발급 시 발급 수수료가 따로 발생하는지 궁금합니다",
    "아니 씨발 내가 몇 번을 말해야 알아듣냐고 이 새끼야 환불 해 달라고",
    "결제 시 발송 된다고 해 놓고 벌써 일주일 째 아무 연락이 없잖아요 이게 말이 됩니까",
    "너 찾아가서 죽여 버린다 집 주소 알아 내는 거 어렵지 않아 퇴근길 조심 해라",
    "목소리가 섹시 하네 아가씨 남친 있냐 오늘 밤 같이 한잔 할래 전화번호 좀 줘 봐",
    "인터넷이 자꾸 끊겨서 공유기를 껐다 켰는데 전원이 꺼져 버려요 어떻게 해야 하나요",
    "요금제 변경 하고 싶은데 정액 요금제 말고 데이터 무제한 으로 바꿀 수 있나요",
    "병신년 생 이고요 생년월일 확인 하시면 본인 인증 바로 될 거예요",
    "ㅅㅂ 진짜 짜증 나네 상담원 주제에 어디서 말대꾸야 니가 뭔데 가르치려 들어",
    "씨1발 이거 왜 또 안 되는 거야 개새끼들 장사 이따위로 할 거면 때려 치워",
    "매장 찾아가서 교환 했는데 똑같은 불량 이 또 나와서 다시 접수 하려고 합니다",
    "미친년 아 말귀를 못 알아 듣네 멍청한 년 이 상담 하고 있으니 될 리가 있나",
    "시발점 이 어딘지 확인 하고 다시 연락 드릴게요 오늘 안에 처리 부탁 드립니다",
    "가만 안 둬 회사 로 찾아가서 가만 안 있을 거야 두고 보자 진짜",
    "배터리 가 금방 죽어 버려요 서비스 센터 예약 가능 한 시간 알려 주세요",
    "존나 느리네 진짜 좆같 은 회사 빨리 처리 해 tlqkf 몇 시간 째 기다리는 거야",
    "고객님 잠시만 기다려 주시면 확인 후 바로 안내 도와 드리겠습니다 감사합니다",
    "ㅋㅋㅋ 아 진짜 웃기네 그래서 언제 오는데요 오늘 오후 세 시 쯤 가능 한가요",
    "주소 변경 은 어디서 하나요 이사 를 해서 우편물 이 예전 집 으로 가고 있어요",
]

# Common syllables (first syllables of everyday words) for synthetic entries.
SYLLABLES = (
    "가각간갈감갑강개거건걸검게겨결경계고곡골공과관광교구국군굴권귀규그극근글금기긴길김까깨꼬꽃꾸끝나낙난날남"
    "내너널네녀년노농누눈느는늘니다닥단달담답당대더덕던데도독돈돌동되두둘뒤드득들등디따땅때또뜻라락란람랑래"
    "러런럼레려력련렬령로록론료루류르른를름리린림립마막만말맘망매머먹면명모목몸못무문물미민밀바박반받발밤방"
    "배백버번벌범법벽변별병보복본봉부북분불비빈빌빛사산살삼상새색생서석선설섬성세소속손송수숙순술숨스습승시식"
    "신실심십싸쌀써쓰씨아악안알암압앞애야약양어억언얼엄업에여역연열염영예오옥온올옷와완왕외요용우운울움원월위"
    "유육윤은을음의이인일임입자작잔잘잠장재저적전절점정제조족존졸종좌주죽준줄중즐지직진질집짓짜째쪽차착찬참창"
    "채책처천철첫청체초총최추축춘출충취층치친칠침카커코크큰타탁탄탈탐탑태터토통투트특티파판팔패편평포표품풍프"
    "피필하학한할함합항해핵행향허헌험혁현혈협형혜호혹혼홍화확환활황회획효후훈휴흐흑흔흘흙희흰히힘"
)


def synthetic_entries(n: int, rng: random.Random) -> list[str]:
    entries = set()
    while len(entries) < n:
        length = rng.choice((2, 2, 3, 3, 3, 4, 4, 5, 6))
        word = "".join(rng.choice(SYLLABLES) for _ in range(length))
        if length >= 4 and rng.random() < 0.3:
            cut = rng.randint(1, length - 1)
            word = word[:cut] + " " + word[cut:]
        entries.add(word)
    return sorted(entries)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=5000, help="generated entries added to the real lists")
    parser.add_argument("--rounds", type=int, default=100, help="passes over the utterances")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kwbench-") as tmp:
        folder = Path(tmp) / "keywords"
        shutil.copytree(BUILTIN_LISTS, folder)
        (folder / "synthetic.txt").write_text("\n".join(synthetic_entries(args.synthetic, rng)) + "\n")
        t0 = time.perf_counter()
        matcher = KeywordMatcher(KeywordConfig(lists_dir=str(folder)))
        compile_s = time.perf_counter() - t0
    utterances = [u.split() for u in UTTERANCES]
    hits = sum(len(matcher.match(words)) for words in utterances)

    warm: list[float] = []
    for _ in range(args.rounds):
        for words in utterances:
            t = time.perf_counter_ns()
            matcher.match(words)
            warm.append((time.perf_counter_ns() - t) / 1000)
    cold: list[float] = []
    for _ in range(max(1, args.rounds // 5)):
        for words in utterances:
            normalise_word.cache_clear()
            t = time.perf_counter_ns()
            matcher.match(words)
            cold.append((time.perf_counter_ns() - t) / 1000)
    print(
        json.dumps(
            {
                "entries": sum(n for name, n in matcher.counts.items() if name != "allow"),
                "allow_entries": matcher.counts.get("allow", 0),
                "automaton_patterns": matcher._lists.automaton.size,
                "compile_s": round(compile_s, 3),
                "utterances": len(utterances),
                "words_per_utterance": round(statistics.mean(len(u) for u in utterances), 1),
                "hits_found": hits,
                "warm_p50_us": round(percentile(warm, 0.5), 1),
                "warm_p99_us": round(percentile(warm, 0.99), 1),
                "cold_p50_us": round(percentile(cold, 0.5), 1),
                "cold_p99_us": round(percentile(cold, 0.99), 1),
                "python": sys.version.split()[0],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
