"""Articles: post one, then fetch its audio (streamed or stored), timings and captions.

Stable URLs (`/v1/articles/{id}/audio.mp3` ...) answer with what the article has now and are
revalidated (`no-cache`); versioned URLs (`.../renders/{rendering}/audio.mp3` ...) name one
rendering, never change, and are cached for a year.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service import serving
from service.errors import NotFoundError
from service.hotfiles import audio_etag
from service.hygiene import ParsedRoute, check_http_url, clean_text
from service.library import ArticleView, Library, Stored, Timings
from service.routes.deps import (
    check_id,
    check_rendering,
    client_of,
    library,
    require_write_key,
)
from service.timings import vtt_from_json

router = APIRouter(prefix="/v1/articles", tags=["articles"], route_class=ParsedRoute)

_RATE = r"^[+-]?\d{1,3}%$"
_PITCH = r"^[+-]?\d{1,3}(Hz|%)$"
_LIVE = {"Cache-Control": "no-store", "X-Langdu-Status": "synthesizing"}
# A player's name for itself, so that a stream cut by a voice change can be resumed.
LISTENER = r"^[A-Za-z0-9_-]{8,64}$"
Listener = Annotated[str | None, Query(pattern=LISTENER)]
# Letters, digits, _ and - (Chinese too: 时政), spelt so that JSON Schema's (ECMA-262)
# regular expressions mean what Python's do.
CATEGORY = r"^[A-Za-z0-9_\u3400-\u9fff-]{1,64}$"


def _text_or_html(schema: dict[str, Any]) -> None:
    """In the schema as in the validator: exactly one of `text` and `html`, a string."""
    props = schema["properties"]
    for name in ("text", "html"):
        props[name] = {"type": "string", "title": props[name].get("title", name.title())}
    schema["oneOf"] = [{"required": ["text"]}, {"required": ["html"]}]


class ArticleIn(BaseModel):
    """An article to read: plain `text` or the page's `html`, plus how to read it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_text_or_html)
    title: str | None = Field(None, max_length=500)
    text: str | None = None
    html: str | None = None
    url: str | None = Field(None, max_length=2048)
    voice: str | None = Field(None, max_length=100)
    rate: str | None = Field(None, pattern=_RATE)
    pitch: str | None = Field(None, pattern=_PITCH)
    published_at: datetime | None = None
    publish: bool = False
    category: str | None = Field(None, pattern=CATEGORY)

    @field_validator("title")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        # (text and html are cleaned by extract(), in the parsing worker)
        return None if value is None else clean_text(value)

    @field_validator("published_at", mode="before")
    @classmethod
    def _iso_instant(cls, value: object) -> object:
        # As the schema says: an RFC 3339 string (pydantic alone would take a number too).
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="before")
    @classmethod
    def _no_null_source(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("text", "html"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name}, when given, is a string")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ArticleIn:
        if (self.text is None) == (self.html is None):
            raise ValueError("give exactly one of text or html")
        return self


class ArticleOut(BaseModel):
    """An article's identity, state and where to fetch its files.

    The URLs name the stored rendering when there is one (immutable), else the stable
    URLs that stream the reading as it is made.
    """

    id: str
    status: str
    title: str | None
    voice: str
    degraded: str | None = None  # the fallback voice reading it while the asked-for one fails
    rate: str
    sentences: int
    duration_ms: int | None
    rendering: str | None  # the stored audio's render version (None: nothing stored yet)
    render_version: str  # what the audio should have now; differs while a re-render is due
    resume_at: int | None = None  # for ?listener=: the sentence where a cut stream resumes
    audio_url: str
    timings_url: str
    captions_url: str


def article_out(request: Request, view: ArticleView, resume_at: int | None = None) -> ArticleOut:
    """The API's view of an article."""
    rec = view.record

    def url(name: str) -> str:
        if view.rendering is not None:
            return str(
                request.url_for(f"rendering_{name}", article_id=rec.id, rendering=view.rendering)
            )
        return str(request.url_for(f"article_{name}", article_id=rec.id))

    return ArticleOut(
        id=rec.id,
        status=view.status.value,
        title=rec.title,
        voice=rec.voice,
        degraded=rec.degraded,
        rate=rec.rate,
        sentences=len(rec.sentences),
        duration_ms=rec.duration_ms if view.rendering is not None else None,
        rendering=view.rendering,
        render_version=view.render_version,
        audio_url=url("audio"),
        timings_url=url("timings"),
        captions_url=url("captions"),
        resume_at=resume_at,
    )


@router.post(
    "", status_code=201, response_model=ArticleOut, dependencies=[Depends(require_write_key)]
)
async def post_article(
    body: ArticleIn, request: Request, response: Response, lib: Annotated[Library, Depends(library)]
) -> ArticleOut:
    """Register an article and start reading it; the same content gets the same id."""
    view, created = await lib.register(
        voice=body.voice,
        text=body.text,
        html=body.html,
        title=body.title,
        url=body.url,
        rate=body.rate,
        pitch=body.pitch,
        published_at=body.published_at,
        publish=body.publish,
        category=body.category,
        client=client_of(request),
    )
    if not created:
        response.status_code = 200
    return article_out(request, view)


@router.get("/{article_id}", response_model=ArticleOut)
async def get_article(
    article_id: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    listener: Listener = None,
) -> ArticleOut:
    """An article's state: queued, synthesizing, ready, failed or evicted."""
    view = lib.view(await lib.record(check_id(article_id)))
    return article_out(request, view, lib.resume_at(article_id, listener))


@router.api_route(
    "/{article_id}/audio.mp3", methods=["GET", "HEAD"], name="article_audio", response_model=None
)
async def article_audio(
    article_id: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    listener: Listener = None,
) -> Response:
    """The article's MP3 now: the stored rendering (Range, ETag), or streamed as it is made.

    A player names itself with `?listener=`: if the voice fails after it heard some of the
    stream, the stream ends cleanly and the article (and its timings) tell it `resume_at`.
    """
    found = await lib.listen(check_id(article_id), client_of(request))
    if isinstance(found, Stored):
        data = await lib.stored_audio(found.article_id, found.rendering)
        if data is not None:
            return serving.respond(request, data, etag=found.etag, cache_control=serving.REVALIDATE)
        found = await lib.listen(article_id, client_of(request))  # evicted just now: again
        if isinstance(found, Stored):
            raise NotFoundError(f"the audio of {article_id} is not available")
    # Live: a plain 200 stream (browsers accept it for their opening "Range: bytes=0-").
    on_cut = None if listener is None else functools.partial(lib.note_cut, article_id, listener)
    return StreamingResponse(found.job.stream(on_cut), media_type="audio/mpeg", headers=_LIVE)


@router.api_route(
    "/{article_id}/renders/{rendering}/audio.mp3",
    methods=["GET", "HEAD"],
    name="rendering_audio",
    response_model=None,
)
async def rendering_audio(
    article_id: str, rendering: str, request: Request, lib: Annotated[Library, Depends(library)]
) -> Response:
    """One rendering's MP3, immutable; once it is gone, a redirect to the stable URL."""
    data = await lib.stored_audio(check_id(article_id), check_rendering(rendering))
    if data is None:
        await lib.record(article_id)  # 404 for an unknown article
        return RedirectResponse(
            request.url_for("article_audio", article_id=article_id), status_code=307
        )
    etag = audio_etag(article_id, rendering)
    return serving.respond(request, data, etag=etag, cache_control=serving.IMMUTABLE)


def _timings_response(
    request: Request, timings: Timings, kind: str, *, immutable: bool, resume_at: int | None = None
) -> Response:
    if kind == "json":
        body = timings.raw
        if resume_at is not None:
            document = {**timings.document(), "resume_at": resume_at}
            body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        media_type = "application/json"
    else:
        body = vtt_from_json(timings.document()).encode("utf-8")
        media_type = "text/vtt; charset=utf-8"
    if timings.live:
        return Response(body, media_type=media_type, headers=_LIVE)
    if resume_at is not None:  # meant for one listener
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})
    # A stored rendering's timings and captions are answered like its audio (ETag, Range).
    etag = f'"{request.path_params["article_id"]}.{timings.rendering}.{kind}"'
    cache = serving.IMMUTABLE if immutable else serving.REVALIDATE
    return serving.respond(request, body, etag=etag, cache_control=cache, media_type=media_type)


