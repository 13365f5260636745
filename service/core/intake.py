"""Intake: an article comes in, is admitted (or refused before any work), parsed on the
parsing pool, registered under its id, and its reading started unless its audio is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from datetime import datetime
from typing import TypedDict, Unpack

from service.core.articles import Limits, build_record
from service.core.context import Context
from service.core.rendering import Rendering
from service.core.views import ArticleView, Live
from service.core.voices import Voice
from service.errors import FetchRefusedError
from service.runtime.fetch import Fetcher
from service.runtime.parsing import ParsePool
from service.store.registry import ArticleRecord, Priority
from service.text.extract import Article, canonical_url, decode

_MAX_SOURCES = 20_000


def _source_key(*parts: object) -> str:
    """What a post asked for, hashed: the same post names the same article."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Article):
            part = json.dumps([part.title, [(p.text, p.heading) for p in part.paragraphs]])
        digest.update(
            b"\x01" if part is None else b"s" + str(part).encode("utf-8", "surrogatepass")
        )
        digest.update(b"\x00")
    return digest.hexdigest()


class HowToRead(TypedDict, total=False):
    """How an article is read and published, beside its content (`Intake.register`'s)."""

    voice: str | None
    rate: str | None
    pitch: str | None
    published_at: datetime | None
    publish: bool
    category: str | None
    client: str
    priority: Priority
    item: tuple[str, str] | None  # a feed item: (source id, its key), recorded before reading


class Intake:
    """Registers articles; remembers recent posts by what they asked for."""

    def __init__(
        self,
        ctx: Context,
        rendering: Rendering,
        *,
        default_voice: str,
        limits: Limits,
        parse: ParsePool,
        fetcher: Fetcher | None = None,
    ) -> None:
        self._ctx = ctx
        self._fetcher = fetcher
        self._rendering = rendering
        self._default_voice = ctx.catalog.get(default_voice)
        self._limits = limits
        self._parse = parse
        self._sources: OrderedDict[str, str] = OrderedDict()  # source key -> article id

    def voice(self, voice_id: str | None) -> Voice:
        """A voice preset (the default one for None).

        Raises:
            UnknownVoiceError: no such preset.
        """
        return self._default_voice if voice_id is None else self._ctx.catalog.get(voice_id)

    async def register_url(self, url: str, **how: Unpack[HowToRead]) -> tuple[ArticleView, bool]:
        """Fetch the page at `url` (service.runtime.fetch's rules) and register it as if its
        HTML had been posted (`how`: as `register` takes them), under its canonical URL (the
        page's rel=canonical link, else where its redirects ended).

        Raises:
            FetchRefusedError: the URL or what it answered is refused. FetchFailedError: the
            site failed. And what `register` raises.
        """
        if self._fetcher is None:
            raise FetchRefusedError("fetching pages by URL is turned off here (LANGDU_FETCH_PAGES)")
        self.voice(how.get("voice"))  # an unknown voice is refused before anything is fetched
        page = await self._fetcher.fetch(url)
        html = await asyncio.to_thread(decode, page.body, charset=page.charset)
        return await self.register(html=html, url=canonical_url(html, page.url) or page.url, **how)

    async def register(
        self,
        *,
        voice: str | None = None,
        text: str | None = None,
        html: str | None = None,
        article: Article | None = None,
        title: str | None = None,
        url: str | None = None,
        rate: str | None = None,
        pitch: str | None = None,
        published_at: datetime | None = None,
        publish: bool = False,
        category: str | None = None,
        client: str = "",
        priority: Priority = Priority.LISTENER,
        item: tuple[str, str] | None = None,
    ) -> tuple[ArticleView, bool]:
        """Register an article (same content, voice, rate, pitch: same id) and start
        reading it unless its audio is stored. Returns (view, created). A feed's `item`
        is recorded with the article's id first: the reading knows its source (its lexicon).

        Raises:
            InputError: nothing to read. UnknownVoiceError / OptionError: bad voice options.
            QueueFullError / ClientBusyError: a new article, and too many articles (or too
            many of this client's) wait already; nothing is stored. A known article whose
            audio must be made again is registered, then refused.
        """
        ctx = self._ctx
        chosen = self.voice(voice)
        ctx.engines[chosen.engine].check_options(chosen.options(rate=rate, pitch=pitch))
        # A page posted before (every reader's player posts it) is known by its source:
        # no extraction, and no admission check unless it must be read again.
        source = _source_key(chosen.id, text, html, article, title, url, rate, pitch)
        known = self._sources.get(source)
        if known is not None:
            rec = await asyncio.to_thread(ctx.registry.get, known)
            if rec is not None:
                self._sources.move_to_end(source)
                await self._item(item, rec.id)
                return await self._registered(rec, False, client, publish, category, priority)
        # Refuse before doing the work: a new article the queue cannot take is not even
        # extracted, and nothing of it is stored.
        if priority == Priority.LISTENER:  # background work (a feed's items) waits its turn
            await self._rendering.admit(client)
        record = await self._parse.run(
            build_record,
            voice=chosen,
            limits=self._limits,
            text=text,
            html=html,
            article=article,
            title=title,
            url=url,
            rate=rate,
            pitch=pitch,
            published_at=published_at,
        )
        stored, created = await asyncio.to_thread(ctx.registry.add, record)
        await self._item(item, stored.id)
        self._sources[source] = stored.id
        while len(self._sources) > _MAX_SOURCES:
            self._sources.popitem(last=False)
        return await self._registered(stored, created, client, publish, category, priority)

    async def _item(self, item: tuple[str, str] | None, article_id: str) -> None:
        if item is not None:
            await asyncio.to_thread(self._ctx.registry.add_item, item[0], item[1], article_id)
            self._ctx.pronunciations.forget(article_id)

    async def _registered(
        self,
        stored: ArticleRecord,
        created: bool,
        client: str,
        publish: bool,
        category: str | None,
        priority: Priority,
    ) -> tuple[ArticleView, bool]:
        ctx = self._ctx
        ctx.metrics.cache.labels("article", "miss" if created else "hit").inc()
        if publish:
            await asyncio.to_thread(ctx.registry.publish, stored.id, category=category)
        found = await self._rendering.want_audio(stored, priority, client)
        if publish:
            ctx.episodes.ensure(stored.id)
        if isinstance(found, Live) and stored.rendering is not None:
            stored = await ctx.record(stored.id)  # its audio was gone: forgotten just now
        return self._rendering.view(stored), created
