"""The registry's lexicon (the newsroom's pronunciations) in SQL: a part of SqlRegistry
kept apart so that each stays short enough to read."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from service.store.registry import LexiconEntry, utc_now
from service.store.registry.schema import (
    _instant,
    _ms,
    articles,
    lexicon,
    lexicon_revision,
    source_items,
)


def _entry(row: sa.RowMapping) -> LexiconEntry:
    return LexiconEntry(
        written=row["written"],
        spoken=row["spoken"],
        source=row["scope"] or None,
        updated_at=_instant(row["updated_at"]) or datetime(1970, 1, 1, tzinfo=UTC),
    )


def _like(text: str) -> str:
    """A LIKE pattern for `text` as it appears in an article's sentences (JSON text)."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    escaped = inner.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class LexiconSql:
    """Lexicon entries and their revision; SqlRegistry supplies the connection."""

    _insert: Any

    def _rows(self, statement: sa.Executable) -> list[sa.RowMapping]:
        raise NotImplementedError

    def _one(self, statement: sa.Executable) -> sa.RowMapping | None:
        raise NotImplementedError

    def _begin(self) -> contextlib.AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def _bump(self, conn: sa.Connection) -> None:
        insert = self._insert(lexicon_revision).values(id=1, revision=1)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[lexicon_revision.c.id],
                set_={"revision": lexicon_revision.c.revision + 1},
            )
        )

    _REVISION = sa.select(lexicon_revision.c.revision).where(lexicon_revision.c.id == 1)

    def lexicon_revision(self) -> int:
        row = self._one(self._REVISION)
        return 0 if row is None else int(row["revision"])

    def lexicon_entries(self) -> tuple[int, list[LexiconEntry]]:
        with self._begin() as conn:
            revision = conn.execute(self._REVISION).scalar()
            rows = conn.execute(
                sa.select(lexicon).order_by(lexicon.c.scope, lexicon.c.written)
            ).mappings()
            return int(revision or 0), [_entry(r) for r in rows]

    def put_lexicon(self, written: str, spoken: str, source: str | None) -> bool:
        now = _ms(utc_now())
        scope = source or ""
        with self._begin() as conn:
            known = conn.execute(
                sa.select(lexicon.c.spoken).where(
                    lexicon.c.written == written, lexicon.c.scope == scope
                )
            ).scalar()
            insert = self._insert(lexicon).values(
                written=written, scope=scope, spoken=spoken, updated_at=now
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[lexicon.c.written, lexicon.c.scope],
                    set_={"spoken": spoken, "updated_at": now},
                )
            )
            if known != spoken:
                self._bump(conn)
            return known is None

    def delete_lexicon(self, written: str, source: str | None) -> bool:
        with self._begin() as conn:
            gone = conn.execute(
                sa.delete(lexicon).where(
                    lexicon.c.written == written, lexicon.c.scope == (source or "")
                )
            )
            if gone.rowcount:
                self._bump(conn)
            return bool(gone.rowcount)

    def articles_saying(self, written: str, sources: Sequence[str] | None) -> list[str]:
        query = sa.select(articles.c.id).where(
            articles.c.rendering.is_not(None),
            articles.c.sentences.like(_like(written), escape="\\"),
        )
        if sources is not None:
            query = query.where(
                articles.c.id.in_(
                    sa.select(source_items.c.article_id).where(
                        source_items.c.source_id.in_(list(sources))
                    )
                )
            )
        return [r["id"] for r in self._rows(query.order_by(articles.c.id))]

    def sources_of(self, article_ids: Iterable[str] | None = None) -> Mapping[str, frozenset[str]]:
        query = sa.select(source_items.c.article_id, source_items.c.source_id).where(
            source_items.c.article_id.is_not(None)
        )
        if article_ids is not None:
            query = query.where(source_items.c.article_id.in_(list(article_ids)))
        out: dict[str, set[str]] = {}
        for row in self._rows(query):
            out.setdefault(row["article_id"], set()).add(row["source_id"])
        return {a: frozenset(s) for a, s in out.items()}
