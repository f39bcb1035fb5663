"""Randomly-initialised Whisper models of the real architecture, built on the fly.

No model weights can be downloaded here, so tests (and bench/stt_lag.py) build a Whisper
with random weights, the real multilingual tokenizer from tests/data and the real
special tokens, and convert it to CTranslate2 the way faster-whisper's published models
were made. The text it produces is garbage; the code path (features, encoder, decoding
with timestamp rules, word alignment, tokenizer) is the real one.

Pitfalls handled here (the project's design notes, "Models in this environment"):
- transformers 5.x drops the Whisper-specific generation-config fields (lang_to_id,
  alignment_heads, ...) on save unless `generation_config._from_model_config = False`;
- CTranslate2 treats a model as multilingual only if its vocabulary has the empty token
  "" (id 50256), which the real tokenizer has; so the real tokenizer.json is used as is;
- faster-whisper needs tokenizer.json in the model folder, or it goes to the hub.

Use `tiny_whisper_fixture` (a session-scoped pytest fixture) or `build_whisper_ct2()`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_JSON = Path(__file__).resolve().parent / "data" / "whisper-tokenizer" / "tokenizer.json"

VOCAB_SIZE = 51865  # multilingual Whisper (not large-v3): 50364 text/special + 1501 timestamps
N_MELS = 80
EOT = 50257
SOT = 50258
TRANSLATE = 50358
TRANSCRIBE = 50359
SOT_PREV = 50361
NO_TIMESTAMPS = 50363


@dataclass(frozen=True)
class WhisperDims:
    d_model: int
    layers: int  # encoder and decoder layers (equal in every published Whisper size)
    heads: int
    ffn: int
    # Cross-attention heads used for word timestamps (openai's per-size lists).
    alignment_heads: tuple[tuple[int, int], ...]


# Real dimensions of the published multilingual Whisper sizes; "test" is the tiny-tiny
# model the unit tests use (a few seconds to build, milliseconds per pass).
SIZES: dict[str, WhisperDims] = {
    "test": WhisperDims(64, 2, 2, 128, ((1, 0), (1, 1))),
    "tiny": WhisperDims(384, 4, 6, 1536, ((2, 2), (3, 0), (3, 2), (3, 3), (3, 4), (3, 5))),
    "base": WhisperDims(512, 6, 8, 2048, ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6))),
    "small": WhisperDims(
        768, 12, 12, 3072, ((5, 3), (5, 9), (8, 0), (8, 4), (8, 7), (8, 8), (9, 0), (9, 7), (9, 9), (10, 5))
    ),
}


def _special_ids() -> tuple[dict[str, int], list[int]]:
    """lang_to_id from the real tokenizer, and faster-whisper's non-speech suppress list."""
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(TOKENIZER_JSON))
    lang_to_id = {}
    for token_id in range(SOT + 1, TRANSLATE):
        token = tok.id_to_token(token_id)
        assert token and token.startswith("<|") and token.endswith("|>"), token
        lang_to_id[token] = token_id
    assert tok.id_to_token(50256) == "", "the tokenizer must have the empty token at 50256"
    assert tok.token_to_id("<|notimestamps|>") == NO_TIMESTAMPS

    from faster_whisper.tokenizer import Tokenizer

    suppress = sorted(set(Tokenizer(tok, True, task="transcribe", language="ko").non_speech_tokens))
    return lang_to_id, suppress