@router.get("/{article_id}/timings.json", name="article_timings", response_model=None)
async def article_timings(
    article_id: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    listener: Listener = None,
) -> Response:
    """Sentence timings of the audio served now (partial, `no-store`, while synthesizing);
    with `?listener=`, `resume_at` when that listener's stream was cut."""
    timings = await lib.timings(check_id(article_id))
    assert timings is not None
    return _timings_response(
        request, timings, "json", immutable=False, resume_at=lib.resume_at(article_id, listener)
    )


@router.get("/{article_id}/captions.vtt", name="article_captions", response_model=None)
async def article_captions(
    article_id: str, request: Request, lib: Annotated[Library, Depends(library)]
) -> Response:
    """WebVTT captions of the audio served now, one cue per sentence."""
    timings = await lib.timings(check_id(article_id))
    assert timings is not None
    return _timings_response(request, timings, "vtt", immutable=False)


async def _rendering_sidecar(
    request: Request, lib: Library, article_id: str, rendering: str, kind: str
) -> Response:
    timings = await lib.timings(check_id(article_id), check_rendering(rendering))
    if timings is None:
        await lib.record(article_id)
        stable = "article_timings" if kind == "json" else "article_captions"
        return RedirectResponse(request.url_for(stable, article_id=article_id), status_code=307)
    return _timings_response(request, timings, kind, immutable=True)


@router.get(
    "/{article_id}/renders/{rendering}/timings.json", name="rendering_timings", response_model=None
)
async def rendering_timings(
    article_id: str, rendering: str, request: Request, lib: Annotated[Library, Depends(library)]
) -> Response:
    """One rendering's sentence timings, immutable."""
    return await _rendering_sidecar(request, lib, article_id, rendering, "json")


@router.get(
    "/{article_id}/renders/{rendering}/captions.vtt", name="rendering_captions", response_model=None
)
async def rendering_captions(
    article_id: str, rendering: str, request: Request, lib: Annotated[Library, Depends(library)]
) -> Response:
    """One rendering's WebVTT captions, immutable."""
    return await _rendering_sidecar(request, lib, article_id, rendering, "vtt")
