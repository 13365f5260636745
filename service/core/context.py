"""What the parts of the library share: their collaborators, and the two signals that pass
between them (the upgrade schedule changed; articles to read again)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.core.episodes import Episodes
from service.core.hotaudio import HotAudio
from service.core.pipeline import Synthesizer
from service.core.pronunciations import Pronunciations
from service.core.voices import VoiceCatalog
from service.engines import Engine
from service.errors import NotFoundError
from service.runtime.metrics import Metrics
from service.store import Store
from service.store.registry import ArticleRecord, Registry


@dataclass(slots=True)
class Context:
    """One per library; every part holds the same one."""

    registry: Registry
    store: Store
    hot: HotAudio
    catalog: VoiceCatalog
    engines: Mapping[str, Engine]
    synths: Mapping[str, Synthesizer]
    episodes: Episodes
    metrics: Metrics
    pronunciations: Pronunciations  # the lexicon's layers; which entries an article gets
    # Set when a degraded article's upgrade time may have moved (the scheduler looks again).
    schedule_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Articles to read again by upkeep: their rendering was damaged, or found no room.
    rerender: set[str] = field(default_factory=set)

    async def record(self, article_id: str) -> ArticleRecord:
        """The registered article.

        Raises:
            NotFoundError: no such article.
        """
        rec = await asyncio.to_thread(self.registry.get, article_id)
        if rec is None:
            raise NotFoundError(f"no article {article_id}")
        await self.pronunciations.prepare(rec)  # its render version is asked next
        return rec
