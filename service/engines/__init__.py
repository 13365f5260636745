"""Speech engines behind one Protocol, and the registry that builds them by name."""

from __future__ import annotations

from service.engines.base import Clip, Engine, SpeechOptions
from service.errors import LangduError

__all__ = ["ENGINE_NAMES", "Clip", "Engine", "SpeechOptions", "create_engine"]

ENGINE_NAMES = ("espeak",)


def create_engine(name: str, *, workers: int) -> Engine:
    """Build the engine called `name`; only its adapter module imports the vendor library.

    Raises:
        LangduError: no engine has that name.
    """
    if name == "espeak":
        from service.engines.espeak import EspeakEngine

        return EspeakEngine(workers=workers)
    raise LangduError(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})")
