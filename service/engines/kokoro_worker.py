"""One Kokoro worker process: the front end and the model, loaded once.

Run as `python -m service.engines.kokoro_worker THREADS PARENT_PID` (see
service.engines.workers for the protocol). Request: {"text", "voice", "speed", "gain"}.
Reply: {"ok": true, "rate": 24000, "bytes": n, "words": [[offset, length, start_ms, end_ms],
...]} and n bytes of 16-bit mono PCM.

The exported model returns audio only, not its predicted durations, so word times are an
estimate: the voiced span of the clip (from the first to the last sample above the noise
floor) is shared among the phonemes in proportion to a weight per symbol (a phoneme 1, a
tone mark or a space nothing, a comma or a full stop a pause's worth), and each word runs
from its first phoneme to its last.
"""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import numpy as np

from service.engines.kokoro_model import SAMPLE_RATE, Model, offered_voices
from service.engines.kokoro_text import Phonemes, phonemize
from service.engines.worker_loop import answer

_KNEE = 0.5  # above this much of full scale, peaks are bent down smoothly (never clipped)
_FLOOR = 0.02  # below this much of the clip's peak is silence, for the timing estimate
_PAUSE_WEIGHT = {",": 3.0, ";": 3.0, ":": 3.0, ".": 5.0, "!": 5.0, "?": 5.0, "…": 5.0, "—": 3.0}
_SILENT = frozenset(" →↓↗↘“”()")


def _weights(phonemes: str) -> np.ndarray:
    return np.array(
        [_PAUSE_WEIGHT.get(c, 0.0 if c in _SILENT else 1.0) for c in phonemes], dtype=np.float64
    )


def word_times(phones: Phonemes, audio: np.ndarray) -> list[list[int]]:
    """[offset, length, start_ms, end_ms] of each spoken word (an estimate: see above)."""
    if not phones.units or not len(audio):
        return []
    loud = np.flatnonzero(np.abs(audio) > _FLOOR * max(float(np.abs(audio).max()), 1e-9))
    first, last = (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, len(audio))
    weights = _weights(phones.text)
    total = float(weights.sum()) or 1.0
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / total  # share of the span before i
    to_ms = 1000.0 / SAMPLE_RATE

    def at(index: int) -> int:
        return round(float(first + edges[index] * (last - first)) * to_ms)

    spans: dict[int, list[int]] = {}
    for unit in phones.units:
        begin, end = at(unit.start), at(unit.end)
        span = spans.setdefault(unit.word, [begin, end])
        span[0], span[1] = min(span[0], begin), max(span[1], end)
    out = []
    for word, (begin, end) in sorted(spans.items()):
        offset, length = phones.words[word]
        out.append([offset, length, begin, max(end, begin + 1)])
    return out


def to_pcm(audio: np.ndarray, gain: float) -> bytes:
    """16-bit PCM: the preset's gain, then a soft limiter that bends peaks above the knee
    towards full scale without reaching it. Some voice packs have sharp peaks that would
    otherwise cap how loud a sentence can be made (langdu evens out each sentence's mean
    level within a peak limit), so with the gain they are as loud as the other voices."""
    scaled = audio.astype(np.float64) * gain
    over = np.abs(scaled) > _KNEE
    bent = _KNEE + (1 - _KNEE) * np.tanh((np.abs(scaled[over]) - _KNEE) / (1 - _KNEE))
    scaled[over] = np.sign(scaled[over]) * bent
    return (scaled * 32767).astype("<i2").tobytes()


def serve(stdin: BinaryIO, stdout: BinaryIO, threads: int) -> None:
    model = Model(threads=threads)
    # Load jieba and misaki's table, and run the model once, before the greeting: the
    # first request is then as fast as any other.
    warm = phonemize("预热。")
    model.speak(warm.text, voice=offered_voices()[0], speed=1.0)

    def handle(req: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        phones = phonemize(str(req["text"]))
        if not phones.units:
            raise ValueError("nothing the voice can speak")
        audio = model.speak(phones.text, voice=str(req["voice"]), speed=float(req["speed"]))
        return to_pcm(audio, float(req.get("gain", 1.0))), {"words": word_times(phones, audio)}

    answer(stdin, stdout, SAMPLE_RATE, handle)


if __name__ == "__main__":
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    die_with_parent(int(sys.argv[2]))
    name_process("langdu-kokoro")
    yield_cpu()
    serve(sys.stdin.buffer, sys.stdout.buffer, int(sys.argv[1]))
