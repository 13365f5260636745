"""One neural-voice worker process: the front end, the acoustic model and the vocoder.

Run as `python -m service.engines.neural_worker MODEL_DIR THREADS PARENT_PID` (see
service.engines.workers for the protocol). Request: {"text", "speed", "pitch"}. Reply:
{"ok": true, "rate": 24000, "bytes": n, "words": [[offset, length, start_ms, end_ms], ...]}
and n bytes of 16-bit mono PCM; `words` are jieba's words of the text (offsets into it)
with the time the model gives each, from its predicted durations.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from service.engines.neural_model import HOP, SAMPLE_RATE, Model
from service.engines.neural_text import FrontEnd, Phones
from service.engines.worker_loop import answer


def word_times(phones: Phones, durations: list[int]) -> list[list[int]]:
    """[offset, length, start_ms, end_ms] of each word that is spoken."""
    starts = np.concatenate([[0], np.cumsum(durations)])
    ms = 1000 * HOP / SAMPLE_RATE
    spans: dict[int, list[int]] = {}
    for unit in phones.units:
        begin, end = int(starts[unit.first]), int(starts[unit.last])
        span = spans.setdefault(unit.word, [begin, end])
        span[0], span[1] = min(span[0], begin), max(span[1], end)
    out = []
    for word, (begin, end) in sorted(spans.items()):
        offset, length = phones.words[word]
        out.append([offset, length, round(begin * ms), round(end * ms)])
    return out


def serve(stdin: BinaryIO, stdout: BinaryIO, model_dir: Path, threads: int) -> None:
    model = Model(model_dir, threads=threads)
    front = FrontEnd(model.symbol_to_id, model.pinyin_dict)
    front.phones("预热")  # load jieba's dictionary before the greeting

    def handle(req: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        phones = front.phones(str(req["text"]))
        if not phones.units:
            raise ValueError("nothing the voice can speak")
        speech = model.speak(
            front.ids(phones), speed=float(req["speed"]), pitch=float(req["pitch"])
        )
        pcm = (np.clip(speech.audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return pcm, {"words": word_times(phones, speech.durations)}

    answer(stdin, stdout, SAMPLE_RATE, handle)


if __name__ == "__main__":
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    die_with_parent(int(sys.argv[3]))
    name_process("langdu-neural")
    yield_cpu()
    serve(sys.stdin.buffer, sys.stdout.buffer, Path(sys.argv[1]), int(sys.argv[2]))
