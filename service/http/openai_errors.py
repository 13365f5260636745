"""OpenAI's error shape on the OpenAI-compatible routes, beside the problem details.

An OpenAI client reads `{"error": {"message", "type", "param", "code"}}` (the official SDK
puts `error.message` in its exception's text); the rest of langdu's clients read RFC 9457
problem details. Every refusal under `/v1/audio/` carries both: this wraps the whole stack,
so refusals answered before the framework (rate limits, body limits, malformed JSON) get
the same shape as the routes' own.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/v1/audio/"

# OpenAI's `type` by status.
_TYPES = {401: "authentication_error", 429: "rate_limit_error"}
# A `code` for a refusal that has no field to blame, by status.
_CODES = {
    400: "invalid_json",
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
    502: "upstream_error",
    503: "service_unavailable",
}


def openai_error(problem: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's error object for a problem document."""
    status = problem.get("status")
    status = status if isinstance(status, int) else 500
    detail = str(problem.get("detail") or problem.get("title") or "error")
    param: str | None = None
    code: str | None = _CODES.get(status)
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        loc = [str(part) for part in first.get("loc", []) if part != "body"]
        param = ".".join(loc) or None
        code = str(first.get("type") or "invalid_value")
        detail = f"{param}: {first.get('msg', detail)}" if param else detail
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": detail, "type": kind, "param": param, "code": code}


class OpenAIErrors:
    """ASGI middleware: add `error` to each problem document answered under /v1/audio/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def shaping(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"application/problem+json"):
                    start = message  # held until the whole (small) document is here
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await _send_shaped(send, start, b"".join(chunks))
                return
            await send(message)

        await self.app(scope, receive, shaping)


async def _send_shaped(send: Send, start: Message, body: bytes) -> None:
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if isinstance(problem, dict) and "error" not in problem:
        problem["error"] = openai_error(problem)
        body = json.dumps(problem, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
