"""The registry in SQL: one code path (SQLAlchemy Core) for SQLite and PostgreSQL.

The dialect modules (`sqlite.py`, `postgresql.py`) only build an engine; everything an
article goes through is written here once. The schema is brought up to date by Alembic at
start-up (`migrate`): a new database gets today's tables at once, an existing one runs the
revisions it lacks, and a SQLite file from before Alembic (its `schema_version` table) is
stamped at the revision it had reached and carried on from there.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from service.errors import BackendUnavailableError, StorageFullError
from service.store.registry import (
    ArticleRecord,
    BlobGroup,
    Finished,
    Priority,
    Status,
    utc_now,
)
from service.store.registry.schema import _instant, _ms, articles, blobs, deployments, metadata
from service.store.registry.sql_analytics import AnalyticsSql
from service.store.registry.sql_lexicon import LexiconSql
from service.store.registry.sql_sources import SourcesSql

HEAD = "0007"  # the newest revision in migrations/versions (a test checks it)
# The revision a pre-Alembic SQLite file had reached, by its schema_version.
_LEGACY = {1: "0001", 2: "0002", 3: "0003"}
_MIGRATION_LOCK = 0x6C616E67  # "lang": one PostgreSQL advisory lock for every replica
_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


def _record(row: sa.RowMapping) -> ArticleRecord:
    work = row["work"]
    return ArticleRecord(
        id=row["id"],
        title=row["title"],
        url=row["url"],
        voice=row["voice"],
        rate=row["rate"],
        pitch=row["pitch"],
        sentences=tuple((int(p), str(t)) for p, t in json.loads(row["sentences"])),
        status=Status(row["status"]),
        error=row["error"],
        rendering=row["rendering"],
        degraded=row["degraded"],
        duration_ms=row["duration_ms"],
        bytes=row["bytes"],
        work=None if work is None else Priority(work),
        upgrade_at=_instant(row["upgrade_at"]),
        upgrade_delay_s=row["upgrade_delay_s"],
        published=bool(row["published"]),
        category=row["category"],
        feed_at=_instant(row["feed_at"]),
        published_at=_instant(row["published_at"]),
        episode_rendering=row["episode_rendering"],
        episode_bytes=row["episode_bytes"],
        episode_ms=row["episode_ms"],
        created_at=_instant(row["created_at"]) or datetime(1970, 1, 1, tzinfo=UTC),
        updated_at=_instant(row["updated_at"]) or datetime(1970, 1, 1, tzinfo=UTC),
    )


def alembic_config(connection: sa.Connection) -> Config:
    """Alembic's configuration for the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", "service.store.registry:migrations")
    config.attributes["connection"] = connection
    return config


