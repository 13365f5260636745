"""How finished audio (and episodes) are answered: the one policy for Range, If-Range,
ETag/If-None-Match (304), 416, HEAD, multipart ranges and cache headers.

`decide` is pure (the request's conditional and range headers + what is served -> status,
headers, body segments); `send` writes an answer over raw ASGI. The hot in-memory path and
the framework routes both use them, so there is one implementation of this policy. It works
in bytes, as ASGI does: the hot path answers thousands of requests a second with it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_SPEC = re.compile(r"^(\d*)-(\d*)$")
_MAX_RANGES = 16  # more than this in one request is not a player: send the whole file
_WANTED = (b"range", b"if-range", b"if-none-match", b"origin")
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Entity:
    """What is being served: its bytes and how it may be cached (header values as bytes,
    encoded once: the hot path keeps its entities)."""

    data: bytes | memoryview
    etag: bytes  # quoted, e.g. b'"<id>.<rendering>"'
    cache_control: bytes
    media_type: bytes = b"audio/mpeg"

    @classmethod
    def of(
        cls,
        data: bytes | memoryview,
        *,
        etag: str,
        cache_control: str,
        media_type: str = "audio/mpeg",
    ) -> Entity:
        """An entity from text header values."""
        return cls(
            data,
            etag.encode("latin-1"),
            cache_control.encode("latin-1"),
            media_type.encode("latin-1"),
        )


@dataclass(frozen=True, slots=True)
class Conditions:
    """The request headers this policy reads (absent: None)."""

    range: str | None = None
    if_range: str | None = None
    if_none_match: str | None = None
    origin: str | None = None

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> Conditions:
        """From ASGI's (lower-case name, value) pairs, decoding only what is read."""
        found: dict[bytes, str] = {}
        for name, value in raw:
            if name in _WANTED:
                found[name] = value.decode("latin-1")
        if not found:
            return _NONE
        return cls(
            found.get(b"range"),
            found.get(b"if-range"),
            found.get(b"if-none-match"),
            found.get(b"origin"),
        )

    @classmethod
    def from_mapping(cls, headers: Mapping[str, str]) -> Conditions:
        """From a framework's case-insensitive header mapping."""
        return cls(
            headers.get("range"),
            headers.get("if-range"),
            headers.get("if-none-match"),
            headers.get("origin"),
        )


_NONE = Conditions()


@dataclass(frozen=True, slots=True)
class Answer:
    """A decided response: status, headers, and the body as literal bytes or entity ranges."""

    status: int
    headers: Headers
    body: tuple[bytes | tuple[int, int], ...]  # (start, end) = entity bytes [start, end)


def _length(body: Iterable[bytes | tuple[int, int]]) -> int:
    return sum(len(b) if isinstance(b, bytes) else b[1] - b[0] for b in body)


def _problem(status: int, title: str, detail: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()


def parse_ranges(value: str, size: int) -> list[tuple[int, int]] | None:
    """Byte ranges as [start, end) within `size`.

    None: no usable Range header (answer with the whole entity); []: every range lies
    outside the entity (416).
    """
    unit, _, specs = value.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    parts = [s.strip() for s in specs.split(",") if s.strip()]
    if not parts or len(parts) > _MAX_RANGES:
        return None
    out: list[tuple[int, int]] = []
    for spec in parts:
        m = _SPEC.match(spec)
        if m is None or (not m.group(1) and not m.group(2)):
            return None
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            if last and int(last) < start:
                return None  # syntactically invalid: ignore the header, as RFC 9110 says
            end = min(int(last) + 1, size) if last else size
            if start < size:
                out.append((start, end))
        elif int(last) > 0:
            out.append((max(0, size - int(last)), size))
    return out


def _matches(if_none_match: str, etag: str) -> bool:
    """True if `etag` is one of the If-None-Match list (weak or strong), or it is "*"."""
    if if_none_match.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in if_none_match.split(","))


def decide(entity: Entity, request: Conditions) -> Answer:
    """The answer to a GET or HEAD for `entity`."""
    size = len(entity.data)
    etag, cache, media = entity.etag, entity.cache_control, entity.media_type
    text_etag = etag.decode("latin-1") if request.if_none_match or request.if_range else ""
    if request.if_none_match is not None and _matches(request.if_none_match, text_etag):
        return Answer(304, ((b"etag", etag), (b"cache-control", cache)), ())
    ranges = None
    if request.range and (request.if_range is None or request.if_range.strip() == text_etag):
        ranges = parse_ranges(request.range, size)
    base = ((b"accept-ranges", b"bytes"), (b"etag", etag), (b"cache-control", cache))
    if ranges is None:
        return Answer(
            200, ((b"content-type", media), *base, (b"content-length", b"%d" % size)), ((0, size),)
        )
    if not ranges:
        body = _problem(416, "Range not satisfiable", f"the audio is {size} bytes")
        return Answer(
            416,
            (
                (b"content-type", b"application/problem+json"),
                (b"content-range", b"bytes */%d" % size),
                (b"content-length", b"%d" % len(body)),
            ),
            (body,),
        )
    if len(ranges) == 1:
        start, end = ranges[0]
        return Answer(
            206,
            (
                (b"content-type", media),
                *base,
                (b"content-range", b"bytes %d-%d/%d" % (start, end - 1, size)),
                (b"content-length", b"%d" % (end - start)),
            ),
            ((start, end),),
        )
    boundary = secrets.token_hex(12).encode()
    segments: list[bytes | tuple[int, int]] = []
    for start, end in ranges:
        segments.append(
            b"--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
            % (boundary, media, start, end - 1, size)
        )
        segments.append((start, end))
        segments.append(b"\r\n")
    segments.append(b"--%s--\r\n" % boundary)
    kind = b"multipart/byteranges; boundary=" + boundary
    return Answer(
        206,
        ((b"content-type", kind), *base, (b"content-length", b"%d" % _length(segments))),
        tuple(segments),
    )


async def send(
    send_: Send, method: str, answer: Answer, data: bytes | memoryview, extra_headers: Headers = ()
) -> None:
    """Write `answer` over ASGI; entity ranges are views of `data`, never copies."""
    await send_(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [*answer.headers, *extra_headers],
        }
    )
    if method == "HEAD" or not answer.body:
        await send_({"type": "http.response.body", "body": b""})
        return
    view = memoryview(data)
    last = len(answer.body) - 1
    for i, segment in enumerate(answer.body):
        chunk = segment if isinstance(segment, bytes) else view[segment[0] : segment[1]]
        await send_({"type": "http.response.body", "body": chunk, "more_body": i < last})


class EntityResponse(Response):
    """A framework response that answers with the shared policy (for the routes)."""

    def __init__(self, method: str, headers: Mapping[str, str], entity: Entity) -> None:
        self._method = method
        self._entity = entity
        answer = decide(entity, Conditions.from_mapping(headers))
        self._body = answer.body
        super().__init__(status_code=answer.status)
        self.raw_headers = list(answer.headers)

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        # Middleware (CORS) may have added headers to raw_headers: send what is there now.
        answer = Answer(self.status_code, tuple(self.raw_headers), self._body)
        await send(send_, self._method, answer, self._entity.data)


def respond(
    request: Request,
    data: bytes | memoryview,
    *,
    etag: str,
    cache_control: str,
    media_type: str = "audio/mpeg",
) -> EntityResponse:
    """A route's answer with `data`, by this policy."""
    entity = Entity.of(data, etag=etag, cache_control=cache_control, media_type=media_type)
    return EntityResponse(request.method, request.headers, entity)
