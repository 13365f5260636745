"""Finished audio held in memory, and the hot path that answers replays and seeks from it.

A rendering's MP3 never changes (its blob key and URL carry the render version), so its
bytes can be kept in memory and answered without the router, a thread hop or a read per
request. The hot path takes GET/HEAD of a versioned audio URL that is stored; everything
else goes on to the app. What it answers follows `service.serving`, as the routes do.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from service import serving
from service.store import audio_key

if TYPE_CHECKING:
    from service.store import Store

AUDIO_ROUTE = "/v1/articles/{article_id}/renders/{rendering}/audio.mp3"
_PATH = re.compile(r"^/v1/articles/([0-9a-f]{32})/renders/([a-z0-9-]{1,80})/audio\.mp3$")
_EXPOSE = b"Content-Range, Accept-Ranges, ETag, Content-Length"
_READ_METHODS = frozenset({"GET", "HEAD"})


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
        data = await asyncio.to_thread(self._store.blobs.get, key)
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


class HotAudioMiddleware:
    """Answer stored versioned-audio requests from `HotAudio`; pass everything else on.

    It sits outside the app, so it counts its own requests and adds its own CORS header.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hot: Callable[[], HotAudio | None],
        count: Callable[[str, int], None],
        cors_origins: Sequence[str],
    ) -> None:
        self.app = app
        self._hot = hot
        self._count = count
        self._any_origin = "*" in cors_origins
        self._origins = frozenset(o.encode() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = None
        if scope["type"] == "http" and scope["method"] in _READ_METHODS:
            m = _PATH.match(scope["path"])
        hot = self._hot() if m is not None else None
        if m is None or hot is None:
            await self.app(scope, receive, send)
            return
        article_id, rendering = m.group(1), m.group(2)
        key = audio_key(article_id, rendering)
        data = hot.peek(key) or await hot.get(key)
        if data is None:  # not stored (evicted, or never made): the route redirects
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        entity = serving.Entity(
            data=data, etag=audio_etag(article_id, rendering), cache_control=serving.IMMUTABLE
        )
        answer = serving.decide(scope["method"], headers, entity)
        extra: tuple[tuple[bytes, bytes], ...] = ()
        origin = headers.get("origin", "").encode("latin-1")
        if origin and (self._any_origin or origin in self._origins):
            extra = (
                (b"access-control-allow-origin", b"*" if self._any_origin else origin),
                (b"access-control-expose-headers", _EXPOSE),
            )
        await serving.send(send, scope["method"], answer, data, extra)
        self._count(scope["method"], answer.status)
