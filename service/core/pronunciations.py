"""The newsroom's pronunciations, in three layers: the operator's file (`LANGDU_LEXICON_FILE`,
the base), entries for every article, and entries for one source's articles (each layer
overrides the one before). `Pronunciations` keeps them as the registry has them (read again
when its lexicon revision moves) and says which entries an article is read with: only those
whose written form it holds, so an entry changes the render version of those articles alone.
The editors' side (the API's put, list and delete) is `service.core.lexicon`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from service.errors import ConfigError
from service.store.registry import ArticleRecord, LexiconEntry, Registry
from service.text.lexicon import Lexicon
from service.text.normalize import load_lexicon

log = logging.getLogger("langdu.lexicon")

_MAX_ARTICLES = 20_000  # articles whose lexicon is remembered


class Pronunciations:
    """The lexicon layers as last read, and the entries each article is read with."""

    def __init__(
        self,
        registry: Registry,
        base: Mapping[str, str] | None = None,
        refresh_s: float = 2.0,
        *,
        file: Path | None = None,
    ) -> None:
        self._registry = registry
        self._base = dict(base or {})
        self._file = file  # the operator's file, watched (`watch_file`)
        self._file_seen = _stat(file)
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

    async def watch_file(self) -> list[str]:
        """Read the operator's file again if it changed since last looked at; returns the
        written forms whose entry changed, came or went (none if the new file is unusable:
        the old entries stay, and the problem is logged once)."""
        if self._file is None:
            return []
        seen = await asyncio.to_thread(_stat, self._file)
        if seen == self._file_seen:
            return []
        self._file_seen = seen
        try:
            base = await asyncio.to_thread(load_lexicon, self._file)
        except ConfigError as exc:
            log.warning("the lexicon file is kept as it was: %s", exc)
            return []
        old, self._base = self._base, base
        changed = sorted(w for w in {*old, *base} if old.get(w) != base.get(w))
        if changed:
            log.info(
                "lexicon file: %d entr%s changed", len(changed), "y" if len(changed) == 1 else "ies"
            )
            self._forget_derived()
        return changed

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
        self._forget_derived()

    def _forget_derived(self) -> None:
        """The layers changed: merged lexicons and articles' entries are worked out again."""
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


def _stat(path: Path | None) -> tuple[int, int, int] | None:
    """What tells a file's new content from its old (None: no file there)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
