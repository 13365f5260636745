"""One Kokoro worker process: the front end and the model, loaded once.

Run as `python -m service.engines.kokoro_worker THREADS PARENT_PID` (see
service.engines.workers for the protocol). Request: {"text", "voice", "speed", "gain"}.
Reply: {"ok": true, "rate": 24000, "bytes": n, "words": [[offset, length, start_ms, end_ms],
...]} and n bytes of 16-bit mono PCM.

Word times are the model's own: its duration predictor says how many 25 ms frames each
phoneme lasts (service.engines.kokoro_graph opens the graph there), and a word runs from
its first phoneme's start to its last phoneme's end.
"""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import numpy as np

from service.engines.kokoro_model import SAMPLE_RATE, Model, Speech, offered_voices
from service.engines.kokoro_text import Phonemes, phonemize
from service.engines.worker_loop import answer

_KNEE = 0.5  # above this much of full scale, peaks are bent down smoothly (never clipped)


def word_times(phones: Phonemes, speech: Speech) -> list[list[int]]:
    """[offset, length, start_ms, end_ms] of each spoken word, from the model's durations."""
    to_ms = 1000.0 / SAMPLE_RATE
    spans: dict[int, list[int]] = {}
    for unit in phones.units:
        begin, end = speech.edges[unit.start][0], speech.edges[unit.end - 1][1]
        span = spans.setdefault(unit.word, [begin, end])
        span[0], span[1] = min(span[0], begin), max(span[1], end)
    out = []
    for word, (begin, end) in sorted(spans.items()):
        offset, length = phones.words[word]
        start_ms = round(begin * to_ms)
        out.append([offset, length, start_ms, max(round(end * to_ms), start_ms + 1)])
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
        speech = model.speak(phones.text, voice=str(req["voice"]), speed=float(req["speed"]))
        gain = float(req.get("gain", 1.0))
        return to_pcm(speech.audio, gain), {"words": word_times(phones, speech)}

    answer(stdin, stdout, SAMPLE_RATE, handle)


if __name__ == "__main__":
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    die_with_parent(int(sys.argv[2]))
    name_process("langdu-kokoro")
    yield_cpu()
    serve(sys.stdin.buffer, sys.stdout.buffer, int(sys.argv[1]))
