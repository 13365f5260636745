"""Articles: post one, then fetch its audio (streamed or stored), timings and captions."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.app import Services, problem
from service.articles import build_record, check_id
from service.db import READY, ArticleRecord
from service.errors import NotFoundError
from service.jobs import Job, JobRunner
from service.routes.deps import jobs, require_write_key, services
from service.timings import to_vtt

router = APIRouter(prefix="/v1/articles", tags=["articles"])

_RATE = r"^[+-]?\d{1,3}%$"
_PITCH = r"^[+-]?\d{1,3}(Hz|%)$"
_IMMUTABLE = "public, max-age=31536000, immutable"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ArticleIn(BaseModel):
    """An article to read: plain `text` or the page's `html`, plus how to read it."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, max_length=500)
    text: str | None = None
    html: str | None = None
    url: str | None = Field(None, max_length=2048)
    voice: str | None = Field(None, max_length=100)
    rate: str | None = Field(None, pattern=_RATE)
    pitch: str | None = Field(None, pattern=_PITCH)
    published_at: datetime | None = None
    publish: bool = False
    category: str | None = Field(None, pattern=r"^[\w-]{1,64}$")

    @model_validator(mode="after")
    def _one_source(self) -> ArticleIn:
        if (self.text is None) == (self.html is None):
            raise ValueError("give exactly one of text or html")
        return self


class ArticleOut(BaseModel):
    """An article's identity, state and where to fetch its files."""

    id: str
    status: str
    title: str | None
    voice: str
    degraded: str | None = None  # the fallback voice reading it while the asked-for one fails
    rate: str
    sentences: int
    duration_ms: int | None
    audio_url: str
    timings_url: str
    captions_url: str


def _out(request: Request, rec: ArticleRecord, status: str | None = None) -> ArticleOut:
    def url(name: str) -> str:
        return str(request.url_for(name, article_id=rec.id))

    return ArticleOut(
        id=rec.id, status=status or rec.status, title=rec.title, voice=rec.voice,
        degraded=rec.degraded, rate=rec.rate,
        sentences=len(rec.sentences), duration_ms=rec.duration_ms,
        audio_url=url("article_audio"), timings_url=url("article_timings"),
        captions_url=url("article_captions"),
    )


async def _record(svc: Services, article_id: str) -> ArticleRecord:
    rec = await asyncio.to_thread(svc.registry.get, check_id(article_id))
    if rec is None:
        raise NotFoundError(f"no article {article_id}")
    return rec


def _status(svc: Services, runner: JobRunner, rec: ArticleRecord) -> str:
    if runner.get(rec.id) is not None:
        return "synthesizing"
    if rec.status == READY and not svc.store.has_article(rec.id):
        return "evicted"  # the files aged out of the cache; the next request re-synthesizes
    return rec.status


def _ensure_job(svc: Services, runner: JobRunner, rec: ArticleRecord) -> Job | None:
    """The running job, or a new one when the audio is not (or no longer) on disk."""
    job = runner.get(rec.id)
    if job is None and not svc.store.has_article(rec.id):
        job = runner.start(rec)
    return job


def publish(svc: Services, runner: JobRunner, rec: ArticleRecord) -> None:
    """After marking an article published: make sure its audio, then its episode, get made."""
    assert svc.publisher is not None
    if rec.status == READY and svc.store.has_article(rec.id):
        svc.publisher.ensure(rec.id)
    else:
        _ensure_job(svc, runner, rec)  # the episode follows when the audio is ready


@router.post("", status_code=201, response_model=ArticleOut,
             dependencies=[Depends(require_write_key)])
async def post_article(body: ArticleIn, request: Request, response: Response,
                       svc: Annotated[Services, Depends(services)],
                       runner: Annotated[JobRunner, Depends(jobs)]) -> ArticleOut:
    """Register an article and start reading it; the same content gets the same id."""
    voice = svc.catalog.get(body.voice or svc.settings.default_voice)
    record = await asyncio.to_thread(
        build_record, voice=voice, text=body.text, html=body.html, title=body.title,
        url=body.url, rate=body.rate, pitch=body.pitch,
        published_at=body.published_at.isoformat() if body.published_at else None,
    )
    stored, created = await asyncio.to_thread(svc.registry.add, record)
    if not created:
        response.status_code = 200
        svc.metrics.cache.labels("article", "hit").inc()
    else:
        svc.metrics.cache.labels("article", "miss").inc()
    _ensure_job(svc, runner, stored)
    if body.publish:
        await asyncio.to_thread(svc.registry.publish, stored.id, category=body.category)
        stored = await _record(svc, stored.id)
        publish(svc, runner, stored)
    return _out(request, stored, _status(svc, runner, stored))


