"""The lexicon: how the newsroom's names, places and terms are said (service.core.lexicon)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service.core.library import Library
from service.http.hygiene import ParsedRoute
from service.http.routes.deps import library, require_write_key
from service.http.schemas import LexiconEntryOut, LexiconIn, LexiconList, lexicon_out

router = APIRouter(prefix="/v1/lexicon", tags=["lexicon"], route_class=ParsedRoute)

SourceQuery = Annotated[
    str | None,
    Query(pattern=r"^[0-9a-f]{32}$", description="the entry for this source's articles only"),
]


@router.put(
    "/{written:path}",
    response_model=LexiconEntryOut,
    status_code=201,
    dependencies=[Depends(require_write_key)],
    responses={200: {"description": "The entry was there: now it says this"}},
)
async def put_entry(
    written: str, body: LexiconIn, response: Response, lib: Annotated[Library, Depends(library)]
) -> LexiconEntryOut:
    """Say `written` as `spoken` from now on: 201 for a new entry, 200 for a changed one.
    The articles with stored audio that hold the word are read again in the background
    (only their sentences holding it are spoken again); until then they keep their audio."""
    entry, created = await lib.lexicon.put(written, body.spoken, body.source)
    if not created:
        response.status_code = 200
    return lexicon_out(entry.written, entry.spoken, source=entry.source, at=entry.updated_at)


@router.get("", response_model=LexiconList)
async def list_entries(
    lib: Annotated[Library, Depends(library)], source: SourceQuery = None
) -> LexiconList:
    """Every entry: the operator's file first, then the registry's (only those for
    `source`'s articles, if given)."""
    base = [] if source else sorted(lib.pronunciations.base.items())
    return LexiconList(
        entries=[lexicon_out(w, s, source=None, file=True, at=None) for w, s in base]
        + [
            lexicon_out(e.written, e.spoken, source=e.source, at=e.updated_at)
            for e in await lib.lexicon.entries(source)
        ]
    )


@router.delete("/{written:path}", status_code=204, dependencies=[Depends(require_write_key)])
async def delete_entry(
    written: str, lib: Annotated[Library, Depends(library)], source: SourceQuery = None
) -> Response:
    """Forget an entry (of every article's layer, or `source`'s); the articles it changed
    are read again in the background. The operator's file is not changed here."""
    await lib.lexicon.delete(written, source)
    return Response(status_code=204)
