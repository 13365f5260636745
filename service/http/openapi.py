"""The OpenAPI document: every status and body each operation answers with.

FastAPI documents the success body of a JSON route and a 422 of its own shape. langdu
answers every error as an RFC 9457 problem (application/problem+json), serves audio,
captions and feeds with Range and conditional requests, and refuses with 429/503 when
busy; this fills all of that in, so that a client (or schemathesis) can rely on it.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.audio.formats import OUTPUTS

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array"},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "error": {
            "type": "object",
            "description": "OpenAI's error object, on the OpenAI-compatible routes",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "param", "code"],
        },
    },
    "required": ["type", "title", "status", "detail"],
}

_ERRORS = {
    "400": "Malformed request body (not UTF-8 JSON, NaN, duplicate keys, lone surrogates)",
    "401": "A write without a valid API key (when keys are configured)",
    "404": "No such article, rendering or file",
    "405": "Method not allowed (the Allow header lists the allowed ones)",
    "413": "Request body or article over the configured limits",
    "415": "Unsupported media type",
    "422": "A field or parameter does not validate, or the article cannot be read",
    "429": "Over this client's rate or queue share (Retry-After, RateLimit headers)",
    "500": "Internal error",
    "502": "The speech engine failed",
    "503": "Busy, storage full, or a backend down: try again (Retry-After)",
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_TEXT = {"type": "string"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _media(description: str, *types: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {t: {"schema": schema} if schema else dict(_BINARY) for t in types},
    }


def _successes(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    """Success answers by what the path serves."""
    out: dict[str, Any] = {}
    renders = "/renders/" in path
    if re.search(r"(audio|episode)\.mp3$", path):
        out["200"] = _media("The MP3 (streamed while it is being made)", "audio/mpeg")
        out["206"] = _media("Partial content", "audio/mpeg", "multipart/byteranges")
        out["304"] = {"description": "Not modified (If-None-Match)"}
        out["416"] = _problem("Range not satisfiable")
    elif path.endswith("timings.json"):
        out["200"] = _media("Sentence timings", "application/json", schema={"type": "object"})
        out["304"] = {"description": "Not modified"}
    elif path.endswith("captions.vtt"):
        out["200"] = _media("WebVTT captions", "text/vtt", schema={"type": "string"})
        out["304"] = {"description": "Not modified"}
    elif path.endswith(".xml"):
        out["200"] = _media(
            "RSS 2.0 podcast feed", "application/rss+xml", schema={"type": "string"}
        )
        out["304"] = {"description": "Not modified"}
    elif path.startswith("/feed/artwork"):
        out["200"] = _media("The podcast's channel artwork", "image/png", "image/jpeg")
        out["304"] = {"description": "Not modified (If-None-Match)"}
    elif path == "/metrics":
        out["200"] = _media("Prometheus metrics", "text/plain", schema={"type": "string"})
    elif path == "/v1/audio/speech":
        out["200"] = _media(
            "The speech, in response_format", *dict.fromkeys(o.media_type for o in OUTPUTS.values())
        )
    if renders:
        out["307"] = {
            "description": "That rendering is gone: the article's stable URL (or, with"
            " LANGDU_STORAGE_REDIRECT_S, a presigned URL of the object in the store)"
        }
    if path in ("/v1/articles", "/v1/sources") and method == "post":
        created = op.get("responses", {}).get("201")
        if created:
            out["200"] = {**created, "description": "Known already: the same one"}
    if path.endswith("/publish"):
        accepted = op.get("responses", {}).get("202")
        if accepted:
            out["200"] = {**accepted, "description": "Published"}
    return out


def build(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, cached on the app."""
    if app.openapi_schema:
        return app.openapi_schema
    with warnings.catch_warnings():
        # GET+HEAD routes share FastAPI's operation id: made unique below.
        warnings.simplefilter("ignore", UserWarning)
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if method != "get" and "get" in operations and "operationId" in op:
                op["operationId"] = f"{op['operationId'].removesuffix('_get')}_{method}"
            responses: dict[str, Any] = op.setdefault("responses", {})
            success = _successes(path, method, op)
            for code, answer in success.items():
                if code == "200" and code in responses and "content" in answer:
                    # Replace FastAPI's JSON guess for routes that serve other media.
                    responses[code] = answer
                else:
                    responses.setdefault(code, answer)
            for code, description in _ERRORS.items():
                responses[code] = _problem(description)
    app.openapi_schema = schema
    return schema
