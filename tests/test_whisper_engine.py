"""WhisperEngine on the real faster-whisper path with a tiny random-weight Whisper.

Random weights give garbage text: these tests check structure (segments, word times,
language, caps, threads, errors), never content.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# Never skipped: torch (the CPU wheel), transformers and espeak-ng come from
# scripts/install-test-deps, and a machine without them must fail here, not pass quietly.
assert shutil.which("espeak-ng"), "espeak-ng is missing: run scripts/install-test-deps"

from moderation import model_store  # noqa: E402
from moderation.speech import SAMPLE_RATE, EngineSegment, EngineWord, SpeechEngine  # noqa: E402
from moderation.stt_config import SttConfig  # noqa: E402
from moderation.whisper_engine import ModelUnavailable, WhisperEngine  # noqa: E402
from tests import tiny_models  # noqa: E402

# Session-scoped: the tiny model is built once (a few seconds). Move to conftest.py to share.

KO_ID = 50264  # <|ko|>
EN_ID = 50259  # <|en|>


@pytest.fixture(scope="module")
def engine(tiny_whisper: Path) -> WhisperEngine:
    return WhisperEngine(SttConfig(model=str(tiny_whisper), device="cpu", workers=2))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 8 s of Korean: two espeak-ng sentences with a pause."""
    first = tiny_models.espeak_korean(tiny_models.KOREAN_LINES[0])
    second = tiny_models.espeak_korean(tiny_models.KOREAN_LINES[1])
    pause = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pause, 0.6 * first, pause, 0.6 * second, pause]).astype(np.float32)


class GenerateSpy:
    """Stands in front of the CTranslate2 model and records what faster-whisper asks of it."""

    def __init__(self, model) -> None:
        self._model = model
        self.generate_calls: list[dict] = []
        self.encode_calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._model, name)

    def encode(self, *args, **kwargs):
        with self._lock:
            self.encode_calls += 1
        return self._model.encode(*args, **kwargs)

    def generate(self, encoder_output, prompts, **kwargs):
        result = self._model.generate(encoder_output, prompts, **kwargs)
        with self._lock:
            self.generate_calls.append(
                {
                    "prompt": list(prompts[0]),
                    "max_length": kwargs.get("max_length"),
                    "generated": len(result[0].sequences_ids[0]),
                    "beam_size": kwargs.get("beam_size"),
                    "repetition_penalty": kwargs.get("repetition_penalty"),
                    "no_repeat_ngram_size": kwargs.get("no_repeat_ngram_size"),
                    "sequence": list(result[0].sequences_ids[0]),
                }
            )
        return result


@pytest.fixture
def spy(engine: WhisperEngine):
    real = engine._model.model
    spy = GenerateSpy(real)
    engine._model.model = spy
    yield spy
    engine._model.model = real


def all_words(segments: list[EngineSegment]) -> list[EngineWord]:
    return [w for s in segments for w in s.words]


def test_segments_and_words_have_monotonic_times_inside_the_audio(engine: WhisperEngine, speech: np.ndarray) -> None:
    duration = len(speech) / SAMPLE_RATE
    segments = engine.transcribe(speech, "", "ko")
    assert segments, "the tiny model should produce some segments on 8 s of speech"
    words = all_words(segments)
    assert words, "word timestamps are on: some segment should carry words"
    for seg in segments:
        assert isinstance(seg, EngineSegment)
        assert type(seg.start) is float and type(seg.end) is float
        assert 0.0 <= seg.start <= seg.end <= duration
        assert 0.0 <= seg.no_speech_prob <= 1.0
        assert seg.avg_logprob <= 0.0
        assert isinstance(seg.text, str)
    previous_end = 0.0
    for word in words:
        assert isinstance(word, EngineWord)
        assert word.text and word.text == word.text.strip()
        assert type(word.start) is float and type(word.end) is float
        assert previous_end <= word.start <= word.end <= duration
        assert 0.0 <= word.probability <= 1.0
        previous_end = word.end
    starts = [s.start for s in segments]
    assert starts == sorted(starts)


