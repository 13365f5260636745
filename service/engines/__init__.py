"""Speech engines behind one Protocol, and the registry that builds them by name.

An engine called NAME is the module `service/engines/NAME.py` with a factory
`create(settings) -> Engine`; only that module imports its vendor library. Adding an engine
is that one module plus the voice presets (voices/*.toml) that name it.

Engines may import `audio` (clips, MP3 decoding), `text`, `runtime` (worker processes),
`config` and `errors`; `store`, `core` and `http` build on them, never the reverse.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from service.engines.base import Clip, Engine, Network, SpeechOptions
from service.errors import VoiceCatalogError

if TYPE_CHECKING:
    from service.config import Settings

__all__ = ["Clip", "Engine", "EngineFactory", "Network", "SpeechOptions", "engine_factory"]

EngineFactory = Callable[["Settings"], Engine]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_NOT_ENGINES = frozenset({"base", "espeak_worker"})


def engine_factory(name: str, extra: Mapping[str, EngineFactory] | None = None) -> EngineFactory:
    """The factory of the engine called `name` (`extra` first: engines a caller brings).

    Raises:
        VoiceCatalogError: no engine has that name.
    """
    if extra and name in extra:
        return extra[name]
    if _NAME.match(name) and name not in _NOT_ENGINES:
        try:
            module = importlib.import_module(f"service.engines.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"service.engines.{name}":
                raise
        else:
            factory = getattr(module, "create", None)
            if callable(factory):
                return factory  # type: ignore[no-any-return]
    known = sorted({*(extra or {}), "edge", "espeak"})
    raise VoiceCatalogError(f"unknown engine {name!r} (known: {', '.join(known)})")
