"""The application layer's one door: the library owns every article's life.

Every transition goes through it: register, queue, start, finish, fail, degrade (fallback
voice), upgrade (back to the asked-for voice, at a persisted time), publish (episodes), evict
and re-render (a new render version). Routes and the CLI translate HTTP and argv into these
calls; the registry records every decision, so a restart reconciles and carries on.

`Library` is a facade: each concern is a part of its own (`intake`, `listening`,
`rendering`, `publishing`, `sources`, `lexicon`, `analytics`, `upkeep`), sharing one
`Context`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from service.core.analytics import Analytics
from service.core.articles import Limits
from service.core.cluster import SharedQueue
from service.core.context import Context
from service.core.episodes import Episodes
from service.core.hotaudio import HotAudio
from service.core.intake import Intake
from service.core.lexicon import LexiconDesk
from service.core.listening import Listening
from service.core.pipeline import Synthesizer
from service.core.pronunciations import Pronunciations
from service.core.publishing import Publishing
from service.core.rendering import Rendering
from service.core.sources import Sources
from service.core.upkeep import Upkeep
from service.core.views import ArticleView, Episode, Live, Speech, Stored, Timings
from service.core.voices import VoiceCatalog
from service.engines import Engine
from service.runtime.fetch import Fetcher
from service.runtime.metrics import Metrics
from service.runtime.parsing import ParsePool
from service.store import Store
from service.store.registry import Registry

__all__ = ["ArticleView", "Episode", "Library", "Live", "Speech", "Stored", "Timings"]


class Library:
    """Owns every article's life; one per process, built by the composition root."""

    def __init__(
        self,
        *,
        registry: Registry,
        store: Store,
        hot: HotAudio,
        catalog: VoiceCatalog,
        default_voice: str,
        engines: Mapping[str, Engine],
        synthesizers: Mapping[str, Synthesizer],
        episodes: Episodes,
        metrics: Metrics,
        fallback_voices: Sequence[str],
        upgrade_after_s: float,
        max_active: int,
        max_queue: int,
        limits: Limits | None = None,
        parse: ParsePool | None = None,
        scrub_every_s: float = 3600.0,
        scrub_bytes: int = 256 * 1024**2,
        shared: SharedQueue | None = None,
        fetcher: Fetcher | None = None,
        source_poll_s: float = 600.0,
        source_max_items: int = 20,
        lexicon: Mapping[str, str] | None = None,
        lexicon_file: Path | None = None,
        max_conversions: int = 4,
        events_keep_days: int = 30,
        events_database: str | None = None,
    ) -> None:
        self.pronunciations = Pronunciations(registry, lexicon, file=lexicon_file)
        ctx = Context(
            registry=registry,
            store=store,
            hot=hot,
            catalog=catalog,
            engines=engines,
            synths=synthesizers,
            episodes=episodes,
            metrics=metrics,
            pronunciations=self.pronunciations,
        )
        self._ctx = ctx
        self._parse = parse or ParsePool(0)
        self.rendering = Rendering(
            ctx,
            fallbacks=tuple(catalog.get(v) for v in fallback_voices),
            upgrade_after_s=upgrade_after_s,
            max_active=max_active,
            max_queue=max_queue,
            shared=shared,
        )
        self.intake = Intake(
            ctx,
            self.rendering,
            default_voice=default_voice,
            limits=limits or Limits(),
            parse=self._parse,
            fetcher=fetcher,
        )
        self.listening = Listening(ctx, self.rendering, self.intake, max_conversions)
        self.sources = Sources(
            ctx,
            self.intake,
            fetcher=fetcher,
            poll_s=source_poll_s,
            max_items=source_max_items,
        )
        self.publishing = Publishing(ctx, self.rendering)
        self.lexicon = LexiconDesk(ctx, self.rendering, self.pronunciations)
        self.analytics = Analytics(ctx, keep_days=events_keep_days, worker_database=events_database)
        self.upkeep = Upkeep(
            ctx, self.rendering, scrub_every_s=scrub_every_s, scrub_bytes=scrub_bytes
        )
        # Which part answers what: the facade's calls are the parts' own methods.
        self.record = ctx.record
        self.register = self.intake.register
        self.register_url = self.intake.register_url
        self.voice = self.intake.voice
        self.render_version = self.rendering.render_version
        self.view = self.rendering.view
        self.evict = self.rendering.evict
        self.listen = self.listening.listen
        self.note_cut = self.listening.note_cut
        self.resume_at = self.listening.resume_at
        self.stored_audio = self.listening.stored_audio
        self.audio_location = self.listening.audio_location
        self.timings = self.listening.timings
        self.wait = self.listening.wait
        self.speak = self.listening.speak
        self.publish = self.publishing.publish
        self.episode = self.publishing.episode
        self.wait_episode = self.publishing.wait_episode
        self.feed = self.publishing.feed
        self.reconcile = self.upkeep.reconcile
        self.blob_damaged = self.upkeep.blob_damaged

    async def make_episode(self, article_id: str) -> None:
        """Make (or bring up to date) the article's podcast episode here, now."""
        self._ctx.episodes.ensure(article_id)
        await self._ctx.episodes.wait(article_id)

    @property
    def parse_pool(self) -> ParsePool:
        """The bounded pool for parsing work (extraction, large request bodies)."""
        return self._parse

    @property
    def queued(self) -> int:
        """Readings waiting for a slot."""
        return self.rendering.queue.queued

    async def start(self, *, sources: bool = True) -> None:
        """Reconcile what a previous process left, then start the background work (the
        feeds' poller too, unless `sources` is False: a worker takes readings from the
        shared queue and leaves the feeds to the replicas, which queue what they find)."""
        await self.upkeep.start()
        self.lexicon.start()
        if sources:
            self.sources.start()
            self.analytics.start()

    async def aclose(self) -> None:
        """Stop scheduling and every job (their work stays recorded in the registry)."""
        await self.sources.aclose()
        await self.analytics.aclose()
        await self.lexicon.aclose()
        await self.upkeep.aclose()
        await self.rendering.queue.aclose()
        await self._ctx.episodes.aclose()
        self._parse.close()
