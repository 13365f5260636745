"""Sources: the newsroom's feeds langdu follows (service.core.sources)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from service.core.library import Library
from service.http.hygiene import ParsedRoute
from service.http.routes.deps import check_source_id, library, require_write_key
from service.http.schemas import SourceIn, SourceList, SourceOut, source_out

router = APIRouter(prefix="/v1/sources", tags=["sources"], route_class=ParsedRoute)


@router.post(
    "",
    status_code=201,
    response_model=SourceOut,
    dependencies=[Depends(require_write_key)],
)
async def add_source(
    body: SourceIn, response: Response, lib: Annotated[Library, Depends(library)]
) -> SourceOut:
    """Follow a feed: it is polled at once, then every LANGDU_SOURCE_POLL_S seconds, and
    each new item is read (and published when `publish`). A feed followed already: 200
    with that source."""
    source, created = await lib.sources.add(
        body.feed_url, publish=body.publish, voice=body.voice, category=body.category
    )
    if not created:
        response.status_code = 200
    return source_out(source)


@router.get("", response_model=SourceList)
async def list_sources(lib: Annotated[Library, Depends(library)]) -> SourceList:
    """Every source, with its last poll, last error and item count."""
    return SourceList(sources=[source_out(s) for s in await lib.sources.list()])


@router.get("/{source_id}", response_model=SourceOut)
async def get_source(source_id: str, lib: Annotated[Library, Depends(library)]) -> SourceOut:
    """One source."""
    return source_out(await lib.sources.get(check_source_id(source_id)))


@router.delete("/{source_id}", status_code=204, dependencies=[Depends(require_write_key)])
async def remove_source(source_id: str, lib: Annotated[Library, Depends(library)]) -> Response:
    """Stop following a source; the articles read from it stay."""
    await lib.sources.remove(check_source_id(source_id))
    return Response(status_code=204)
