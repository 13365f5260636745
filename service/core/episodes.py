"""Podcast episodes: a published article's finished rendering, loudness-normalized and tagged."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from service.audio.clip import Clip
from service.audio.episode import EpisodeTags, make_episode
from service.errors import LangduError
from service.store import Store, audio_key
from service.store.registry import Registry, Status

log = logging.getLogger("langdu.episodes")


@dataclass(frozen=True, slots=True)
class EpisodeStyle:
    """What every episode shares: tags, cover, stings, bitrate."""

    artist: str
    album: str
    cover: bytes | None
    intro: Clip | None
    outro: Clip | None
    bitrate_kbps: int


class Episodes:
    """Makes the episode of each published article from its current rendering, in the
    background, off the event loop; one maker per article at a time.

    Decoding, loudness and encoding hold the interpreter lock for hundreds of milliseconds
    for a long article: given `executor` (the text front-end's worker processes), they run
    there and not in a thread of the server's process. Given `delegate` (a replica of the
    cluster), episodes are asked of the workers instead of made here.
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        style: EpisodeStyle,
        executor: Executor | None = None,
        delegate: Callable[[str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._store = store
        self.delegate = delegate
        self._registry = registry
        self._style = style
        self._executor = executor
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def ensure(self, article_id: str) -> None:
        """Make the episode if the article is published and its episode is missing or was
        made from another rendering (a fallback reading, an older render version)."""
        if article_id in self._tasks:
            self._again.add(article_id)  # the audio may have changed since it started
            return
        make = self._make if self.delegate is None else self.delegate
        task: asyncio.Task[None] = asyncio.create_task(
            make(article_id), name=f"episode-{article_id}"
        )
        self._tasks[article_id] = task
        task.add_done_callback(lambda _: self._done(article_id))

    def _done(self, article_id: str) -> None:
        self._tasks.pop(article_id, None)
        if article_id in self._again:
            self._again.discard(article_id)
            self.ensure(article_id)

    async def wait(self, article_id: str) -> None:
        """Until the article's episode work (if any) has finished."""
        while (task := self._tasks.get(article_id)) is not None:
            if task.done():  # finished; its done-callback (which may start another) is due
                await asyncio.sleep(0)
                continue
            await asyncio.shield(task)

    async def _make(self, article_id: str) -> None:
        rec = await asyncio.to_thread(self._registry.get, article_id)
        if rec is None or not rec.published or rec.status != Status.READY:
            return
        rendering = rec.rendering
        if rendering is None or rec.episode_rendering == rendering:
            return
        try:
            mp3 = await asyncio.to_thread(self._store.read, audio_key(article_id, rendering))
            if mp3 is None:
                return  # evicted meanwhile: the next reading brings the episode with it
            when = rec.published_at or rec.feed_at or rec.created_at
            tags = EpisodeTags(
                title=rec.title or rec.sentences[0][1],
                artist=self._style.artist,
                album=self._style.album,
                date=when.date().isoformat(),
                cover=self._style.cover,
            )
            make = functools.partial(
                make_episode,
                mp3,
                tags,
                intro=self._style.intro,
                outro=self._style.outro,
                bitrate_kbps=self._style.bitrate_kbps,
            )
            episode = await asyncio.get_running_loop().run_in_executor(self._executor, make)
            await asyncio.to_thread(self._store.put_episode, article_id, rendering, episode.data)
            await asyncio.to_thread(
                self._registry.set_episode,
                article_id,
                rendering=rendering,
                size=len(episode.data),
                duration_ms=episode.duration_ms,
            )
            if rec.episode_rendering is not None:
                await asyncio.to_thread(
                    self._store.delete_episode, article_id, rec.episode_rendering
                )
            log.info(
                "episode %s: %.1f LUFS, %d ms",
                article_id,
                episode.loudness_lufs,
                episode.duration_ms,
            )
        except (LangduError, OSError) as exc:
            log.warning("episode %s failed: %s", article_id, exc)

    async def aclose(self) -> None:
        """Cancel episodes being made (start-up reconciliation makes them again)."""
        self._again.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