def test_language_is_passed_through_not_detected(
    engine: WhisperEngine, speech: np.ndarray, spy: GenerateSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_detection(*args, **kwargs):
        raise AssertionError("language detection must not run when a language is given")

    monkeypatch.setattr(engine._model, "detect_language", no_detection)
    engine.transcribe(speech[: 3 * SAMPLE_RATE], "", "ko")
    assert spy.generate_calls
    for call in spy.generate_calls:
        sot = call["prompt"].index(tiny_models.SOT)
        assert call["prompt"][sot : sot + 3] == [tiny_models.SOT, KO_ID, tiny_models.TRANSCRIBE]
        assert call["beam_size"] == engine.config.beam_size
    spy.generate_calls.clear()
    engine.transcribe(speech[: 3 * SAMPLE_RATE], "", "en")
    assert all(EN_ID in c["prompt"] and KO_ID not in c["prompt"] for c in spy.generate_calls)


def test_prompt_goes_before_the_start_of_transcript(
    engine: WhisperEngine, speech: np.ndarray, spy: GenerateSpy
) -> None:
    prompt = "요금 청구 문의"
    engine.transcribe(speech[: 3 * SAMPLE_RATE], prompt, "ko")
    expected = engine._tokenizer.encode(" " + prompt, add_special_tokens=False).ids
    first = spy.generate_calls[0]["prompt"]
    assert first[0] == tiny_models.SOT_PREV
    assert first[1 : 1 + len(expected)] == expected
    assert first[1 + len(expected)] == tiny_models.SOT


def test_decoding_is_capped_by_audio_length(engine: WhisperEngine, spy: GenerateSpy) -> None:
    assert engine.decode_cap_tokens(1.0) == 20  # 10 tokens/s + 10
    assert engine.decode_cap_tokens(10.0) == 110
    assert engine.decode_cap_tokens(60.0) == engine.decode_cap_tokens(25.0) == 224  # Whisper's own limit
    # A long prompt (at most 223 tokens kept) leaves room in Whisper's 448 decoder positions.
    assert engine.decode_cap_tokens(30.0, prompt_tokens=400) == 448 - (1 + 223 + 3)
    rng = np.random.default_rng(1)
    reached = 0
    for seconds, prompt in ((2.0, ""), (9.0, "요금 청구 문의 " * 3), (25.0, "")):
        noise = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
        spy.generate_calls.clear()
        spy.encode_calls = 0
        started = time.monotonic()
        engine.transcribe(noise, prompt, "ko")
        elapsed = time.monotonic() - started
        prompt_tokens = len(engine._tokenizer.encode(" " + prompt.strip()).ids) if prompt else 0
        cap = engine.decode_cap_tokens(seconds, prompt_tokens)
        assert spy.generate_calls
        for call in spy.generate_calls:
            assert call["generated"] <= cap
            reached += call["generated"] == cap
        # One window per 30 s plus one re-decode of an unfinished tail, never more.
        assert spy.encode_calls <= math.ceil(seconds / 30) + 1
        assert elapsed < 10.0
    # The random model never says end-of-text on noise: the cap is what stopped it.
    assert reached


@pytest.fixture(scope="module")
def full_engine(tiny_whisper: Path) -> WhisperEngine:
    """The faster-whisper transcribe() path (stt.encoder_window = "full")."""
    return WhisperEngine(SttConfig(model=str(tiny_whisper), device="cpu", workers=2, encoder_window="full"))


def test_window_budget_stops_a_runaway_pass(
    full_engine: WhisperEngine, speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = full_engine
    # faster-whisper re-decodes from the last timestamp when a window ends unfinished; make
    # every window look unfinished and check the pass still ends after its budget.
    import faster_whisper.transcribe as fwt

    real_split = fwt.WhisperModel._split_segments_by_timestamps

    def never_finished(self, tokenizer, tokens, time_offset, segment_size, segment_duration, seek):
        segments, _seek, _single = real_split(
            self, tokenizer, tokens, time_offset, segment_size, segment_duration, seek
        )
        return segments, seek + 10, False  # advance 0.1 s only: an endless stream of windows

    monkeypatch.setattr(fwt.WhisperModel, "_split_segments_by_timestamps", never_finished)
    monkeypatch.setattr(fwt, "get_end", lambda segments: None)
    encodes = []
    real_encode = type(engine._model).__mro__[1].encode
    monkeypatch.setattr(
        type(engine._model).__mro__[1],
        "encode",
        lambda self, features: encodes.append(1) or real_encode(self, features),
    )
    started = time.monotonic()
    engine.transcribe(speech, "", "ko")
    assert len(encodes) == 2
    assert time.monotonic() - started < 5.0
    assert engine._model._local.windows_left is None
    assert engine.last_pass()["windows"] == 2
    # Without the tail re-decode a pass under 30 s is one window.
    encodes.clear()
    engine.tail_redecode = False
    try:
        engine.transcribe(speech, "", "ko")
    finally:
        engine.tail_redecode = True
    assert len(encodes) == 1 and engine.last_pass()["windows"] == 1


def test_short_or_silent_audio(engine: WhisperEngine) -> None:
    assert engine.transcribe(np.zeros(400, dtype=np.float32), "", "ko") == []
    result = engine.transcribe(np.zeros(2 * SAMPLE_RATE, dtype=np.float32), "", "ko")
    assert isinstance(result, list)
    # int16-range or float64 input is accepted as samples (converted to float32).
    assert isinstance(engine.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float64), "", "ko"), list)