@router.get("/{article_id}", response_model=ArticleOut)
async def get_article(article_id: str, request: Request,
                      svc: Annotated[Services, Depends(services)],
                      runner: Annotated[JobRunner, Depends(jobs)]) -> ArticleOut:
    """An article's state: queued, synthesizing, ready, failed or evicted."""
    rec = await _record(svc, article_id)
    return _out(request, rec, _status(svc, runner, rec))


def _unsatisfiable(range_header: str | None, size: int) -> bool:
    """True for a single byte range that lies wholly past the end of the file."""
    if not range_header:
        return False
    m = _RANGE.match(range_header.strip())
    if not m:
        return False  # multi-range or odd syntax: Starlette parses and answers those
    start, end = m.group(1), m.group(2)
    if start:
        return int(start) >= size or (end != "" and int(end) < int(start))
    return end == "" or int(end) == 0


@router.api_route("/{article_id}/audio.mp3", methods=["GET", "HEAD"], name="article_audio",
                  response_model=None)
async def article_audio(article_id: str, request: Request,
                        svc: Annotated[Services, Depends(services)],
                        runner: Annotated[JobRunner, Depends(jobs)]) -> Response:
    """The article's MP3: streamed while it is synthesized, then the stored file with Range."""
    rec = await _record(svc, article_id)
    path = svc.store.article_path(rec.id, "mp3")
    job = _ensure_job(svc, runner, rec)
    if job is None:
        # A fallback reading is replaced when the asked-for voice works again: not immutable.
        etag = f'"{rec.id}-{rec.degraded}"' if rec.degraded else f'"{rec.id}"'
        cache = "no-cache" if rec.degraded else _IMMUTABLE
        headers = {"ETag": etag, "Cache-Control": cache}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        size = path.stat().st_size
        if _unsatisfiable(request.headers.get("range"), size):
            resp = problem(416, "Range not satisfiable", f"the audio is {size} bytes")
            resp.headers["Content-Range"] = f"bytes */{size}"
            return resp
        svc.metrics.cache.labels("audio", "hit").inc()
        svc.store.touch(path)
        return FileResponse(path, media_type="audio/mpeg", headers=headers)
    svc.metrics.cache.labels("audio", "miss").inc()
    # Live: a plain 200 stream (browsers accept it for their opening "Range: bytes=0-").
    return StreamingResponse(job.stream(), media_type="audio/mpeg",
                             headers={"Cache-Control": "no-store",
                                      "X-Langdu-Status": "synthesizing"})


async def _sidecar(svc: Services, runner: JobRunner, article_id: str, kind: str,
                   media_type: str) -> Response:
    rec = await _record(svc, article_id)
    job = _ensure_job(svc, runner, rec)
    if job is None:
        return FileResponse(svc.store.article_path(rec.id, kind), media_type=media_type,
                            headers={"ETag": f'"{rec.id}.{kind}"', "Cache-Control": _IMMUTABLE})
    # Still synthesizing: what is known so far (clients poll for the rest).
    body: Any
    if kind == "json":
        body = json.dumps(job.timeline.to_json(voice=rec.voice), ensure_ascii=False)
    else:
        body = to_vtt(job.timeline.sentences)
    return Response(body, media_type=media_type,
                    headers={"Cache-Control": "no-store", "X-Langdu-Status": "synthesizing"})


@router.get("/{article_id}/timings.json", name="article_timings", response_model=None)
async def article_timings(article_id: str, svc: Annotated[Services, Depends(services)],
                          runner: Annotated[JobRunner, Depends(jobs)]) -> Response:
    """Sentence timings: {"duration_ms", "voice", "sentences": [...]}."""
    return await _sidecar(svc, runner, article_id, "json", "application/json")


@router.get("/{article_id}/captions.vtt", name="article_captions", response_model=None)
async def article_captions(article_id: str, svc: Annotated[Services, Depends(services)],
                           runner: Annotated[JobRunner, Depends(jobs)]) -> Response:
    """WebVTT captions, one cue per sentence."""
    return await _sidecar(svc, runner, article_id, "vtt", "text/vtt; charset=utf-8")
