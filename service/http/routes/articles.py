"""Articles: post one, then fetch its audio (streamed or stored), timings and captions.

Stable URLs (`/v1/articles/{id}/audio.mp3` ...) answer with what the article has now and are
revalidated (`no-cache`); versioned URLs (`.../renders/{rendering}/audio.mp3` ...) name one
rendering, never change, and are cached for a year.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from service.audio.timings import vtt_from_json
from service.core.hotaudio import audio_etag
from service.core.library import Library, Stored, Timings
from service.errors import NotFoundError
from service.http import serving
from service.http.hygiene import ParsedRoute
from service.http.routes.deps import (
    check_id,
    check_rendering,
    client_of,
    library,
    require_write_key,
    services,
)
from service.http.schemas import ArticleIn, ArticleOut, Listener, article_out
from service.services import Services

router = APIRouter(prefix="/v1/articles", tags=["articles"], route_class=ParsedRoute)

_LIVE = {"Cache-Control": "no-store", "X-Langdu-Status": "synthesizing"}


@router.post(
    "", status_code=201, response_model=ArticleOut, dependencies=[Depends(require_write_key)]
)
async def post_article(
    body: ArticleIn, request: Request, response: Response, lib: Annotated[Library, Depends(library)]
) -> ArticleOut:
    """Register an article and start reading it; the same content gets the same id. With a
    `url` alone the page is fetched (public addresses only, unless LANGDU_FETCH_ALLOW says
    otherwise): 422 for a refused URL or a page that is not HTML, 502 when the site fails."""
    register = (
        functools.partial(lib.register_url, body.url)
        if body.text is None and body.html is None and body.url is not None
        else functools.partial(
            lib.register, text=body.text, html=body.html, title=body.title, url=body.url
        )
    )
    view, created = await register(
        voice=body.voice,
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
    return article_out(request, view, await lib.resume_at(article_id, listener))


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
    article_id: str,
    rendering: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    svc: Annotated[Services, Depends(services)],
) -> Response:
    """One rendering's MP3, immutable; once it is gone, a redirect to the stable URL. With
    LANGDU_STORAGE_REDIRECT_S, a redirect to a presigned URL of the object itself."""
    article_id, rendering = check_id(article_id), check_rendering(rendering)
    expires = svc.settings.storage_redirect_s
    if expires:
        location = await lib.audio_location(article_id, rendering, expires)
        if location is not None:
            cache = f"private, max-age={max(1, min(300, expires // 2))}"
            return RedirectResponse(location, status_code=307, headers={"Cache-Control": cache})
    data = await lib.stored_audio(article_id, rendering)
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
        request,
        timings,
        "json",
        immutable=False,
        resume_at=await lib.resume_at(article_id, listener),
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