def test_concurrent_transcribe_from_two_threads(engine: WhisperEngine, speech: np.ndarray) -> None:
    clips = [speech[: 4 * SAMPLE_RATE], speech[2 * SAMPLE_RATE :]]
    expected = [engine.transcribe(c, "", "ko") for c in clips]
    results: dict[int, list] = {0: [], 1: []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                results[i].append(engine.transcribe(clips[i], "", "ko"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for i in (0, 1):
        assert len(results[i]) == 3
        for got in results[i]:
            assert [w.text for w in all_words(got)] == [w.text for w in all_words(expected[i])]
            assert [s.start for s in got] == pytest.approx([s.start for s in expected[i]], abs=0.05)


def test_version_names_the_model_and_its_content(engine: WhisperEngine, tiny_whisper: Path, tmp_path: Path) -> None:
    assert engine.version.startswith(str(tiny_whisper))
    assert "#sha256:" in engine.version
    # A folder pulled by `callguard models pull` carries its hub revision instead.
    pulled = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_whisper, pulled)
    (pulled / model_store.MARKER).write_text(
        json.dumps({"repo_id": "Systran/faster-whisper-tiny", "revision": "d90ca5fe260221311c53c58e660288d3deb8d356"})
    )
    other = WhisperEngine(
        SttConfig(model="tiny", models_dir=str(tmp_path / "models"), device="cpu", workers=1), warmup=False
    )
    assert other.version == "tiny@d90ca5fe2602"
    assert other.model_path == str(pulled)


def test_threads_are_sized_for_the_workers(tiny_whisper: Path) -> None:
    one = WhisperEngine(SttConfig(model=str(tiny_whisper), device="cpu", workers=1), warmup=False)
    assert one.cpu_threads == max(1, len(os.sched_getaffinity(0)))
    assert one._model.model.num_workers == 1
    two = WhisperEngine(SttConfig(model=str(tiny_whisper), device="cpu", workers=2), cpu_threads=3, warmup=False)
    assert two.cpu_threads == 3
    assert two._model.model.num_workers == 2


def test_missing_folder_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        WhisperEngine(SttConfig(model=str(tmp_path / "no-such-model"), device="cpu"))


def test_incomplete_folder_is_model_unavailable(tiny_whisper: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models" / "small"
    shutil.copytree(tiny_whisper, folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailable, match="incomplete: missing tokenizer.json"):
        WhisperEngine(SttConfig(model="small", models_dir=str(tmp_path / "models"), device="cpu"))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_model_bin_is_model_unavailable(tiny_whisper: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_whisper, folder)
    data = (tiny_whisper / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[: len(data) // 3] if damage == "truncated" else os.urandom(4096))
    with pytest.raises(ModelUnavailable, match=r"cannot load model .*broken.*RuntimeError"):
        WhisperEngine(SttConfig(model=str(folder), device="cpu"))


def test_name_not_present_offline_is_model_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"callguard models pull small"):
        WhisperEngine(SttConfig(model="small", models_dir=str(tmp_path / "models"), device="cpu"))
    with pytest.raises(ModelUnavailable, match="neither a folder"):
        WhisperEngine(SttConfig(model="no-such-size", models_dir=str(tmp_path / "models"), device="cpu"))
    assert time.monotonic() - started < 10


def test_unknown_language_is_model_unavailable(tiny_whisper: Path) -> None:
    with pytest.raises(ModelUnavailable, match="stt.language"):
        WhisperEngine(SttConfig(model=str(tiny_whisper), device="cpu", language="xx"), warmup=False)


def test_engine_fits_the_protocol(engine: WhisperEngine) -> None:
    as_protocol: SpeechEngine = engine
    assert isinstance(as_protocol.version, str) and as_protocol.version
    assert callable(as_protocol.transcribe)


# --- the fitted-window path (stt.encoder_window = "fit", moderation/whisper_pass.py)


def test_fit_path_encodes_a_window_fitted_to_the_clip(engine: WhisperEngine, speech: np.ndarray) -> None:
    assert engine.config.encoder_window == "fit"
    segments = engine.transcribe(speech, "", "ko")
    info = engine.last_pass()
    clip_frames = len(speech) / SAMPLE_RATE * 100
    assert clip_frames < info["window_frames"] <= clip_frames + 100 * (engine.config.window_pad_s + 1)
    assert info["window_frames"] < 3000
    duration = len(speech) / SAMPLE_RATE
    for seg in segments:
        for w in seg.words:
            assert 0.0 <= w.start <= w.end <= duration


def test_fit_path_pads_the_window_with_what_whisper_hears_as_silence(
    engine: WhisperEngine, speech: np.ndarray, spy: GenerateSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window past the clip must read as the clip followed by digital silence, as
    # faster-whisper's own 30 s padding does (the features of zeros), not as 0.0.
    seen: list[np.ndarray] = []
    encode = spy.encode

    def recording_encode(features, *args, **kwargs):
        seen.append(np.array(features))
        return encode(features, *args, **kwargs)

    monkeypatch.setattr(spy, "encode", recording_encode, raising=False)
    clip = speech[: 3 * SAMPLE_RATE]
    engine.transcribe(clip, "", "ko")
    window = seen[-1][0]
    frames = window.shape[-1]
    extractor = engine._model.feature_extractor
    silent_after = extractor(np.concatenate([clip, np.zeros(frames * 160, np.float32)]))[:, :frames]
    clip_frames = len(clip) // 160
    assert frames > clip_frames + 100  # a padded window
    past = slice(clip_frames + 2, frames)  # the STFT frames that still overlap the clip aside
    assert np.allclose(window[:, past], silent_after[:, past], atol=1e-4)
    assert np.allclose(window[:, : clip_frames - 2], silent_after[:, : clip_frames - 2], atol=1e-4)


def test_fit_path_batch_answers_each_clip_in_order(engine: WhisperEngine, speech: np.ndarray) -> None:
    clips = [speech[: int(k * SAMPLE_RATE)] for k in (2, 5, 8)]
    batched = engine.transcribe_batch([(c, "", "ko", "") for c in clips] + [(np.zeros(10, np.float32), "", "ko", "")])
    assert len(batched) == 4 and batched[3] == []
    assert engine.last_pass()["batch"] == 3  # the too-short clip never reached the model
    for clip, segs in zip(clips, batched):
        for seg in segs:
            assert all(w.end <= len(clip) / SAMPLE_RATE + 1e-6 for w in seg.words)


def test_fit_path_prefix_is_forced_and_not_returned(
    engine: WhisperEngine, speech: np.ndarray, spy: GenerateSpy
) -> None:
    engine.transcribe(speech, "", "ko", prefix="안녕하세요 고객님")
    prefix_ids = engine._tokenizer.encode(" 안녕하세요 고객님", add_special_tokens=False).ids
    prompt = spy.generate_calls[-1]["prompt"]
    assert prompt[-len(prefix_ids) :] == prefix_ids  # after <|0.00|>, at the end of the prompt
    assert engine.supports_prefix


REAL = os.environ.get("CALLGUARD_REAL_WHISPER")


@pytest.mark.skipif(not REAL, reason="set CALLGUARD_REAL_WHISPER=/path/to/whisper-base (real weights)")
def test_real_whisper_fit_window_reads_like_the_full_window() -> None:
    # English espeak-ng, which real Whisper reads fairly well: the fitted window keeps the
    # full window's text and word times (bench/stt_profile.py measures the padding).
    from bench.stt_speech import LINES, cer, espeak

    pause = np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate(
        [pause, 0.6 * espeak(LINES["en"][0], "en"), pause, 0.6 * espeak(LINES["en"][1], "en"), pause]
    ).astype(np.float32)
    fit = WhisperEngine(SttConfig(model=REAL, device="cpu", language="en", workers=1))
    full = WhisperEngine(SttConfig(model=REAL, device="cpu", language="en", workers=1, encoder_window="full"))
    a, b = fit.transcribe(audio, "", "en"), full.transcribe(audio, "", "en")
    text_a = " ".join(s.text for s in a)
    text_b = " ".join(s.text for s in b)
    assert cer(text_a, text_b) <= 0.05, (text_a, text_b)
    from moderation.agreement import normalise

    # Punctuation: faster-whisper merges it into words, the fitted path keeps it apart.
    starts_a = [w.start for s in a for w in s.words if normalise(w.text)]
    starts_b = [w.start for s in b for w in s.words if normalise(w.text)]
    assert len(starts_a) == len(starts_b)
    assert max(abs(x - y) for x, y in zip(starts_a, starts_b)) <= 0.15
    tail = fit.transcribe(audio, "", "en", prefix="Hello, I am calling about")
    words = [w.text for s in tail for w in s.words]
    assert words and words[0].lower().strip(",") != "hello"


def test_fit_path_batch_mixes_prompts_and_prefixes(engine: WhisperEngine, speech: np.ndarray) -> None:
    # CTranslate2 needs <|startoftranscript|> at one position per batch: prompts of
    # different lengths (and none) must still batch.
    items = [
        (speech, "", "ko", ""),
        (speech, "안녕하세요 고객님 무엇을", "ko", ""),
        (speech[: 4 * SAMPLE_RATE], "네", "ko", "안녕하세요"),
        (speech, "", "ko", "고객님"),
    ]
    out = engine.transcribe_batch(items)
    assert len(out) == 4


@pytest.mark.parametrize("window", ["fit", "full"])
def test_loop_guards_reach_the_decoder(tiny_whisper: Path, speech: np.ndarray, window: str) -> None:
    """stt.repetition_penalty and stt.no_repeat_ngram_size are applied by the decoder on
    both paths: with n-grams of one token barred, no token of a decode repeats (a random
    model otherwise repeats tokens freely until its cap)."""
    config = SttConfig(
        model=str(tiny_whisper), device="cpu", encoder_window=window, repetition_penalty=1.3, no_repeat_ngram_size=1
    )
    guarded = WhisperEngine(config)
    spy = GenerateSpy(guarded._model.model)
    guarded._model.model = spy
    guarded.transcribe(speech, "", "ko")
    assert spy.generate_calls
    for call in spy.generate_calls:
        assert call["repetition_penalty"] == 1.3 and call["no_repeat_ngram_size"] == 1
        assert len(call["sequence"]) > 3
        assert len(set(call["sequence"])) == len(call["sequence"])
