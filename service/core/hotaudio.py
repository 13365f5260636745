"""Finished audio held in memory: the renderings replays and seeks are answered from.

A rendering's MP3 never changes (its blob key and URL carry the render version), so its
bytes can be kept in memory. The library names an article's current rendering here
(`remember`, trusted for a few seconds: then the library is asked again); the HTTP hot path
(`service.http.hotpath`) answers from it without the router, a thread hop or a read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.store import Store

_CURRENT_FOR_S = 5.0  # how long the stable URL is answered without asking the library


def audio_etag(article_id: str, rendering: str) -> str:
    """The ETag of one rendering's audio (the same under the stable and versioned URLs)."""
    return f'"{article_id}.{rendering}"'


class HotAudio:
    """A bounded LRU of rendering MP3s by blob key, filled from the store on demand."""

    def __init__(self, store: Store, *, max_bytes: int) -> None:
        self._store = store
        self._max = max_bytes
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._current: dict[str, tuple[str, float]] = {}

    def remember(self, article_id: str, rendering: str) -> None:
        """The library says: the article's stable URL serves this (current) rendering."""
        if len(self._current) > 100_000:
            self._current.clear()
        self._current[article_id] = (rendering, time.monotonic() + _CURRENT_FOR_S)

    def current(self, article_id: str) -> str | None:
        """The rendering the stable URL serves, if the library named it a moment ago."""
        found = self._current.get(article_id)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def forget_article(self, article_id: str) -> None:
        """The article's audio changes (a new rendering, an eviction): ask the library."""
        self._current.pop(article_id, None)

    def peek(self, key: str) -> bytes | None:
        """The audio if it is in memory (no I/O); refreshes its place in the LRU."""
        data = self._files.get(key)
        if data is not None:
            self._files.move_to_end(key)
            self._store.touch(key)
        return data

    async def get(self, key: str) -> bytes | None:
        """The blob, from memory or the store; None if it is not stored."""
        data = self.peek(key)
        if data is not None:
            return data
        data = await asyncio.to_thread(self._store.read, key)
        if data is None:
            return None
        if len(data) <= self._max // 4:
            self._files[key] = data
            self._size += len(data)
            while self._size > self._max:
                _, old = self._files.popitem(last=False)
                self._size -= len(old)
        await asyncio.to_thread(self._store.touch, key)
        return data

    def forget(self, key: str) -> None:
        """Drop a blob from memory."""
        data = self._files.pop(key, None)
        if data is not None:
            self._size -= len(data)
