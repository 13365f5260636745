"""The hot path: stored audio answered before the web framework is entered.

GET/HEAD of a versioned audio URL that is stored, and of an article's stable audio URL while
the library has recently named its current rendering (`HotAudio.current`), are answered from
memory without the router, a thread hop or a read per request; everything else goes on to the
app. What it answers follows `service.http.serving`, as the routes do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.hotaudio import HotAudio, audio_etag
from service.http import serving
from service.store import RENDERING_NAME, audio_key

AUDIO_ROUTE = "/v1/articles/{article_id}/renders/{rendering}/audio.mp3"
STABLE_ROUTE = "/v1/articles/{article_id}/audio.mp3"
_PATH = re.compile(rf"^/v1/articles/([0-9a-f]{{32}})/(?:renders/({RENDERING_NAME})/)?audio\.mp3$")
_EXPOSE = b"Content-Range, Accept-Ranges, ETag, Content-Length"
_READ_METHODS = frozenset({"GET", "HEAD"})


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
        redirect: bool = False,
    ) -> None:
        self.app = app
        self._redirect = redirect  # versioned URLs are answered with a presigned URL
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
        if versioned and self._redirect:
            await self.app(scope, receive, send)
            return
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
