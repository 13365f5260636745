"""Finished audio held in memory, and the hot path that answers replays and seeks from it.

A rendering's MP3 never changes (its blob key and URL carry the render version), so its
bytes can be kept in memory and answered without the router, a thread hop or a read per
request. The hot path takes GET/HEAD of a versioned audio URL that is stored, and of an
article's stable audio URL while the library has recently named its current rendering
(`remember`, for a few seconds: then the library is asked again); everything else goes on
to the app. What it answers follows `service.serving`, as the routes do.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from service import serving
from service.store import RENDERING_NAME, audio_key

if TYPE_CHECKING:
    from service.store import Store

AUDIO_ROUTE = "/v1/articles/{article_id}/renders/{rendering}/audio.mp3"
STABLE_ROUTE = "/v1/articles/{article_id}/audio.mp3"
_PATH = re.compile(rf"^/v1/articles/([0-9a-f]{{32}})/(?:renders/({RENDERING_NAME})/)?audio\.mp3$")
_CURRENT_FOR_S = 5.0  # how long the stable URL is answered without asking the library
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


class HotAudioMiddleware:
    """Answer stored versioned-audio requests from `HotAudio`; pass everything else on.

    It sits outside the app, so it counts its own requests and adds its own CORS header.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hot: Callable[[], HotAudio | None],
        count: Callable[[str, str, int], None],
        cors_origins: Sequence[str],
    ) -> None:
        self.app = app
        self._hot = hot
        self._count = count
        self._any_origin = "*" in cors_origins
        self._origins = frozenset(o.encode() for o in cors_origins)
        self._entities: dict[tuple[str, bool], serving.Entity] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = None
        if scope["type"] == "http" and scope["method"] in _READ_METHODS:
            m = _PATH.match(scope["path"])
        hot = self._hot() if m is not None else None
        if m is None or hot is None or not _plain_query(scope.get("query_string", b"")):
            await self.app(scope, receive, send)
            return
        article_id, rendering = m.group(1), m.group(2)
        versioned = rendering is not None
        if rendering is None:
            rendering = hot.current(article_id)
        data = None
        if rendering is not None:
            key = audio_key(article_id, rendering)
            data = hot.peek(key) or await hot.get(key)
        if data is None or rendering is None:  # the app decides (stream, redirect, 404)
            await self.app(scope, receive, send)
            return
        request = serving.Conditions.from_asgi(scope["headers"])
        entity = self._entities.get((key, versioned))
        if entity is None or entity.data is not data:
            if len(self._entities) > 10_000:
                self._entities.clear()
            entity = serving.Entity.of(
                data,
                etag=audio_etag(article_id, rendering),
                cache_control=serving.IMMUTABLE if versioned else serving.REVALIDATE,
            )
            self._entities[(key, versioned)] = entity
        answer = serving.decide(entity, request)
        extra: serving.Headers = ()
        origin = (request.origin or "").encode("latin-1")
        if origin and (self._any_origin or origin in self._origins):
            extra = (
                (b"access-control-allow-origin", b"*" if self._any_origin else origin),
                (b"access-control-expose-headers", _EXPOSE),
            )
        await serving.send(send, scope["method"], answer, data, extra)
        self._count(AUDIO_ROUTE if versioned else STABLE_ROUTE, scope["method"], answer.status)


_LISTENER_QUERY = re.compile(rb"^(?:listener=[A-Za-z0-9_-]{8,64})?$")


def _plain_query(query: bytes) -> bool:
    """No query, or a well-formed `listener=`: anything else is the app's to answer."""
    return bool(_LISTENER_QUERY.match(query))
