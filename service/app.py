"""The FastAPI application: lifespan-owned resources, one error handler, routers, the player."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.audio import AudioFormat
from service.config import Settings, get_settings
from service.db import Registry
from service.engines import Engine, create_engine
from service.errors import (
    EngineError,
    InputError,
    LangduError,
    NotFoundError,
    OptionError,
    PayloadTooLargeError,
    QueueFullError,
    UnauthorizedError,
    UnknownVoiceError,
)
from service.hotfiles import HotAudio, HotAudioMiddleware
from service.jobs import JobEvents, JobRunner
from service.metrics import Metrics
from service.pipeline import Pauses, Synthesizer
from service.podcast import load_sting
from service.publisher import EpisodeStyle, Publisher
from service.store import Store
from service.text.chunks import Segmenter
from service.text.normalize import Normalizer
from service.voices import VoiceCatalog

log = logging.getLogger("langdu")
PLAYER_DIR = Path(__file__).parent / "player"


@dataclass
class Services:
    """Everything long-lived a request may use; built and torn down by the lifespan."""

    settings: Settings
    catalog: VoiceCatalog
    store: Store
    registry: Registry
    metrics: Metrics
    normalizer: Normalizer
    segmenter: Segmenter
    hot_audio: HotAudio
    jobs: JobRunner | None = None
    publisher: Publisher | None = None
    engines: dict[str, Engine] = field(default_factory=dict)
    synthesizers: dict[str, Synthesizer] = field(default_factory=dict)

    def synthesizer_for(self, engine_name: str) -> Synthesizer:
        """The synthesizer for an engine, starting the engine on first use."""
        synth = self.synthesizers.get(engine_name)
        if synth is None:
            s = self.settings
            engine = create_engine(engine_name, workers=s.workers, concurrency=s.edge_concurrency,
                                   timeout_s=s.edge_timeout_s, attempts=s.edge_attempts,
                                   network=s.network)
            self.engines[engine_name] = engine
            synth = Synthesizer(
                engine, normalizer=self.normalizer, segmenter=self.segmenter,
                audio_format=AudioFormat(sample_rate=engine.sample_rate,
                                         bitrate_kbps=s.bitrate_kbps),
                pauses=Pauses(s.sentence_pause_ms, s.paragraph_pause_ms),
                # Enough sentences in flight to keep every worker or connection busy.
                lookahead=4 * max(s.workers, s.edge_concurrency), audio_threads=s.workers,
                cache=self.store, on_sentence=self.metrics.sentence_lookup,
            )
            self.synthesizers[engine_name] = synth
        return synth


_STATUS: tuple[tuple[type[LangduError], int], ...] = (
    (PayloadTooLargeError, 413),
    (InputError, 422),
    (OptionError, 422),
    (UnknownVoiceError, 422),
    (NotFoundError, 404),
    (UnauthorizedError, 401),
    (QueueFullError, 503),
    (EngineError, 502),
)


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")


async def _langdu_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LangduError)
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    if status == 500:
        log.error("unexpected service error: %s", exc)
    return problem(status, type(exc).__name__.removesuffix("Error") or "Error", str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(400, "Malformed JSON", "the request body is not valid JSON")
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    return problem(422, "Invalid request", detail, errors=errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words when the body is not UTF-8 or not JSON at all.
        return problem(400, "Malformed JSON", "the request body is not valid UTF-8 JSON")
    return problem(exc.status_code, "HTTP error", str(exc.detail))


class BodyLimit:
    """Answer 413 to request bodies over the limit, before anything parses them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
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
            if received > self.max_bytes:
                answered = True
                await self._too_large(scope, receive, send)
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

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "Payload too large",
                           f"request body over {self.max_bytes} bytes")
        await response(scope, receive, send)


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """The langdu service, configured by `settings` (default: from the environment)."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = VoiceCatalog.load(settings.voices_dir)
        default_voice = catalog.get(settings.default_voice)
        store = await asyncio.to_thread(Store, settings.data_dir / "audio",
                                        max_bytes=settings.cache_max_bytes)
        registry = await asyncio.to_thread(Registry.connect, settings.database)
        services = Services(settings=settings, catalog=catalog, store=store, registry=registry,
                            metrics=metrics, normalizer=Normalizer(), segmenter=Segmenter(),
                            hot_audio=HotAudio(store, max_bytes=settings.memory_cache_bytes))
        services.publisher = Publisher(store=store, registry=registry,
                                       style=await asyncio.to_thread(_episode_style, settings))
        services.jobs = JobRunner(
            store=store, registry=registry, catalog=catalog,
            synthesizer_for=services.synthesizer_for, max_active=settings.max_jobs,
            max_queue=settings.max_queue, fallback_voice=settings.fallback_voice,
            upgrade_after_s=settings.upgrade_after_s,
            events=JobEvents(
                finished=lambda seconds, ok: _job_finished(metrics, seconds, ok),
                depth=metrics.queue_depth.set,
                ready=services.publisher.ensure,
                degraded=metrics.engine_failed,
                upgraded=services.hot_audio.forget,
            ),
        )
        app.state.services = services
        # Load grammars, jieba and the default engine now, not on the first request.
        synth = services.synthesizer_for(default_voice.engine)
        await asyncio.gather(synth.warm_up(), synth.engine.warm_up())
        # jieba's dictionary and the grammars are millions of long-lived objects: keep the
        # garbage collector from re-scanning them on every full collection.
        gc.collect()
        gc.freeze()
        log.info("langdu %s ready: %d voices, data in %s", __version__, len(catalog),
                 settings.data_dir)
        try:
            yield
        finally:
            await services.jobs.aclose()
            await services.publisher.aclose()
            for s in services.synthesizers.values():
                s.close()
            await asyncio.gather(*(e.aclose() for e in services.engines.values()))
            registry.close()

    app = FastAPI(title="langdu", version=__version__, lifespan=lifespan,
                  description="朗读 — read Chinese news articles aloud.")
    app.add_exception_handler(LangduError, _langdu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                       allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                       allow_headers=["*"], expose_headers=["Content-Range", "Accept-Ranges",
                                                            "ETag", "Content-Length"])
    app.add_middleware(BodyLimit, max_bytes=settings.max_article_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)

    from service.routes import articles, feed, health, speech, voices

    for module in (articles, feed, speech, voices, health):
        app.include_router(module.router)
    app.mount("/player", StaticFiles(directory=PLAYER_DIR), name="player")
    return app


def create_asgi(settings: Settings | None = None) -> ASGIApp:
    """What `langdu serve` runs: the app behind the hot path for finished audio.

    Replays and seeks of finished articles are answered before the framework is entered
    at all; everything else (and all of it when this wrapper is left out) goes to the app.
    """
    settings = settings or get_settings()
    app = create_app(settings)

    def hot() -> HotAudio | None:
        services: Services | None = getattr(app.state, "services", None)
        return services.hot_audio if services is not None else None

    def count(method: str, status: int) -> None:
        services: Services | None = getattr(app.state, "services", None)
        if services is not None:
            services.metrics.audio_served(method, status)

    return HotAudioMiddleware(app, hot=hot, count=count, cors_origins=settings.cors_origins)


def _episode_style(settings: Settings) -> EpisodeStyle:
    """Episode tags, cover and stings from the settings (files are read once, at start).

    Raises:
        AudioError / OSError: a configured sting or cover cannot be read.
    """
    cover = settings.feed_cover_file.read_bytes() if settings.feed_cover_file else None
    return EpisodeStyle(
        artist=settings.feed_author, album=settings.feed_title, cover=cover,
        intro=load_sting(str(settings.feed_intro)) if settings.feed_intro else None,
        outro=load_sting(str(settings.feed_outro)) if settings.feed_outro else None,
        bitrate_kbps=settings.episode_bitrate_kbps,
    )


def _job_finished(metrics: Metrics, seconds: float, ok: bool) -> None:
    metrics.synthesis_seconds.observe(seconds)
    metrics.syntheses.labels("ok" if ok else "failed").inc()
