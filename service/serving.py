"""How finished audio (and episodes) are answered: the one policy for Range, If-Range,
ETag/If-None-Match (304), 416, HEAD, multipart ranges and cache headers.

`decide` is pure (request headers + what is served -> status, headers, body segments);
`send` writes an answer over raw ASGI. The hot in-memory path and the framework routes
both use them, so there is one implementation of this policy.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_SPEC = re.compile(r"^(\d*)-(\d*)$")
_MAX_RANGES = 16  # more than this in one request is not a player: send the whole file


@dataclass(frozen=True, slots=True)
class Entity:
    """What is being served: its bytes and how it may be cached."""

    data: bytes | memoryview
    etag: str  # quoted, e.g. '"<id>.<rendering>"'
    cache_control: str
    media_type: str = "audio/mpeg"


@dataclass(frozen=True, slots=True)
class Answer:
    """A decided response: status, headers, and the body as literal bytes or entity ranges."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: tuple[bytes | tuple[int, int], ...]  # (start, end) = entity bytes [start, end)

    def body_length(self) -> int:
        """The body's length in bytes."""
        return sum(len(b) if isinstance(b, bytes) else b[1] - b[0] for b in self.body)


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
    out: list[tuple[int, int]] = []
    parts = [s.strip() for s in specs.split(",") if s.strip()]
    if not parts or len(parts) > _MAX_RANGES:
        return None
    for spec in parts:
        m = _SPEC.match(spec)
        if m is None or (not m.group(1) and not m.group(2)):
            return None
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            end = min(int(last) + 1, size) if last else size
            if last and int(last) < start:
                return None  # syntactically invalid: ignore the header, as RFC 9110 says
            if start < size:
                out.append((start, end))
        elif int(last) > 0:
            out.append((max(0, size - int(last)), size))
    return out


def decide(method: str, headers: Mapping[str, str], entity: Entity) -> Answer:
    """The answer to a GET or HEAD for `entity`, given the request's (lower-case) headers."""
    size = len(entity.data)
    base = [
        ("content-type", entity.media_type),
        ("accept-ranges", "bytes"),
        ("etag", entity.etag),
        ("cache-control", entity.cache_control),
    ]
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None and (
        if_none_match.strip() == "*"
        or entity.etag in (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    ):
        return Answer(304, tuple(h for h in base if h[0] != "content-type"), ())
    range_header = headers.get("range")
    if_range = headers.get("if-range")
    ranges = None
    if range_header and (if_range is None or if_range.strip() == entity.etag):
        ranges = parse_ranges(range_header, size)
    if ranges is None:
        return Answer(200, (*base, ("content-length", str(size))), ((0, size),))
    if not ranges:
        body = _problem(416, "Range not satisfiable", f"the audio is {size} bytes")
        return Answer(
            416,
            (
                ("content-type", "application/problem+json"),
                ("content-range", f"bytes */{size}"),
                ("content-length", str(len(body))),
            ),
            (body,),
        )
    if len(ranges) == 1:
        start, end = ranges[0]
        return Answer(
            206,
            (
                *base,
                ("content-range", f"bytes {start}-{end - 1}/{size}"),
                ("content-length", str(end - start)),
            ),
            ((start, end),),
        )
    boundary = secrets.token_hex(12)
    segments: list[bytes | tuple[int, int]] = []
    for start, end in ranges:
        segments.append(
            f"--{boundary}\r\nContent-Type: {entity.media_type}\r\n"
            f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n".encode()
        )
        segments.append((start, end))
        segments.append(b"\r\n")
    segments.append(f"--{boundary}--\r\n".encode())
    headers_out = [h for h in base if h[0] != "content-type"]
    headers_out.insert(0, ("content-type", f"multipart/byteranges; boundary={boundary}"))
    answer = Answer(206, tuple(headers_out), tuple(segments))
    return Answer(
        206, (*answer.headers, ("content-length", str(answer.body_length()))), answer.body
    )


async def send(
    send_: Send,
    method: str,
    answer: Answer,
    data: bytes | memoryview,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Write `answer` over ASGI; entity ranges are views of `data`, never copies."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    await send_(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": raw + list(extra_headers),
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
        self._answer = decide(method, headers, entity)
        super().__init__(status_code=self._answer.status)
        self.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in self._answer.headers
        ]

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        answer = Answer(
            self._answer.status,
            tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers),
            self._answer.body,
        )
        await send(send_, self._method, answer, self._entity.data)
