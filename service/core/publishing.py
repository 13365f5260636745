"""Publishing: articles put in the podcast feed, and their episodes, which follow their audio."""

from __future__ import annotations

import asyncio

from service.core.context import Context
from service.core.rendering import Rendering
from service.core.views import ArticleView, Episode, Stored
from service.errors import NotFoundError
from service.store import episode_key
from service.store.registry import ArticleRecord, Priority


class Publishing:
    """Publishes articles and hands out their episodes."""

    def __init__(self, ctx: Context, rendering: Rendering) -> None:
        self._ctx = ctx
        self._rendering = rendering

    async def publish(self, article_id: str, *, category: str | None) -> ArticleView:
        """Put an article in the podcast feed; its episode follows its audio.

        Raises:
            NotFoundError: no such article.
        """
        ctx = self._ctx
        rec = await ctx.record(article_id)
        await asyncio.to_thread(ctx.registry.publish, rec.id, category=category)
        found = await self._rendering.want_audio(rec, Priority.BACKGROUND)
        if isinstance(found, Stored):
            ctx.episodes.ensure(rec.id)  # the maker reads the published record itself
        elif rec.rendering is not None:
            rec = await ctx.record(article_id)  # its audio was gone: forgotten just now
        return self._rendering.view(rec)

    async def episode(self, article_id: str) -> Episode:
        """A published article's episode file.

        Raises:
            NotFoundError: not published, or its episode is not made yet.
        """
        ctx = self._ctx
        rec = await ctx.record(article_id)
        missing = NotFoundError(f"no episode for {article_id} (not published, or not ready yet)")
        if not rec.published or rec.episode_rendering is None:
            raise missing
        data = await asyncio.to_thread(ctx.store.read, episode_key(rec.id, rec.episode_rendering))
        if data is None:
            ctx.episodes.ensure(rec.id)
            raise missing
        final = (
            rec.degraded is None
            and rec.episode_rendering == rec.rendering
            and self._rendering.current(rec)
        )
        return Episode(data=data, etag=f'"{rec.id}.episode.{rec.episode_rendering}"', final=final)

    async def wait_episode(self, article_id: str) -> None:
        """Until the article's episode work (if any) has finished."""
        await self._ctx.episodes.wait(article_id)

    async def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        """Published articles with an episode, newest first."""
        return await asyncio.to_thread(self._ctx.registry.feed, category=category, limit=limit)
