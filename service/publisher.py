"""Publishing: turning a finished, published article into its podcast episode file."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from service.db import READY, Registry
from service.engines.base import Clip
from service.errors import LangduError
from service.podcast import EpisodeTags, make_episode
from service.store import Store

log = logging.getLogger("langdu.publisher")


@dataclass(frozen=True, slots=True)
class EpisodeStyle:
    """What every episode shares: tags, cover, stings, bitrate."""

    artist: str
    album: str
    cover: bytes | None
    intro: Clip | None
    outro: Clip | None
    bitrate_kbps: int


class Publisher:
    """Makes each published article's episode once, in the background, off the event loop."""

    def __init__(self, *, store: Store, registry: Registry, style: EpisodeStyle) -> None:
        self._store = store
        self._registry = registry
        self._style = style
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def ensure(self, article_id: str) -> None:
        """Start making the episode if the article is published, finished and has none."""
        if article_id not in self._tasks:
            task = asyncio.create_task(self._make(article_id), name=f"episode-{article_id}")
            self._tasks[article_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(article_id, None))

    async def wait(self, article_id: str) -> None:
        """Until the article's episode task (if any) has finished."""
        task = self._tasks.get(article_id)
        if task is not None:
            await asyncio.shield(task)

    async def _make(self, article_id: str) -> None:
        rec = await asyncio.to_thread(self._registry.get, article_id)
        if rec is None or not rec.published or rec.status != READY:
            return
        path = self._store.episode_path(article_id)
        if rec.episode_bytes is not None and path.exists():
            return
        audio_path = self._store.article_path(article_id, "mp3")
        try:
            mp3 = await asyncio.to_thread(audio_path.read_bytes)
            date = (rec.published_at or rec.feed_at or rec.created_at)[:10]
            tags = EpisodeTags(title=rec.title or rec.sentences[0][1], artist=self._style.artist,
                               album=self._style.album, date=date, cover=self._style.cover)
            episode = await asyncio.to_thread(
                make_episode, mp3, tags, intro=self._style.intro, outro=self._style.outro,
                bitrate_kbps=self._style.bitrate_kbps)
            await asyncio.to_thread(self._store.write, path, episode.data)
            await asyncio.to_thread(self._registry.set_episode, article_id,
                                    size=len(episode.data), duration_ms=episode.duration_ms)
            log.info("episode %s: %.1f LUFS, %d ms", article_id, episode.loudness_lufs,
                     episode.duration_ms)
        except (LangduError, OSError) as exc:
            log.warning("episode %s failed: %s", article_id, exc)

    async def aclose(self) -> None:
        """Cancel episodes being made (they are made again on the next publish or start)."""
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
