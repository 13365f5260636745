"""Listening analytics (service.core.analytics): players post events; editors read the
figures as JSON or CSV (`Accept: text/csv`, or `?format=csv`)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service.core.analytics import ArticleStats, Figures, Overview, day_range
from service.core.library import Library
from service.http.hygiene import ParsedRoute
from service.http.ingest import batch_of
from service.http.routes.deps import check_id, library, require_write_key
from service.http.schemas import (
    ArticleLineOut,
    ArticleStatsOut,
    DayOut,
    EventsAccepted,
    EventsIn,
    StatsOut,
)

router = APIRouter(tags=["analytics"], route_class=ParsedRoute)

_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
From = Annotated[
    str | None,
    Query(alias="from", pattern=_DATE, description="first day (UTC, YYYY-MM-DD), included"),
]
To = Annotated[
    str | None,
    Query(alias="to", pattern=_DATE, description="last day (UTC), included; default today"),
]
AsCsv = Annotated[Literal["json", "csv"] | None, Query(description="csv: as Accept: text/csv")]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "the figures (JSON, or CSV)"}
}


@router.post("/v1/events", status_code=202, response_model=EventsAccepted)
async def post_events(body: EventsIn, lib: Annotated[Library, Depends(library)]) -> EventsAccepted:
    """Take a batch of a player's listening events (public: it can write nothing else;
    `navigator.sendBeacon` may send it as text/plain). Nothing that identifies a listener
    is kept: no address, no cookie, only the page view's random `session`. 413 over 64 KiB,
    422 for events from the future or more than a day ago, 404 for an unknown article,
    429 for a client posting too often. (`langdu serve` takes these posts ahead of the
    framework, in service/http/ingest.py, with the same answers.)"""
    return EventsAccepted(accepted=await lib.analytics.record(batch_of(body)))


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _figures(f: Figures) -> dict[str, object]:
    return {
        "plays": f.plays,
        "sessions": f.sessions,
        "downloads": f.downloads,
        "listened_ms": f.listened_ms,
        "completion": dict(zip(("25", "50", "75", "100"), f.quartiles, strict=True)),
        "speeds": f.speeds,
        "voices": f.voices,
        "degraded_plays": f.degraded,
    }


def article_stats_out(s: ArticleStats) -> ArticleStatsOut:
    return ArticleStatsOut.model_validate(
        {
            **_figures(s.figures),
            "id": s.article_id,
            "title": s.title,
            "from": s.first,
            "to": s.last,
            "voice": s.voice,
            "degraded": s.degraded,
            "sentence_reach": s.reach,
            "days": [_day(d.day, d.figures) for d in s.days],
        }
    )


def _day(day: str, f: Figures) -> DayOut:
    return DayOut(day=day, plays=f.plays, sessions=f.sessions, listened_ms=f.listened_ms)


def stats_out(o: Overview) -> StatsOut:
    return StatsOut.model_validate(
        {
            **_figures(o.figures),
            "from": o.first,
            "to": o.last,
            "days": [_day(d.day, d.figures) for d in o.days],
            "articles": [
                ArticleLineOut.model_validate(
                    {**_figures(a.figures), "id": a.article_id, "title": a.title}
                )
                for a in o.articles
            ],
        }
    )


def _csv(rows: list[list[object]], name: str) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheets then read the Chinese as UTF-8
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Vary": "Accept"},
    )


_FIGURE_COLUMNS = [
    "plays",
    "sessions",
    "downloads",
    "listened_ms",
    "reached_25",
    "reached_50",
    "reached_75",
    "reached_100",
    "degraded_plays",
]


def _figure_cells(f: Figures) -> list[object]:
    return [f.plays, f.sessions, f.downloads, f.listened_ms, *f.quartiles, f.degraded]


@router.get(
    "/v1/articles/{article_id}/stats",
    response_model=ArticleStatsOut,
    dependencies=[Depends(require_write_key)],
    responses=_CSV,
)
async def article_stats(
    article_id: str,
    request: Request,
    lib: Annotated[Library, Depends(library)],
    first: From = None,
    last: To = None,
    format: AsCsv = None,
) -> ArticleStatsOut | Response:
    """One article's listening. As CSV: one row per sentence (its index, paragraph,
    text, the sessions that heard it and their share of the plays)."""
    stats = await lib.analytics.article(check_id(article_id), *day_range(first, last))
    if not _wants_csv(request, format):
        return article_stats_out(stats)
    rows: list[list[object]] = [["sentence", "paragraph", "text", "heard_sessions", "reach"]]
    for i, ((paragraph, text), heard, reach) in enumerate(
        zip(stats.sentences, stats.heard, stats.reach, strict=True)
    ):
        rows.append([i, paragraph, text, heard, reach])
    return _csv(rows, f"langdu-{article_id}-{stats.first}-{stats.last}")


@router.get(
    "/v1/stats",
    response_model=StatsOut,
    dependencies=[Depends(require_write_key)],
    responses=_CSV,
)
async def stats(
    request: Request,
    lib: Annotated[Library, Depends(library)],
    first: From = None,
    last: To = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="articles listed")] = 50,
    format: AsCsv = None,
) -> StatsOut | Response:
    """Every article's listening: totals, each day, the most played articles. As CSV:
    one row per article (the most played first)."""
    overview = await lib.analytics.overview(*day_range(first, last), limit=limit)
    if not _wants_csv(request, format):
        return stats_out(overview)
    rows: list[list[object]] = [["article", "title", *_FIGURE_COLUMNS]]
    for a in overview.articles:
        rows.append([a.article_id, a.title or "", *_figure_cells(a.figures)])
    return _csv(rows, f"langdu-stats-{overview.first}-{overview.last}")
