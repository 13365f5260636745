"""The newsroom's pronunciations, in three layers: the operator's file (`LANGDU_LEXICON_FILE`,
the base), entries for every article, and entries for one source's articles (each layer
overrides the one before). `Pronunciations` keeps them as the registry has them (read again
when its lexicon revision moves) and says which entries an article is read with: only those
whose written form it holds, so an entry changes the render version of those articles alone.
The editors' side (the API's put, list and delete) is `service.core.lexicon`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from service.store.registry import ArticleRecord, LexiconEntry, Registry
from service.text.lexicon import Lexicon

_MAX_ARTICLES = 20_000  # articles whose lexicon is remembered


class Pronunciations:
    """The lexicon layers as last read, and the entries each article is read with."""

    def __init__(
        self, registry: Registry, base: Mapping[str, str] | None = None, refresh_s: float = 2.0
    ) -> None:
        self._registry = registry
        self._base = dict(base or {})
        self._refresh_s = refresh_s
        self._checked = -1e9
        self._lock = asyncio.Lock()
        self.revision = -1  # the registry's lexicon revision last read (-1: not yet)
        self.entries: list[LexiconEntry] = []
        self._layers: dict[str | None, dict[str, str]] = {}
        self._merged: dict[frozenset[str], Lexicon] = {}
        self._sources: dict[str, frozenset[str]] = {}  # article id -> its sources
        self._articles: dict[str, tuple[int, Lexicon]] = {}

    @property
    def base(self) -> dict[str, str]:
        """The operator's file lexicon."""
        return dict(self._base)

    async def refresh(self, *, force: bool = False) -> None:
        """Read the entries again if the registry's revision moved (looked at most once per
        `refresh_s`, unless forced)."""
        if not force and time.monotonic() - self._checked < self._refresh_s:
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked < self._refresh_s:
                return
            self._checked = time.monotonic()
            revision = await asyncio.to_thread(self._registry.lexicon_revision)
            if revision == self.revision:
                return
            revision, entries = await asyncio.to_thread(self._registry.lexicon_entries)
            self._load(revision, entries)

    def _load(self, revision: int, entries: list[LexiconEntry]) -> None:
        layers: dict[str | None, dict[str, str]] = {}
        for e in entries:
            layers.setdefault(e.source, {})[e.written] = e.spoken
        self.revision, self.entries, self._layers = revision, entries, layers
        self._merged.clear()
        self._articles.clear()

    async def prepare(self, rec: ArticleRecord, *, fresh: bool = False) -> None:
        """Have what `for_article` needs for this article: entries as recent as allowed
        (`fresh`: as the registry has them now) and, when some entries are for a source's
        articles only, the sources this article came from."""
        await self.refresh(force=fresh)
        scoped = any(source is not None for source in self._layers)
        if scoped and (fresh or rec.id not in self._sources):
            found = await asyncio.to_thread(self._registry.sources_of, [rec.id])
            self.note_sources(rec.id, found.get(rec.id, frozenset()))

    def forget(self, article_id: str) -> None:
        """The article was just taken from a source: learn its sources again."""
        self._sources.pop(article_id, None)
        self._articles.pop(article_id, None)

    def note_sources(self, article_id: str, sources: frozenset[str]) -> None:
        """The sources an article was taken from (as the registry says)."""
        if self._sources.get(article_id) != sources:
            self._articles.pop(article_id, None)
        if len(self._sources) > _MAX_ARTICLES:
            self._sources.clear()
        self._sources[article_id] = sources

    def _layered(self, sources: frozenset[str]) -> Lexicon:
        known = self._merged.get(sources)
        if known is None:
            merged = {**self._base, **self._layers.get(None, {})}
            for source in sorted(sources):
                merged.update(self._layers.get(source, {}))
            known = self._merged[sources] = Lexicon(merged)
        return known

    def for_article(self, rec: ArticleRecord) -> Lexicon:
        """The entries `rec` is read with: every layer that applies to it, only the entries
        whose written form its text holds."""
        known = self._articles.get(rec.id)
        if known is not None and known[0] == self.revision:
            return known[1]
        lexicon = self._layered(self._sources.get(rec.id, frozenset()))
        if lexicon:
            lexicon = lexicon.within("\n".join(text for _, text in rec.sentences))
        if len(self._articles) > _MAX_ARTICLES:
            self._articles.clear()
        self._articles[rec.id] = (self.revision, lexicon)
        return lexicon

    def for_text(self) -> Lexicon:
        """The entries for text that is no source's (the base and every-article layers)."""
        return self._layered(frozenset())
