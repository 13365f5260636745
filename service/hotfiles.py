"""Finished article audio served straight from memory: the hot path behind every play and seek.

A finished article's MP3 never changes (its URL is content-addressed), so the bytes can be
held in memory and answered without the router, a thread hop or a file read per request.
This handles GET/HEAD with no range or one byte range, If-None-Match and If-Range; anything
else (multiple ranges, unfinished articles) goes on to the regular route.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from service.store import Store

AUDIO_ROUTE = "/v1/articles/{article_id}/audio.mp3"
_PATH = re.compile(r"^/v1/articles/([0-9a-f]{32})/audio\.mp3$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TOUCH_EVERY = 60.0  # seconds between LRU touches of the file on disk
IMMUTABLE = "public, max-age=31536000, immutable"
_IMMUTABLE = IMMUTABLE.encode()
_EXPOSE = b"Content-Range, Accept-Ranges, ETag, Content-Length"
_READ_METHODS = frozenset({"GET", "HEAD"})


class HotAudio:
    """A bounded LRU of finished MP3 files, by article id."""

    def __init__(self, store: Store, *, max_bytes: int) -> None:
        self._store = store
        self._max = max_bytes
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._touched: dict[str, float] = {}

    def peek(self, article_id: str) -> bytes | None:
        """The audio if it is in memory (no I/O); refreshes its place in the LRU."""
        data = self._files.get(article_id)
        if data is not None:
            self._files.move_to_end(article_id)
            self._touch(article_id)
        return data

    def _touch(self, article_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(article_id, 0.0) > _TOUCH_EVERY:
            self._touched[article_id] = now
            self._store.touch(self._store.article_path(article_id, "mp3"))

    async def get(self, article_id: str) -> bytes | None:
        """The finished audio, from memory or disk; None while it is not finished."""
        data = self._files.get(article_id)
        if data is not None:
            self._files.move_to_end(article_id)
        else:
            if not self._store.has_article(article_id):
                return None
            if self._store.article_path(article_id, "degraded").exists():
                return None  # a fallback reading: not immutable, the regular route serves it
            path = self._store.article_path(article_id, "mp3")
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                return None  # evicted between the check and the read
            if len(data) <= self._max // 4:
                self._files[article_id] = data
                self._size += len(data)
                while self._size > self._max:
                    _, old = self._files.popitem(last=False)
                    self._size -= len(old)
        self._touch(article_id)
        return data

    def forget(self, article_id: str) -> None:
        """Drop an article (its files left the store)."""
        data = self._files.pop(article_id, None)
        if data is not None:
            self._size -= len(data)


def _single_range(value: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) inclusive; None: no usable range (send all); False: unsatisfiable."""
    m = _RANGE.match(value.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            return False
        return start, end
    if not last or int(last) == 0:
        return False
    return max(0, size - int(last)), size - 1


class HotAudioMiddleware:
    """Answer finished-audio requests from `HotAudio`; pass everything else on.

    It sits outside the app, so it counts its own requests and adds its own CORS header.
    """

    def __init__(self, app: ASGIApp, *, hot: Callable[[], HotAudio | None],
                 count: Callable[[str, int], None], cors_origins: Sequence[str]) -> None:
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
        article_id = m.group(1)
        request_headers = dict(scope["headers"])
        range_header = request_headers.get(b"range", b"")
        data = hot.peek(article_id)
        if data is None and b"," not in range_header:
            data = await hot.get(article_id)
        if data is None or b"," in range_header:  # unfinished, or multipart ranges
            await self.app(scope, receive, send)
            return
        status = await self._answer(scope, send, article_id, data, request_headers)
        self._count(scope["method"], status)

    async def _answer(self, scope: Scope, send: Send, article_id: str, data: bytes,
                      request: dict[bytes, bytes]) -> int:
        etag = b'"%s"' % article_id.encode()
        headers = [(b"content-type", b"audio/mpeg"), (b"accept-ranges", b"bytes"),
                   (b"etag", etag), (b"cache-control", _IMMUTABLE)]
        origin = request.get(b"origin")
        if origin and (self._any_origin or origin in self._origins):
            headers.append((b"access-control-allow-origin", b"*" if self._any_origin else origin))
            headers.append((b"access-control-expose-headers", _EXPOSE))
        if etag in request.get(b"if-none-match", b""):
            await _send(send, 304, headers, b"")
            return 304
        range_header = request.get(b"range", b"").decode("latin-1")
        if_range = request.get(b"if-range")
        wanted = _single_range(range_header, len(data)) if range_header and (
            if_range is None or if_range == etag) else None
        if wanted is False:
            problem = (b'{"type":"about:blank","title":"Range not satisfiable","status":416,'
                       b'"detail":"the audio is %d bytes"}' % len(data))
            await _send(send, 416, [(b"content-type", b"application/problem+json"),
                                    (b"content-range", b"bytes */%d" % len(data))], problem)
            return 416
        status, body = 200, memoryview(data)
        if isinstance(wanted, tuple):
            start, end = wanted
            # A view, not a copy: the transport writes straight from the cached bytes.
            status, body = 206, body[start:end + 1]
            headers.append((b"content-range", b"bytes %d-%d/%d" % (start, end, len(data))))
        headers.append((b"content-length", b"%d" % len(body)))
        await _send(send, status, headers, b"" if scope["method"] == "HEAD" else body)
        return status


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                body: bytes | memoryview) -> None:
    if status != 304 and not any(k == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
