"""One Whisper pass straight on CTranslate2: features, a fitted encoder window, greedy or
beam decoding, word alignment, for a batch of clips at once.

Why not faster-whisper's transcribe(): it always pads the log-mel to Whisper's 30 s
window, and the encoder's cost follows the window, not the speech (real base, int8,
2 threads: 3000 frames 548 ms, 1000 frames 72 ms). CTranslate2 4.8's encoder takes
shorter windows, so a pass here encodes the clip plus `pad_s` of padding (Whisper loops
when the window ends right where the speech ends; bench/stt_profile.py measures how much
padding keeps the transcript and word times of the full window). It also re-decodes an
unfinished last segment in a second window; here there is exactly one encode, one
generate and one align per batch, and an unfinished tail is kept (the streaming layer
treats it as provisional anyway) unless the decode ran into its token cap, which is how a
looping hallucination ends.

Batching: clips of different calls go through one encode/generate/align call; their
windows are padded to the longest in the batch (CTranslate2 wants one shape). A batch of
one is the single-call case.

This module knows faster-whisper's objects (WhisperModel, Tokenizer) but not the
streaming layer; times are seconds from the start of each clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moderation.speech import EngineSegment, EngineWord

FRAMES_PER_S = 100  # log-mel frames (hop 160 at 16 kHz)
FULL_WINDOW_FRAMES = 3000
TIME_PRECISION = 0.02  # one timestamp token / encoder position
WHISPER_MAX_LENGTH = 448  # decoder positions
# Window lengths are rounded up to this many frames: batches of slightly different clips
# then share a shape, and the encoder sees few distinct lengths.
WINDOW_STEP_FRAMES = 100


@dataclass(frozen=True)
class PassRequest:
    audio: np.ndarray  # float32 mono 16 kHz
    prompt_tokens: list[int]  # text tokens of the prompt (already cut to fit)
    max_new_tokens: int  # decoding cap for this clip, past the prefix
    # Text already confirmed inside this clip: forced as the decoder's prefix so only the
    # unconfirmed tail is decoded; its words are not returned.
    prefix_tokens: list[int] = field(default_factory=list)


@dataclass
class PassResult:
    segments: list[EngineSegment] = field(default_factory=list)
    tokens: int = 0  # tokens generated
    capped: bool = False  # the decode ran into its cap (no end token)
    dropped_open_tail: bool = False  # an unclosed last segment of a capped decode was left out


@dataclass
class PassTiming:
    """Where a batch's time went (seconds), for the benches and the service's stats."""

    features_s: float = 0.0
    encode_s: float = 0.0
    generate_s: float = 0.0
    align_s: float = 0.0
    window_frames: int = 0
    batch: int = 0


SILENCE_FLOOR = (-10.0 + 4.0) / 4.0  # digital silence in a clip that holds nothing louder


def silence_level(mel: np.ndarray) -> float:
    """The value Whisper's log-mel gives digital silence in this clip's window: the power
    of zeros is clipped at 1e-10 (log10: -10), every bin is floored at the clip's maximum
    less 8, and x maps to (x + 4) / 4; so silence sits at the normalised maximum less 2,
    or at -1.5 in a clip that is itself near silent. A window padded with 0 instead is
    padded with steady noise about 45 dB over that floor on speech, not with the silence
    Whisper was trained to see after it."""
    return max(SILENCE_FLOOR, float(mel.max()) - 2.0) if mel.size else SILENCE_FLOOR


def window_frames(content_frames: int, pad_s: float, full: bool = False) -> int:
    """Encoder window for a clip of `content_frames`: the clip plus pad_s, rounded up to
    WINDOW_STEP_FRAMES, at most Whisper's 30 s window."""
    if full:
        return FULL_WINDOW_FRAMES
    want = content_frames + int(math.ceil(pad_s * FRAMES_PER_S))
    want = int(math.ceil(want / WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES)
    return max(WINDOW_STEP_FRAMES, min(FULL_WINDOW_FRAMES, want))


class WhisperPass:
    """Runs batched passes on a loaded faster_whisper.WhisperModel.

    Thread-safe as far as CTranslate2 is (several threads may call run(); they share the
    model's inter_threads)."""

    def __init__(
        self,
        model: Any,
        language: str,
        *,
        beam_size: int = 1,
        pad_s: float = 2.0,
        full_window: bool = False,
        word_timestamps: bool = True,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.beam_size = beam_size
        self.pad_s = pad_s
        self.full_window = full_window
        self.word_timestamps = word_timestamps
        self.repetition_penalty = repetition_penalty
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language or None
        )
        self.suppress = _suppress_tokens(self.tokenizer)

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode(" " + text.strip()) if text.strip() else []

    def decoder_prompt(self, prompt_tokens: list[int], prefix_tokens: list[int] | None = None) -> list[int]:
        prompt = [self.tokenizer.sot_prev] + prompt_tokens if prompt_tokens else []
        prompt += list(self.tokenizer.sot_sequence)
        if prefix_tokens:
            prompt += [self.tokenizer.timestamp_begin] + list(prefix_tokens)
        return prompt

    @staticmethod
    def max_length(start_len: int, returned: int) -> int:
        """CTranslate2's max_length that lets a decode return `returned` tokens (prefix
        included) after `start_len` start tokens: it returns at most
        min(max_length // 2, max_length - start_len) (measured, 4.8)."""
        return min(WHISPER_MAX_LENGTH, max(2 * returned, start_len + returned))

    def run(self, requests: list[PassRequest], timing: PassTiming | None = None) -> list[PassResult]:
        import time

        import ctranslate2

        timing = timing if timing is not None else PassTiming()
        if not requests:
            return []
        t0 = time.perf_counter()
        mels = [self._features(r.audio) for r in requests]
        content = [m.shape[-1] for m in mels]
        frames = max(window_frames(c, self.pad_s, self.full_window) for c in content)
        batch = np.empty((len(mels), mels[0].shape[0], frames), dtype=np.float32)
        for i, m in enumerate(mels):
            n = min(frames, m.shape[-1])
            batch[i, :, :n] = m[:, :n]
            batch[i, :, n:] = silence_level(m)
        t1 = time.perf_counter()
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(batch), to_cpu=False)
        t2 = time.perf_counter()
        prompts = [self.decoder_prompt(r.prompt_tokens, r.prefix_tokens) for r in requests]
        lead = [1 + len(r.prefix_tokens) if r.prefix_tokens else 0 for r in requests]
        wants = [min(WHISPER_MAX_LENGTH // 2, k + r.max_new_tokens) for k, r in zip(lead, requests)]
        max_length = max(self.max_length(len(p) - k, w) for p, k, w in zip(prompts, lead, wants))
        generated = self.model.model.generate(
            encoded,
            prompts,
            beam_size=self.beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppress,
            max_initial_timestamp_index=50,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
        )
        t3 = time.perf_counter()
        results = []
        texts: list[list[int]] = []
        piece_lens: list[list[int]] = []
        skip_words: list[int] = []  # text tokens of each clip's forced prefix
        for req, gen, want, n in zip(requests, generated, wants, content):
            tokens = list(gen.sequences_ids[0])
            # A batch decodes to the longest cap; hold each clip to its own.
            capped = len(tokens) >= want and (not tokens or tokens[-1] != self.tokenizer.eot)
            tokens = tokens[:want]
            avg_logprob = _avg_logprob(gen.scores[0], len(tokens)) if gen.scores else 0.0
            pieces, open_tail = self._split(tokens, n / FRAMES_PER_S)
            result = PassResult(tokens=len(tokens), capped=capped)
            if capped and open_tail and pieces:
                # A decode that never ended usually loops; its unclosed tail is not speech.
                pieces = pieces[:-1]
                result.dropped_open_tail = True
            n_prefix = len(req.prefix_tokens)
            result.segments = []
            seen = 0
            for s, e, toks in pieces:
                own = toks[max(0, n_prefix - seen) :]  # the part past the forced prefix
                seen += len(toks)
                result.segments.append(
                    EngineSegment(
                        words=[],
                        start=s,
                        end=e,
                        no_speech_prob=float(gen.no_speech_prob),
                        avg_logprob=avg_logprob,
                        text=self.tokenizer.decode(own).strip(),
                    )
                )
            results.append(result)
            texts.append([t for _, _, toks in pieces for t in toks])
            piece_lens.append([len(toks) for _, _, toks in pieces])
            skip_words.append(len(req.prefix_tokens))
        if self.word_timestamps:
            self._align(encoded, texts, piece_lens, skip_words, content, results)
        t4 = time.perf_counter()
        timing.features_s += t1 - t0
        timing.encode_s += t2 - t1
        timing.generate_s += t3 - t2
        timing.align_s += t4 - t3
        timing.window_frames = frames
        timing.batch = len(requests)
        return results

    # --- pieces ------------------------------------------------------------------------

    def _features(self, audio: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        mel = self.model.feature_extractor(samples)  # (n_mels, frames + 1)
        return mel[:, :-1] if mel.shape[-1] > 1 else mel

    def _split(self, tokens: list[int], duration: float) -> tuple[list[tuple[float, float, list[int]]], bool]:
        """Timestamped pieces (start, end, text tokens) and whether the last is unclosed.

        Whisper writes <|t0|> text <|t1|><|t1'|> text <|t2|> ...; a piece runs from one
        timestamp to the next that follows text."""
        begin = self.tokenizer.timestamp_begin
        eot = self.tokenizer.eot
        pieces: list[tuple[float, float, list[int]]] = []
        start: float | None = None
        text: list[int] = []
        for tok in tokens:
            if tok == eot:
                break
            if tok >= begin:
                t = (tok - begin) * TIME_PRECISION
                if text:
                    pieces.append((start if start is not None else 0.0, t, text))
                    text = []
                start = t
            else:
                text.append(tok)
        open_tail = bool(text)
        if text:
            pieces.append((start if start is not None else 0.0, duration, text))
        out = []
        for s, e, toks in pieces:
            s = min(max(s, 0.0), duration)
            out.append((s, min(max(e, s), duration), toks))
        return out, open_tail

    def _align(
        self,
        encoded: Any,
        texts: list[list[int]],
        piece_lens: list[list[int]],
        skip: list[int],
        content: list[int],
        results: list[PassResult],
    ) -> None:
        """Word times from the alignment heads' cross-attention, one align call for the batch."""
        if not any(texts):
            return
        # align wants an entry per batch item; a clip without text gets a one-token stand-in.
        stand_in = [t if t else [self.tokenizer.eot] for t in texts]
        aligned = self.model.model.align(
            encoded, list(self.tokenizer.sot_sequence), stand_in, content, median_filter_width=7
        )
        for i, al in enumerate(aligned):
            if texts[i]:
                words = self._words(texts[i], al, content[i] / FRAMES_PER_S)
                self._attach(results[i], words, piece_lens[i], skip[i])

    def _words(self, text: list[int], alignment: Any, duration: float) -> list[tuple[EngineWord, int]]:
        """(word, index of its first token) for a clip's text tokens."""
        words, word_tokens = self.tokenizer.split_to_word_tokens(text + [self.tokenizer.eot])
        if len(word_tokens) <= 1:
            return []
        pairs = alignment.alignments
        text_idx = np.array([p[0] for p in pairs])
        time_idx = np.array([p[1] for p in pairs])
        if text_idx.size == 0:
            return []
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_times = time_idx[jumps] * TIME_PRECISION
        probs = np.asarray(alignment.text_token_probs, dtype=np.float64)
        bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        out = []
        for k, (word, _toks) in enumerate(zip(words[:-1], word_tokens[:-1])):
            a, b = int(bounds[k]), int(bounds[k + 1])
            if a >= len(jump_times):
                break
            start = float(jump_times[a])
            end = float(jump_times[min(b, len(jump_times) - 1)])
            p = float(np.mean(probs[a:b])) if b > a and probs.size >= b else 0.0
            item = EngineWord(text=word, start=min(start, duration), end=min(max(end, start), duration), probability=p)
            # Punctuation stays a "word" of its own (the transcriber drops words with no
            # text). Merging it into the word before changed the streaming transcript for
            # the worse on the English bench (CER vs offline 0.13 -> 0.20..0.26), not tracked down.
            out.append((item, a))
        return out

    @staticmethod
    def _attach(result: PassResult, words: list[tuple[EngineWord, int]], piece_lens: list[int], skip: int) -> None:
        """Give each segment the words whose first token lies in it; words starting in
        the forced prefix (the first `skip` text tokens) are left out."""
        if not result.segments:
            return
        bounds = list(np.cumsum([0] + piece_lens[: len(result.segments)])[:-1])
        segs: list[list[EngineWord]] = [[] for _ in result.segments]
        for word, first in words:
            k = max(j for j, b in enumerate(bounds) if b <= first)
            if skip <= first < sum(piece_lens[: len(result.segments)]):
                segs[k].append(word)
        result.segments = [
            EngineSegment(
                words=ws,
                start=s.start,
                end=s.end,
                no_speech_prob=s.no_speech_prob,
                avg_logprob=s.avg_logprob,
                text=s.text,
            )
            for s, ws in zip(result.segments, segs)
            if s.text or ws
        ]


def _avg_logprob(score: float, n_tokens: int) -> float:
    # CTranslate2 returns the cumulated log-prob divided by length (length_penalty 1);
    # faster-whisper's avg_logprob divides the cumulated one by length + 1.
    return float(score) * n_tokens / (n_tokens + 1) if n_tokens else float(score)


def _suppress_tokens(tokenizer: Any) -> list[int]:
    """-1 (the model's default set) plus Whisper's non-speech symbols, as faster-whisper's
    default suppress_tokens=[-1] expands it."""
    base = {-1, *tokenizer.non_speech_tokens}
    base.update([tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm])
    return sorted(base)
