"""Speech engines behind one Protocol, and the registry that builds them by name."""

from __future__ import annotations

from service.engines.base import Clip, Engine, Network, SpeechOptions
from service.errors import LangduError

__all__ = ["ENGINE_NAMES", "Clip", "Engine", "Network", "SpeechOptions", "create_engine"]

ENGINE_NAMES = ("espeak", "edge")


def create_engine(name: str, *, workers: int, concurrency: int = 4, timeout_s: float = 20.0,
                  attempts: int = 4, network: Network | None = None) -> Engine:
    """Build the engine called `name`; only its adapter module imports the vendor library.

    `workers` sizes the offline engine's process pool; `concurrency`, `timeout_s`, `attempts`
    and `network` shape the online one.

    Raises:
        LangduError: no engine has that name.
    """
    if name == "espeak":
        from service.engines.espeak import EspeakEngine

        return EspeakEngine(workers=workers)
    if name == "edge":
        from service.engines.edge import EdgeEngine

        return EdgeEngine(concurrency=concurrency, timeout_s=timeout_s, attempts=attempts,
                          network=network)
    raise LangduError(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})")
