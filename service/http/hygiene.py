"""Input hygiene: strict JSON bodies, text without control characters, http(s) URLs only.

Everything a client sends passes through here before any route sees it, so no odd input
can become a 500, a reset connection, or a document (feed, ID3 tag) that is not valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import LangduError
from service.http.problems import problem, status_for
from service.text.clean import CONTROL as _CONTROL
from service.text.clean import clean_text

__all__ = ["PARSED", "ParsedRoute", "StrictJSON", "check_http_url", "check_json", "clean_text"]


def check_http_url(url: str) -> str:
    """An absolute http(s) URL with a host, or ValueError (what pydantic reports as 422)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        raise ValueError("must not contain spaces or control characters")
    return url


class BadJSON(ValueError):
    """What is wrong with a request body, in words for its problem document."""


def _reject_constant(name: str) -> Any:
    raise BadJSON(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadJSON(f"duplicate key {key!r}")
        out[key] = value
    return out


# A lone surrogate can only come from a \uD800-\uDFFF escape (UTF-8 text cannot hold one), so
# a body without such an escape needs no walk through its strings.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadJSON("a string holds a lone surrogate escape (\\ud800-\\udfff)") from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json(body: bytes) -> Any:
    """The body's JSON value; BadJSON unless it is one UTF-8 JSON document with no NaN or
    Infinity, no duplicate keys and no lone surrogates (RFC 8259 / I-JSON, RFC 7493)."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(body) > 1 and b"\x00" in body[:4]):
        raise BadJSON("the body must be UTF-8 JSON (this looks like UTF-16 or UTF-32)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJSON(f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise BadJSON(f"the body is not valid JSON: {exc.msg} at character {exc.pos}") from exc
    if _SURROGATE_ESCAPE.search(text):
        _check_strings(value)
    return value


async def read_body(receive: Receive) -> bytes | None:
    """A request's whole body; None if the client left first (or a body limit answered)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


PARSED = "langdu.json"  # the scope key of the checked body's value (see ParsedRequest)
_LARGE = 64 * 1024  # bodies from this size are parsed in a parsing worker, not the loop


class StrictJSON:
    """Check every JSON request body (see check_json) before any route parses it, and answer
    400 with a problem document when it fails. The value is parsed once, here, and handed
    to the route (ParsedRequest); a large body is parsed in a parsing worker process, so
    megabyte posts never hold up the event loop."""

    def __init__(self, app: ASGIApp, *, plain_json: tuple[str, ...] = ()) -> None:
        self.app = app
        self.plain_json = plain_json  # paths whose text/plain bodies are JSON too

    @staticmethod
    async def _parse(scope: Scope, body: bytes) -> Any:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        if len(body) >= _LARGE and services is not None:
            return await services.library.parse_pool.run(check_json, body)
        return check_json(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
        if content_type == b"text/plain" and scope["path"] in self.plain_json:
            content_type = b"application/json"
            scope["headers"] = [
                (k, b"application/json" if k == b"content-type" else v) for k, v in scope["headers"]
            ]
        if not (content_type == b"application/json" or content_type.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client left (or the body limit answered it already)
        if body:
            try:
                scope[PARSED] = await self._parse(scope, body)
            except BadJSON as exc:
                await problem(400, "Malformed JSON", str(exc))(scope, receive, send)
                return
            except LangduError as exc:  # the parsing worker died, or the body was too much
                await problem(status_for(exc), "Request body", str(exc))(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class ParsedRequest(Request):
    """A request whose JSON body StrictJSON has already checked and parsed: the route
    gets that value instead of parsing the body a second time."""

    async def json(self) -> Any:
        if PARSED in self.scope:
            return self.scope[PARSED]
        return await super().json()


class ParsedRoute(APIRoute):
    """Routes whose handlers see ParsedRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parsed(request: Request) -> Response:
            return await handler(ParsedRequest(request.scope, request.receive))

        return parsed
