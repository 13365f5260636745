"""The registry's sources (followed feeds) and their items, in SQL: a part of SqlRegistry
kept apart so that each stays short enough to read."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from service.store.registry import SourceRecord, utc_now
from service.store.registry.schema import _instant, _ms, lexicon, source_items, sources


def _source(row: sa.RowMapping) -> SourceRecord:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return SourceRecord(
        id=row["id"],
        feed_url=row["feed_url"],
        publish=bool(row["publish"]),
        voice=row["voice"],
        category=row["category"],
        created_at=_instant(row["created_at"]) or epoch,
        next_poll_at=_instant(row["next_poll_at"]) or epoch,
        polled_at=_instant(row["polled_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_error=row["last_error"],
        failures=int(row["failures"]),
        items=int(row["items"] or 0),
    )


class SourcesSql:
    """Sources and their items; SqlRegistry supplies the connection and the helpers."""

    _insert: Any

    def _rows(self, statement: sa.Executable) -> list[sa.RowMapping]:
        raise NotImplementedError

    def _one(self, statement: sa.Executable) -> sa.RowMapping | None:
        raise NotImplementedError

    def _run(self, statement: sa.Executable, params: Sequence[Mapping[str, Any]] = ()) -> int:
        raise NotImplementedError

    def _begin(self) -> contextlib.AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def _bump(self, conn: sa.Connection) -> None:
        raise NotImplementedError

    def _sources_query(self) -> sa.Select[Any]:
        counted = (
            sa.select(sa.func.count())
            .where(source_items.c.source_id == sources.c.id)
            .scalar_subquery()
        )
        return sa.select(sources, counted.label("items"))

    def add_source(self, source: SourceRecord) -> tuple[SourceRecord, bool]:
        now = _ms(utc_now())
        insert = self._insert(sources).values(
            id=source.id,
            feed_url=source.feed_url,
            publish=source.publish,
            voice=source.voice,
            category=source.category,
            created_at=now,
            next_poll_at=now,
            failures=0,
        )
        # RETURNING says whether this call inserted (PostgreSQL's rowcount does not, here).
        added = self._rows(
            insert.on_conflict_do_nothing(index_elements=[sources.c.feed_url]).returning(
                sources.c.id
            )
        )
        row = self._one(self._sources_query().where(sources.c.feed_url == source.feed_url))
        assert row is not None
        return _source(row), bool(added)

    def source(self, source_id: str) -> SourceRecord | None:
        row = self._one(self._sources_query().where(sources.c.id == source_id))
        return None if row is None else _source(row)

    def sources(self) -> list[SourceRecord]:
        rows = self._rows(self._sources_query().order_by(sources.c.created_at, sources.c.id))
        return [_source(r) for r in rows]

    def remove_source(self, source_id: str) -> bool:
        with self._begin() as conn:
            conn.execute(sa.delete(source_items).where(source_items.c.source_id == source_id))
            scoped = conn.execute(sa.delete(lexicon).where(lexicon.c.scope == source_id))
            if scoped.rowcount:
                self._bump(conn)
            gone = conn.execute(sa.delete(sources).where(sources.c.id == source_id))
            return int(gone.rowcount) == 1

    def sources_due(self, now: datetime) -> list[SourceRecord]:
        rows = self._rows(
            self._sources_query()
            .where(sources.c.next_poll_at <= _ms(now))
            .order_by(sources.c.next_poll_at)
        )
        return [_source(r) for r in rows]

    def claim_poll(self, source_id: str, due: datetime, until: datetime) -> bool:
        claimed = self._run(
            sa.update(sources)
            .where(sources.c.id == source_id, sources.c.next_poll_at == _ms(due))
            .values(next_poll_at=_ms(until))
        )
        return claimed == 1

    def poll_done(
        self,
        source_id: str,
        *,
        etag: str | None,
        last_modified: str | None,
        error: str | None,
        failures: int,
        next_poll_at: datetime,
    ) -> None:
        self._run(
            sa.update(sources)
            .where(sources.c.id == source_id)
            .values(
                etag=etag,
                last_modified=last_modified,
                last_error=error,
                failures=failures,
                next_poll_at=_ms(next_poll_at),
                polled_at=_ms(utc_now()),
            )
        )

    def item_known(self, source_id: str, key: str) -> bool:
        row = self._one(
            sa.select(source_items.c.key).where(
                source_items.c.source_id == source_id, source_items.c.key == key
            )
        )
        return row is not None

    def add_item(self, source_id: str, key: str, article_id: str | None) -> None:
        insert = self._insert(source_items).values(
            source_id=source_id, key=key, article_id=article_id, seen_at=_ms(utc_now())
        )
        self._run(
            insert.on_conflict_do_nothing(
                index_elements=[source_items.c.source_id, source_items.c.key]
            )
        )
