"""The FastAPI application: the lifespan owns the services, one error handler, routers, player."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.config import Settings, get_settings
from service.core.library import Library
from service.engines import EngineFactory
from service.errors import LangduError
from service.http.admission import Identity, RateLimit, SpeechBudget, async_storage
from service.http.admission import rules as rate_rules
from service.http.hotpath import HotAudioMiddleware
from service.http.hygiene import StrictJSON
from service.http.ingest import EVENTS_PATH, EventsFront
from service.http.openai_errors import OpenAIErrors
from service.http.openapi import build as build_openapi
from service.http.problems import http_error, langdu_error, problem, validation_error
from service.http.routes import (
    analytics,
    articles,
    dashboard,
    feed,
    health,
    lexicon,
    sources,
    speech,
    voices,
)
from service.http.routes.health import PLAYER_DIR
from service.http.schemas import EVENTS_MAX_BYTES
from service.runtime.metrics import Metrics
from service.services import Services, close_services, open_services

log = logging.getLogger("langdu")


class BodyLimit:
    """Answer 413 to request bodies over the limit, before anything parses them."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, paths: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = dict(paths or {})  # a path's own (smaller) limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        received = 0
        answered = False

        async def limited() -> Message:
            # No (or a false) Content-Length: count the body as it arrives, answer 413 the
            # moment it is too large, and tell the app the client has gone.
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                answered = True
                await self._too_large(scope, receive, send, limit)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not answered:
                raise

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, "Payload too large", f"request body over {limit} bytes")
        await response(scope, receive, send)


_REFUSED = {
    400: "malformed",
    404: "unknown_article",
    413: "too_large",
    422: "invalid",
    429: "rate",
    503: "unavailable",
}


class RequestMetrics:
    """Count requests by method, route template and status (streaming untouched)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            path = scope.get("langdu.route") or getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            if scope["path"] == EVENTS_PATH and status >= 400:
                self.metrics.listening_refused.labels(_REFUSED.get(status, str(status))).inc()


class LangduApp(FastAPI):
    """FastAPI with admission in front (`front`, set by `create_app`): a request over its
    client's rate, or a new article from a client holding its share of the queue, is
    refused before the framework's middleware, routing and handlers are entered."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _count_refusal(metrics: Metrics, route: str, method: str, status: int) -> None:
    metrics.requests.labels(method, route, str(status)).inc()
    if route == EVENTS_PATH:
        metrics.listening_refused.labels("rate").inc()


def create_app(
    settings: Settings | None = None, *, engines: Mapping[str, EngineFactory] | None = None
) -> FastAPI:
    """The langdu service, configured by `settings` (default: from the environment).

    `engines` adds engine factories by name (beside the built-in ones), for voice presets
    that name them.
    """
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # With a shared queue this process is a replica: `langdu worker`s do the reading.
        services = await open_services(settings, metrics, engines, reads=settings.queue_url is None)
        app.state.services = services
        # jieba's dictionary and the grammars are millions of long-lived objects: keep the
        # garbage collector from re-scanning them on every full collection.
        gc.collect()
        gc.freeze()
        log.info(
            "langdu %s ready: %d voices, data in %s",
            __version__,
            len(services.catalog),
            settings.data_dir,
        )
        try:
            yield
        finally:
            await close_services(services)

    app = LangduApp(
        title="langdu",
        version=__version__,
        lifespan=lifespan,
        description="朗读 — read Chinese news articles aloud.",
    )
    app.openapi = functools.partial(build_openapi, app)  # type: ignore[method-assign]
    # The speech endpoint's clients are charged by the audio they ask for (routes/speech.py).
    app.state.speech_budget = (
        SpeechBudget(
            settings.speech_audio_budget,
            storage=async_storage(settings.rate_limit_storage),
            prefix=settings.queue_prefix,
        )
        if settings.speech_audio_budget.strip()
        else None
    )
    app.add_exception_handler(LangduError, langdu_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Content-Range", "Accept-Ranges", "ETag", "Content-Length"],
    )
    # Inside BodyLimit: it reads only bodies within the limit. navigator.sendBeacon posts
    # its JSON as text/plain (no CORS preflight for it).
    app.add_middleware(StrictJSON, plain_json=(EVENTS_PATH,))
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_article_bytes,
        paths={EVENTS_PATH: EVENTS_MAX_BYTES},
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(OpenAIErrors)  # outermost: every refusal under /v1/audio/ is shaped
    for module in (articles, analytics, dashboard, feed, sources, lexicon, speech, voices, health):
        app.include_router(module.router)
    app.mount("/player", StaticFiles(directory=PLAYER_DIR), name="player")

    def library() -> Library | None:
        services: Services | None = getattr(app.state, "services", None)
        return None if services is None else services.library

    def share_held(client: str) -> str | None:
        lib = library()
        return None if lib is None else lib.rendering.share_held(client)

    def limited(answer: ASGIApp) -> ASGIApp:
        limit = BodyLimit(answer, max_bytes=EVENTS_MAX_BYTES)
        return RequestMetrics(limit, metrics=metrics)

    # Ahead of the framework: a client over its rate or its share is refused before its
    # body is read, and at little cost to the event loop; players' events are taken
    # without entering the framework at all.
    app.front = RateLimit(
        EventsFront(
            functools.partial(FastAPI.__call__, app),
            library=library,
            limit=limited,
            cors_origins=settings.cors_origins,
        ),
        identity=Identity.build(settings.api_keys, settings.trusted_proxies),
        rules=rate_rules(
            writes=settings.rate_limit_writes,
            speech=settings.rate_limit_speech,
            events=settings.rate_limit_events,
        ),
        storage=async_storage(settings.rate_limit_storage),
        prefix=settings.queue_prefix,
        cors_origins=settings.cors_origins,
        count=functools.partial(_count_refusal, metrics),
        share=share_held,
    )
    return app


def create_asgi(
    settings: Settings | None = None, *, engines: Mapping[str, EngineFactory] | None = None
) -> ASGIApp:
    """What `langdu serve` runs: the app behind the hot path for stored audio.

    Replays and seeks of stored renderings are answered before the framework is entered
    at all; everything else (and all of it when this wrapper is left out) goes to the app.
    """
    settings = settings or get_settings()
    app = create_app(settings, engines=engines)

    def running() -> Services | None:
        found: Services | None = getattr(app.state, "services", None)
        return found

    def count(route: str, method: str, status: int) -> None:
        services = running()
        if services is not None:
            services.metrics.audio_served(route, method, status)

    return HotAudioMiddleware(
        app,
        hot=lambda: s.hot_audio if (s := running()) else None,
        count=count,
        cors_origins=settings.cors_origins,
        redirect=settings.storage_redirect_s > 0,
    )
