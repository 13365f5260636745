"""The podcast feed (RSS 2.0 + iTunes + Podcasting 2.0) and the episode files it points at."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from service.core.library import Library
from service.errors import NotFoundError
from service.http import serving
from service.http.feed_xml import Channel, Item, feed_etag, render_feed
from service.http.hygiene import check_http_url
from service.http.routes.deps import check_id, library, require_write_key, services
from service.http.schemas import CATEGORY, ArticleOut, PublishIn, article_out
from service.services import Services
from service.store.registry import ArticleRecord

router = APIRouter(tags=["podcast"])


@router.post(
    "/v1/articles/{article_id}/publish",
    status_code=202,
    response_model=ArticleOut,
    dependencies=[Depends(require_write_key)],
)
async def publish_article(
    article_id: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    body: PublishIn | None = None,
) -> ArticleOut:
    """Put an article in the podcast feed; its episode appears once it is made."""
    view = await lib.publish(check_id(article_id), category=body.category if body else None)
    return article_out(request, view)


@router.api_route(
    "/v1/articles/{article_id}/episode.mp3",
    methods=["GET", "HEAD"],
    name="article_episode",
    response_model=None,
)
async def episode(
    article_id: str, request: Request, lib: Annotated[Library, Depends(library)]
) -> Response:
    """The episode file: loudness-normalized, tagged, served with Range and ETag.

    It is made again when the article's audio changes (an upgrade from the fallback voice,
    a new render version), so caches revalidate a fallback reading's episode every time
    and a final one hourly.
    """
    found = await lib.episode(check_id(article_id))
    cache = "public, max-age=3600" if found.final else serving.REVALIDATE
    return serving.respond(request, found.data, etag=found.etag, cache_control=cache)


def _first_paragraph(rec: ArticleRecord) -> str:
    """The article's first body paragraph (paragraph 0 is the title when there is one)."""
    first = 1 if rec.title and any(p == 1 for p, _ in rec.sentences) else 0
    return "".join(t for p, t in rec.sentences if p == first)


def _when(rec: ArticleRecord) -> datetime:
    return rec.published_at or rec.feed_at or rec.created_at


async def _feed(request: Request, svc: Services, category: str | None) -> Response:
    s = svc.settings
    records = await svc.library.feed(category=category, limit=s.feed_limit)
    base = str(request.base_url)
    items = [
        Item(
            guid=rec.id,
            title=rec.title or rec.sentences[0][1],
            description=_first_paragraph(rec),
            link=_http(rec.url) or str(request.url_for("article_audio", article_id=rec.id)),
            published=_when(rec),
            audio_url=str(request.url_for("article_episode", article_id=rec.id)),
            audio_bytes=rec.episode_bytes or 0,
            duration_ms=rec.episode_ms or 0,
            transcript_url=str(request.url_for("article_captions", article_id=rec.id)),
        )
        for rec in records
    ]
    title = s.feed_title if category is None else f"{s.feed_title} · {category}"
    channel = Channel(
        title=title,
        link=s.feed_link or base,
        description=s.feed_description,
        author=s.feed_author,
        image_url=s.feed_image_url
        or str(request.url_for("feed_artwork", extension=svc.artwork.extension)),
        categories=tuple(s.feed_categories),
        language=s.feed_language,
        explicit=s.feed_explicit,
        feed_url=str(request.url.replace(query="")),
        owner_name=s.feed_owner_name,
        owner_email=s.feed_owner_email,
        locked=s.feed_locked,
    )
    body = render_feed(channel, items, timezone=s.feed_timezone)
    etag = feed_etag(body)
    changed = max(
        (r.updated_at for r in records), default=datetime(2000, 1, 1, tzinfo=UTC)
    ).replace(microsecond=0)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(changed, usegmt=True),
        "Cache-Control": "public, max-age=60",
    }
    if _not_modified(request, etag, changed):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/rss+xml; charset=utf-8", headers=headers)


def _not_modified(request: Request, etag: str, changed: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag in if_none_match or if_none_match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return changed <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


@router.api_route("/feed.xml", methods=["GET", "HEAD"], response_class=Response)
async def feed_all(request: Request, svc: Annotated[Services, Depends(services)]) -> Response:
    """Every published article's episode, newest first."""
    return await _feed(request, svc, None)


@router.api_route("/feeds/{category}.xml", methods=["GET", "HEAD"], response_class=Response)
async def feed_category(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    category: Annotated[str, Path(pattern=CATEGORY)],
) -> Response:
    """The episodes of one category."""
    return await _feed(request, svc, category)


@router.api_route("/feed/artwork.{extension}", methods=["GET", "HEAD"], response_class=Response)
async def feed_artwork(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    extension: Annotated[str, Path(pattern="^(png|jpg)$")],
) -> Response:
    """The podcast's channel artwork (LANGDU_FEED_IMAGE_FILE, else langdu's own)."""
    art = svc.artwork
    if extension != art.extension:
        raise NotFoundError(f"the artwork is /feed/artwork.{art.extension}")
    headers = {"ETag": art.etag, "Cache-Control": "public, max-age=86400"}
    match = request.headers.get("if-none-match", "")
    if art.etag in match or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(art.body, media_type=art.media_type, headers=headers)


def _http(url: str | None) -> str | None:
    """The article's page, if it is an http(s) URL (records from before URLs were checked
    may hold anything)."""
    if url is None:
        return None
    try:
        return check_http_url(url)
    except ValueError:
        return None