def build_whisper_ct2(
    out_dir: str | os.PathLike, size: str = "test", quantization: str = "int8", seed: int = 0
) -> Path:
    """Builds a random-weight Whisper of `size` and writes a faster-whisper model folder.

    The folder holds model.bin, config.json, vocabulary.json (CTranslate2), tokenizer.json
    and preprocessor_config.json, like Systran/faster-whisper-*. Never touches the network.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    dims = SIZES[size]
    out = Path(out_dir)
    lang_to_id, suppress = _special_ids()
    config = WhisperConfig(
        vocab_size=VOCAB_SIZE,
        num_mel_bins=N_MELS,
        d_model=dims.d_model,
        encoder_layers=dims.layers,
        decoder_layers=dims.layers,
        encoder_attention_heads=dims.heads,
        decoder_attention_heads=dims.heads,
        encoder_ffn_dim=dims.ffn,
        decoder_ffn_dim=dims.ffn,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=EOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        decoder_start_token_id=SOT,
        suppress_tokens=suppress,
        begin_suppress_tokens=[220, EOT],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    gen = GenerationConfig(
        bos_token_id=EOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        decoder_start_token_id=SOT,
        max_length=448,
        suppress_tokens=suppress,
        begin_suppress_tokens=[220, EOT],
        alignment_heads=[list(h) for h in dims.alignment_heads],
        lang_to_id=lang_to_id,
        task_to_id={"translate": TRANSLATE, "transcribe": TRANSCRIBE},
        is_multilingual=True,
        no_timestamps_token_id=NO_TIMESTAMPS,
        prev_sot_token_id=SOT_PREV,
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )
    gen._from_model_config = False  # transformers 5.x drops the Whisper fields otherwise
    model.generation_config = gen

    with tempfile.TemporaryDirectory(prefix="whisper-hf-") as hf_dir:
        model.save_pretrained(hf_dir)
        WhisperTokenizerFast(tokenizer_file=str(TOKENIZER_JSON)).save_pretrained(hf_dir)
        saved = json.loads((Path(hf_dir) / "generation_config.json").read_text())
        assert "lang_to_id" in saved and "alignment_heads" in saved, "generation config lost its fields"
        tmp_out = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp_out, ignore_errors=True)
        TransformersConverter(hf_dir).convert(str(tmp_out), quantization=quantization, force=True)
    shutil.copy(TOKENIZER_JSON, tmp_out / "tokenizer.json")
    (tmp_out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "chunk_length": 30,
                "feature_extractor_type": "WhisperFeatureExtractor",
                "feature_size": N_MELS,
                "hop_length": 160,
                "n_fft": 400,
                "n_samples": 480000,
                "nb_max_frames": 3000,
                "padding_side": "right",
                "padding_value": 0.0,
                "processor_class": "WhisperProcessor",
                "return_attention_mask": False,
                "sampling_rate": 16000,
            },
            indent=2,
        )
    )
    ct2_config = json.loads((tmp_out / "config.json").read_text())
    assert 50259 in ct2_config["lang_ids"], "converted model lost its language ids"
    shutil.rmtree(out, ignore_errors=True)
    tmp_out.rename(out)
    return out


def cached_whisper_ct2(
    cache_root: str | os.PathLike, size: str = "test", quantization: str = "int8", seed: int = 0
) -> Path:
    """build_whisper_ct2 once per (size, quantization, seed) under cache_root."""
    path = Path(cache_root) / f"whisper-{size}-random-{quantization}-s{seed}"
    if not (path / "model.bin").is_file() or not (path / "tokenizer.json").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_whisper_ct2(path, size, quantization, seed)
    return path


# --- Korean speech made with espeak-ng ------------------------------------------------

KOREAN_LINES = [
    "안녕하세요 고객님 무엇을 도와드릴까요",
    "제가 지난달에 주문한 상품이 아직도 도착하지 않았어요",
    "요금이 이중으로 청구된 것 같은데 확인 좀 해주시겠어요",
    "정말 너무하시네요 몇 번을 전화했는지 아세요",
    "담당자 바꿔주세요 지금 당장요",
    "네 알겠습니다 잠시만 기다려 주세요",
]


def espeak_korean(text: str, sample_rate: int = 16000, speed: int = 160):
    """Korean speech for `text` as float32 mono at `sample_rate` (espeak-ng, then resampled)."""
    import subprocess
    import wave

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        wav_path = Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(wav_path), text], check=True, capture_output=True
        )
        with wave.open(str(wav_path), "rb") as wav:
            rate = wav.getframerate()
            assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if rate == sample_rate:
        return pcm
    # Linear interpolation is enough for test speech (espeak-ng writes 22050 Hz).
    n_out = int(round(len(pcm) * sample_rate / rate))
    t_out = np.arange(n_out, dtype=np.float64) * rate / sample_rate
    return np.interp(t_out, np.arange(len(pcm)), pcm).astype(np.float32)


def korean_call(seconds: float, sample_rate: int = 16000, pause_s: tuple[float, float] = (0.4, 1.2), seed: int = 0):
    """A customer's side of a call: Korean utterances with pauses, exactly `seconds` long.

    Returns (audio float32, [(start, end, text), ...] of each utterance)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    speech = [espeak_korean(line, sample_rate) for line in KOREAN_LINES]
    total = int(seconds * sample_rate)
    out = np.zeros(total, dtype=np.float32)
    spans = []
    pos = int(0.3 * sample_rate)
    i = 0
    while pos < total:
        clip = speech[i % len(speech)][: total - pos]
        out[pos : pos + len(clip)] = 0.6 * clip
        spans.append((pos / sample_rate, (pos + len(clip)) / sample_rate, KOREAN_LINES[i % len(KOREAN_LINES)]))
        pos += len(clip) + int(rng.uniform(*pause_s) * sample_rate)
        i += 1
    return out, spans


def tiny_whisper_fixture(tmp_path_factory):
    """Body of a session-scoped fixture: the path of a tiny random Whisper folder.

    In a conftest.py:
        tiny_whisper = pytest.fixture(scope="session")(tiny_models.tiny_whisper_fixture)
    The model is built once per session (a few seconds) under pytest's temp dir; set
    CALLGUARD_TEST_MODEL_CACHE to a folder to keep it between sessions.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    cache = os.environ.get("CALLGUARD_TEST_MODEL_CACHE")
    root = Path(cache) if cache else tmp_path_factory.mktemp("tiny-whisper")
    started = time.monotonic()
    path = cached_whisper_ct2(root, "test", "int8")
    built_s = time.monotonic() - started
    if built_s > 1:
        print(f"[tiny whisper built in {built_s:.1f} s at {path}]")
    return path
