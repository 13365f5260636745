"""Errors as HTTP: RFC 9457 problem documents, and the handlers that map LangduError to them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import (
    BackendUnavailableError,
    ClientBusyError,
    EngineError,
    FetchFailedError,
    InputError,
    LangduError,
    NotFoundError,
    OptionError,
    OverBudgetError,
    PayloadTooLargeError,
    QueueFullError,
    StorageFullError,
    UnauthorizedError,
    UnknownVoiceError,
    WorkerLostError,
)

log = logging.getLogger("langdu")

_STATUS: tuple[tuple[type[LangduError], int], ...] = (
    (PayloadTooLargeError, 413),
    (InputError, 422),
    (OptionError, 422),
    (UnknownVoiceError, 422),
    (NotFoundError, 404),
    (UnauthorizedError, 401),
    (QueueFullError, 503),
    (StorageFullError, 503),
    (BackendUnavailableError, 503),
    (WorkerLostError, 503),
    (ClientBusyError, 429),
    (OverBudgetError, 429),
    (EngineError, 502),
    (FetchFailedError, 502),
)


def problem_document(status: int, title: str, detail: str, **extra: object) -> dict[str, object]:
    """An RFC 9457 problem document's members."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = problem_document(status, title, detail, **extra)
    headers = {"Retry-After": "5"} if status in (429, 503) else None
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def status_for(exc: LangduError) -> int:
    """The HTTP status a LangduError answers with."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def langdu_problem(exc: LangduError) -> JSONResponse:
    """A LangduError as its problem document."""
    status = status_for(exc)
    if status == 500:
        log.error("unexpected service error: %s", exc)
    response = problem(status, type(exc).__name__.removesuffix("Error") or "Error", str(exc))
    if isinstance(exc, OverBudgetError):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, UnauthorizedError):
        response.headers["WWW-Authenticate"] = exc.challenge
    return response


async def langdu_error(_: Request, exc: Exception) -> JSONResponse:
    """A LangduError as its problem document."""
    assert isinstance(exc, LangduError)
    return langdu_problem(exc)


def invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    """422 for fields that do not validate (pydantic's errors: loc, msg, type)."""
    listed = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    first = listed[0] if listed else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    return problem(422, "Invalid request", detail, errors=listed)


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """Malformed JSON (400) or fields that do not validate (422)."""
    assert isinstance(exc, RequestValidationError)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(400, "Malformed JSON", "the request body is not valid JSON")
    return invalid(list(exc.errors()))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """The framework's own errors (404 for unknown paths, 405 ...) as problem documents."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words when the body is not UTF-8 or not JSON at all.
        return problem(400, "Malformed JSON", "the request body is not valid UTF-8 JSON")
    response = problem(exc.status_code, "HTTP error", str(exc.detail))
    for name, value in (exc.headers or {}).items():  # 405's Allow, 401's WWW-Authenticate
        response.headers[name] = value
    if exc.status_code == 405:
        # Every route of this path, not only the first one tried (GET and DELETE of one
        # resource are two routes).
        allowed = {
            method
            for route in _routes(getattr(request.app, "routes", ()))
            if (regex := getattr(route, "path_regex", None)) is not None
            and regex.match(request.url.path)
            for method in (getattr(route, "methods", None) or ())
        }
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def _routes(routes: Iterable[object]) -> Iterator[object]:
    """Every route, those of included routers too (FastAPI keeps them inside)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(getattr(inner, "routes", ()))
        else:
            yield route
