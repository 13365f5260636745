"""Offline Mandarin engine: libespeak-ng (from the `espeakng-loader` wheel) in worker processes.

libespeak-ng keeps global state and speaks one text at a time, so each worker is a
process of its own (`espeak_worker`): N workers use N cores, the event loop only waits on
pipes, and a crash in the C library costs one restarted worker, not the service.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING

from service.engines.base import Clip, SpeechOptions, parse_pitch, parse_rate
from service.engines.workers import PooledEngine, WorkerPool
from service.errors import OptionError

if TYPE_CHECKING:
    from service.config import Settings

_DEFAULT_WPM = 175
_DEFAULT_PITCH = 50
_MEAN_PITCH_HZ = 120.0  # rough mean F0 of the cmn voice: maps "+10Hz" onto espeak's 0-100
_PRELOAD_VOICE = "cmn"  # every Mandarin preset uses it (variants share its dictionary)
_VOICE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,16})?$")  # cmn, cmn+f3
_ADAPTER_VERSION = 1  # bump when this adapter changes what it asks of espeak-ng


def _library_version() -> str:
    try:
        return package_version("espeakng-loader")
    except PackageNotFoundError:
        return "unknown"


class EspeakEngine(PooledEngine):
    """espeak-ng Mandarin on a fixed number of worker processes."""

    name = "espeak"
    version = f"espeak-{_ADAPTER_VERSION}/espeakng-loader-{_library_version()}"
    sample_rate = 22050
    # espeak itself has no limit; this keeps chunks short enough to spread a long sentence
    # over the workers and to start streaming soon.
    chunk_budget = 600

    def __init__(self, *, workers: int = 2) -> None:
        self._pool = WorkerPool(
            "service.engines.espeak_worker", [_PRELOAD_VOICE], size=workers, label="espeak-ng"
        )

    def check_options(self, options: SpeechOptions) -> None:
        """espeak-ng voice names (cmn, cmn+f3); rate -50%..+200%; pitch within an octave.

        Raises:
            OptionError: any of them is not one espeak-ng can use.
        """
        if not _VOICE.match(options.voice):
            raise OptionError(f"espeak-ng has no voice {options.voice!r} (like cmn or cmn+f3)")
        parse_rate(options.rate)
        parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ)

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk on the next free worker.

        Raises:
            EngineError: espeak-ng failed, or its worker died twice in a row.
            OptionError: the rate or pitch is malformed or out of range.
        """
        wpm = round(_DEFAULT_WPM * parse_rate(options.rate))
        pitch = round(_DEFAULT_PITCH * parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ))
        pitch = max(0, min(100, pitch))
        return await self._pool.speak(
            {"text": text, "voice": options.voice, "wpm": wpm, "pitch": pitch}
        )


def create(settings: Settings) -> EspeakEngine:
    """The engine registry's factory (see `service.engines`)."""
    return EspeakEngine(workers=settings.workers)
