"""The editors' side of the lexicon (`/v1/lexicon`): entries put, listed and deleted, and
the articles an edit touches read again in the background. Each sentence that did not
change comes from the part cache, so only the sentences holding the word are spoken again;
listeners keep the old audio until the new one is stored.
"""

from __future__ import annotations

import asyncio
import logging

from service.core.context import Context
from service.core.pronunciations import Pronunciations
from service.core.rendering import Rendering
from service.errors import InputError, NotFoundError
from service.store.registry import LexiconEntry, Priority
from service.text.lexicon import spoken_form, written_form

log = logging.getLogger("langdu.lexicon")
_MAX_ENTRIES = 20_000  # entries in the registry's lexicon
_CLUSTER_PACE_S = 0.25


class LexiconDesk:
    """The editors' side of the lexicon: entries put, listed and deleted through the API."""

    def __init__(self, ctx: Context, rendering: Rendering, pronunciations: Pronunciations) -> None:
        self._ctx = ctx
        self._rendering = rendering
        self._pron = pronunciations
        self.rereading: set[asyncio.Task[int]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def start(self, *, watch_s: float = 2.0) -> None:
        """Watch the operator's file: an edit applies within `watch_s` (plus a reading),
        no restart; the articles it changes are read again in the background."""
        self._watcher = asyncio.create_task(self._watch(watch_s), name="langdu-lexicon-file")

    async def _watch(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                for written in await self._pron.watch_file():
                    await self.reread(written, None)
            except Exception:  # a database hiccup: looked at again next time
                log.exception("watching the lexicon file failed")

    async def entries(self, source: str | None = None) -> list[LexiconEntry]:
        """The registry's entries (for one source only, if given), as it has them now."""
        await self._pron.refresh(force=True)
        return [e for e in self._pron.entries if source is None or e.source == source]

    async def _check_source(self, source: str | None) -> None:
        if (
            source is not None
            and await asyncio.to_thread(self._ctx.registry.source, source) is None
        ):
            raise NotFoundError(f"no source {source}")

    async def put(self, written: str, spoken: str, source: str | None) -> tuple[LexiconEntry, bool]:
        """Say `written` as `spoken` (in `source`'s articles only, if given). Returns the
        entry and whether it is new; the articles it changes are read again.

        Raises:
            InputError: a written or spoken form that cannot be used.
            NotFoundError: no such source.
        """
        try:
            written, spoken = written_form(written), spoken_form(spoken)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        await self._check_source(source)
        if len(self._pron.entries) >= _MAX_ENTRIES:
            raise InputError(f"the lexicon holds {_MAX_ENTRIES} entries already")
        registry = self._ctx.registry
        created = await asyncio.to_thread(registry.put_lexicon, written, spoken, source)
        await self._changed(written, source)
        mine = (e for e in self._pron.entries if e.written == written and e.source == source)
        return next(mine, LexiconEntry(written, spoken, source)), created

    async def delete(self, written: str, source: str | None) -> None:
        """Forget an entry; the articles it changed are read again.

        Raises:
            NotFoundError: no such entry.
        """
        gone = await asyncio.to_thread(self._ctx.registry.delete_lexicon, written, source)
        if not gone:
            where = f" for source {source}" if source else ""
            raise NotFoundError(f"no lexicon entry {written!r}{where}")
        await self._changed(written, source)

    async def _changed(self, written: str, source: str | None) -> None:
        await self._pron.refresh(force=True)
        task = asyncio.create_task(self.reread(written, source))
        self.rereading.add(task)
        task.add_done_callback(self.rereading.discard)

    async def aclose(self) -> None:
        """Stop queueing re-readings (an article not queued is read again when next asked
        for: its stored rendering is not current)."""
        tasks = [*self.rereading, *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pace(self) -> None:
        """One re-reading waits in this process's queue at a time (many articles may hold
        a word: they are read one after another, never ahead of a listener's); on the
        cluster's queue, a few a second."""
        rendering = self._rendering
        if rendering.shared is not None:
            await asyncio.sleep(_CLUSTER_PACE_S)
            return
        while rendering.queue.queued > 0:
            await asyncio.sleep(0.1)

    async def reread(self, written: str, source: str | None) -> int:
        """Queue, in the background and at a bounded pace, a new reading of each article
        with stored audio whose text holds `written` and whose render version moved.
        Returns how many."""
        ctx, rendering = self._ctx, self._rendering
        sources = None if source is None else [source]
        ids = await asyncio.to_thread(ctx.registry.articles_saying, written, sources)
        queued = 0
        for article_id in ids:
            rec = await asyncio.to_thread(ctx.registry.get, article_id)
            if rec is None or rec.rendering is None:
                continue
            await self._pron.prepare(rec)
            if rendering.current(rec) or rendering.outdated:
                continue
            try:
                await rendering.submit(rec, Priority.BACKGROUND)
                queued += 1
            except Exception as exc:  # the next listener has it read again
                log.warning("article %s: not queued after a lexicon change: %s", rec.id, exc)
            await self._pace()
        if queued:
            log.info("lexicon %r: %d article(s) to read again", written, queued)
        return queued