def migrate(engine: sa.Engine) -> str:
    """Bring the schema up to date in one transaction (on PostgreSQL under an advisory
    lock, so replicas starting together migrate once). Returns the revision reached."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        current = MigrationContext.configure(conn).get_current_revision()
        if current == HEAD:
            return HEAD
        config = alembic_config(conn)
        tables = set(sa.inspect(conn).get_table_names())
        if current is None and "schema_version" in tables:
            version = conn.execute(sa.text("SELECT version FROM schema_version")).scalar()
            reached = _LEGACY.get(int(version or 0))
            if reached is not None:
                command.stamp(config, reached)
            conn.execute(sa.text("DROP TABLE schema_version"))
        elif current is None and "articles" not in tables:
            metadata.create_all(conn)  # a new database: today's tables, no history to replay
            command.stamp(config, HEAD)
            return HEAD
        command.upgrade(config, "head")
        revision = MigrationContext.configure(conn).get_current_revision()
        return str(revision)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The database's own errors as langdu's: a full disk, a server out of reach."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            if "full" in str(orig):
                raise StorageFullError("the database disk is full; try again later") from exc
            raise
        if getattr(orig, "sqlstate", None) == _DISK_FULL:
            raise StorageFullError("the database disk is full; try again later") from exc
        raise BackendUnavailableError("the database is unavailable; try again later") from exc
    except sa.exc.InterfaceError as exc:  # the connection went away mid-call
        raise BackendUnavailableError("the database is unavailable; try again later") from exc


class SqlRegistry(LexiconSql, SourcesSql, AnalyticsSql):
    """Articles and the blob index in a SQL database, shared by the threads of a process
    (and, on PostgreSQL, by every replica and worker)."""

    def __init__(self, engine: sa.Engine, *, serialize: bool = False) -> None:
        self.engine = engine
        # SQLite: one connection, so calls take turns; PostgreSQL: a connection pool.
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if serialize else contextlib.nullcontext()
        )
        self._insert = (
            pg_dialect.insert if engine.dialect.name == "postgresql" else sqlite_dialect.insert
        )
        with self._lock, _translated():
            self.revision = migrate(engine)

    def close(self) -> None:
        with self._lock:  # never under a call another thread is making (SQLite's one connection)
            self.engine.dispose()

    def ping(self) -> None:
        self._one(sa.select(sa.literal(1).label("one")))

    def _rows(self, statement: sa.Executable) -> list[sa.RowMapping]:
        with self._lock, _translated(), self.engine.begin() as conn:
            return list(conn.execute(statement).mappings())

    def _one(self, statement: sa.Executable) -> sa.RowMapping | None:
        rows = self._rows(statement)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """One transaction, taking turns on SQLite, with the database's errors translated."""
        with self._lock, _translated(), self.engine.begin() as conn:
            yield conn

    def _run(self, statement: sa.Executable, params: Sequence[Mapping[str, Any]] = ()) -> int:
        with self._lock, _translated(), self.engine.begin() as conn:
            result = conn.execute(statement, list(params)) if params else conn.execute(statement)
            return int(result.rowcount)

    def _article(self, article_id: str, **values: Any) -> int:
        return self._run(
            sa.update(articles)
            .where(articles.c.id == article_id)
            .values(**values, updated_at=_ms(utc_now()))
        )

    # --- articles ----------------------------------------------------------------------

    def get(self, article_id: str) -> ArticleRecord | None:
        row = self._one(sa.select(articles).where(articles.c.id == article_id))
        return None if row is None else _record(row)

    def add(self, record: ArticleRecord) -> tuple[ArticleRecord, bool]:
        now = utc_now()
        rec = replace(record, created_at=now, updated_at=now)
        insert = (
            self._insert(articles)
            .values(
                id=rec.id,
                title=rec.title,
                url=rec.url,
                voice=rec.voice,
                rate=rec.rate,
                pitch=rec.pitch,
                sentences=json.dumps(rec.sentences, ensure_ascii=False),
                status=rec.status.value,
                published_at=_ms(rec.published_at),
                created_at=_ms(now),
                updated_at=_ms(now),
            )
            .on_conflict_do_nothing(index_elements=[articles.c.id])
            .returning(articles.c.id)
        )
        created = self._one(insert) is not None
        stored = self.get(rec.id)
        assert stored is not None
        return stored, created

    def set_work(self, article_id: str, priority: Priority | None) -> None:
        self._article(article_id, work=None if priority is None else int(priority))

    def start(self, article_id: str) -> None:
        self._article(
            article_id,
            status=sa.case(
                (articles.c.rendering.is_(None), Status.SYNTHESIZING.value),
                else_=articles.c.status,
            ),
        )

    def finish(self, article_id: str, done: Finished) -> None:
        self._article(
            article_id,
            status=Status.READY.value,
            error=None,
            rendering=done.rendering,
            degraded=done.degraded,
            duration_ms=done.duration_ms,
            bytes=done.size,
            work=None,
            upgrade_at=_ms(done.upgrade_at),
            upgrade_delay_s=done.upgrade_delay_s,
        )

    def fail(self, article_id: str, error: str) -> None:
        self._article(
            article_id,
            status=sa.case(
                (articles.c.rendering.is_(None), Status.FAILED.value), else_=articles.c.status
            ),
            error=error,
            work=None,
        )

    def schedule_upgrade(self, article_id: str, at: datetime | None, delay_s: float | None) -> None:
        self._article(article_id, upgrade_at=_ms(at), upgrade_delay_s=delay_s)

    def upgrades_due(self, now: datetime) -> list[ArticleRecord]:
        rows = self._rows(
            sa.select(articles)
            .where(articles.c.upgrade_at.is_not(None), articles.c.upgrade_at <= _ms(now))
            .order_by(articles.c.upgrade_at)
        )
        return [_record(r) for r in rows]

    def next_upgrade(self) -> datetime | None:
        row = self._one(
            sa.select(sa.func.min(articles.c.upgrade_at).label("at")).where(
                articles.c.upgrade_at.is_not(None)
            )
        )
        return None if row is None else _instant(row["at"])

    def publish(self, article_id: str, *, category: str | None) -> None:
        now = _ms(utc_now())
        self._article(
            article_id,
            published=True,
            category=sa.func.coalesce(category, articles.c.category),
            feed_at=sa.func.coalesce(articles.c.feed_at, now),
        )

    def set_episode(self, article_id: str, *, rendering: str, size: int, duration_ms: int) -> None:
        self._article(
            article_id, episode_rendering=rendering, episode_bytes=size, episode_ms=duration_ms
        )

    def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        query = sa.select(articles).where(
            articles.c.published.is_(True), articles.c.episode_bytes.is_not(None)
        )
        if category is not None:
            query = query.where(articles.c.category == category)
        rows = self._rows(
            query.order_by(
                sa.func.coalesce(articles.c.published_at, articles.c.feed_at).desc(),
                articles.c.id,
            ).limit(limit)
        )
        return [_record(r) for r in rows]

    def unfinished(self) -> list[ArticleRecord]:
        episode_behind = sa.and_(
            articles.c.published.is_(True),
            sa.or_(
                articles.c.episode_rendering.is_(None),
                articles.c.episode_rendering != articles.c.rendering,
            ),
        )
        rows = self._rows(
            sa.select(articles)
            .where(
                sa.or_(
                    articles.c.work.is_not(None),
                    articles.c.status == Status.SYNTHESIZING.value,
                    episode_behind,
                )
            )
            .order_by(
                sa.func.coalesce(articles.c.work, int(Priority.BACKGROUND)),
                articles.c.created_at,
                articles.c.id,
            )
        )
        return [_record(r) for r in rows]

    def forget_rendering(self, article_id: str, rendering: str) -> None:
        self._run(
            sa.update(articles)
            .where(articles.c.id == article_id, articles.c.rendering == rendering)
            .values(
                status=Status.EVICTED.value,
                rendering=None,
                degraded=None,
                updated_at=_ms(utc_now()),
            )
        )

    def newest_deployment(self, fingerprint: str) -> str:
        insert = self._insert(deployments).values(
            fingerprint=fingerprint, first_seen=_ms(utc_now())
        )
        self._run(insert.on_conflict_do_nothing(index_elements=[deployments.c.fingerprint]))
        row = self._one(
            sa.select(deployments.c.fingerprint)
            .order_by(deployments.c.first_seen.desc(), deployments.c.fingerprint.desc())
            .limit(1)
        )
        return fingerprint if row is None else str(row["fingerprint"])

    # --- the blob index ----------------------------------------------------------------

    def blob_added(
        self, key: str, *, size: int, group: str, evictable: bool, sha256: str | None = None
    ) -> None:
        insert = self._insert(blobs).values(
            key=key,
            size=size,
            grp=group,
            evictable=evictable,
            used_at=_ms(utc_now()),
            sha256=sha256,
        )
        self._run(
            insert.on_conflict_do_update(
                index_elements=[blobs.c.key],
                set_={
                    "size": insert.excluded.size,
                    "used_at": insert.excluded.used_at,
                    "sha256": insert.excluded.sha256,
                },
            )
        )

    def blob_found(self, key: str, *, size: int, group: str, used_at: datetime) -> bool:
        insert = (
            self._insert(blobs)
            .values(key=key, size=size, grp=group, evictable=True, used_at=_ms(used_at))
            .on_conflict_do_nothing(index_elements=[blobs.c.key])
            .returning(blobs.c.key)
        )
        return self._one(insert) is not None

    def blob_digest(self, key: str) -> tuple[int, str | None] | None:
        row = self._one(sa.select(blobs.c.size, blobs.c.sha256).where(blobs.c.key == key))
        return None if row is None else (int(row["size"]), row["sha256"])

    def blobs_to_scrub(self, after: str, limit: int) -> list[tuple[str, int, str]]:
        rows = self._rows(
            sa.select(blobs.c.key, blobs.c.size, blobs.c.sha256)
            .where(blobs.c.sha256.is_not(None), blobs.c.key > after)
            .order_by(blobs.c.key)
            .limit(limit)
        )
        return [(str(r["key"]), int(r["size"]), str(r["sha256"])) for r in rows]

    def blobs_used(self, keys: Sequence[str], at: datetime) -> None:
        if keys:
            self._run(
                sa.update(blobs)
                .where(blobs.c.key == sa.bindparam("k"))
                .values(used_at=sa.bindparam("at")),
                [{"k": k, "at": _ms(at)} for k in keys],
            )

    def blob_removed(self, keys: Sequence[str]) -> None:
        if keys:
            self._run(sa.delete(blobs).where(blobs.c.key.in_(list(keys))))

    def blob_bytes(self) -> int:
        row = self._one(
            sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0).label("n")).where(
                blobs.c.evictable.is_(True)
            )
        )
        return int(row["n"]) if row is not None else 0

    def least_recent(self, limit: int) -> list[BlobGroup]:
        rows = self._rows(
            sa.select(
                blobs.c.grp,
                sa.func.aggregate_strings(blobs.c.key, "\n").label("keys"),
                sa.func.sum(blobs.c.size).label("size"),
            )
            .where(blobs.c.evictable.is_(True))
            .group_by(blobs.c.grp)
            .order_by(sa.func.max(blobs.c.used_at), blobs.c.grp)
            .limit(limit)
        )
        return [
            BlobGroup(group=r["grp"], keys=tuple(str(r["keys"]).split("\n")), size=int(r["size"]))
            for r in rows
        ]
