"""The listening dashboard (`/dashboard`): pages drawn by the server (http/dashboard.py),
behind the write key when keys are set (a browser asks for it as a password)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from service.core.analytics import day_range
from service.core.library import Library
from service.http.dashboard import article_page, overview_page
from service.http.routes.analytics import From, To
from service.http.routes.deps import check_id, library, require_dashboard_key

router = APIRouter(
    prefix="/dashboard",
    tags=["dashboard"],
    dependencies=[Depends(require_dashboard_key)],
    default_response_class=HTMLResponse,
)

_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "the page"}
}


@router.get("", response_class=HTMLResponse, responses=_HTML)
async def overview(
    lib: Annotated[Library, Depends(library)], first: From = None, last: To = None
) -> HTMLResponse:
    """Plays over time and the most-listened articles."""
    o = await lib.analytics.overview(*day_range(first, last))
    return HTMLResponse(overview_page(o), headers=_HEADERS)


@router.get("/articles/{article_id}", response_class=HTMLResponse, responses=_HTML)
async def article(
    article_id: str,
    lib: Annotated[Library, Depends(library)],
    first: From = None,
    last: To = None,
) -> HTMLResponse:
    """One article: its text shaded sentence by sentence by the share of plays that heard
    it, completion, and every figure as a table."""
    stats = await lib.analytics.article(check_id(article_id), *day_range(first, last))
    return HTMLResponse(article_page(stats), headers=_HEADERS)
