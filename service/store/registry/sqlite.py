"""The registry in one SQLite file (the embedded default), with numbered schema migrations."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from service.errors import StorageFullError
from service.store.registry import (
    ArticleRecord,
    BlobGroup,
    Finished,
    Priority,
    Status,
    utc_now,
)


def _ms(when: datetime | None) -> int | None:
    """An aware instant as integer milliseconds since the epoch (UTC): sorts as time does."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _instant(ms: object) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int) else None


def _iso_ms(raw: object) -> int | None:
    """Migration helper: an ISO-8601 string with any (or no) offset -> UTC milliseconds."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return _ms(datetime.fromisoformat(raw))
    except ValueError:
        return None


def _v1(db: sqlite3.Connection) -> None:
    """The first release's table, with the columns it grew before migrations existed."""
    db.execute("""CREATE TABLE IF NOT EXISTS articles (
        id TEXT PRIMARY KEY, title TEXT, url TEXT, voice TEXT NOT NULL, rate TEXT NOT NULL,
        pitch TEXT NOT NULL, status TEXT NOT NULL, duration_ms INTEGER, bytes INTEGER,
        error TEXT, sentences TEXT NOT NULL, published_at TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")
    have = {row[1] for row in db.execute("PRAGMA table_info(articles)")}
    for name, decl in (
        ("published", "INTEGER NOT NULL DEFAULT 0"),
        ("category", "TEXT"),
        ("feed_at", "TEXT"),
        ("episode_bytes", "INTEGER"),
        ("episode_ms", "INTEGER"),
        ("degraded", "TEXT"),
    ):
        if name not in have:
            db.execute(f"ALTER TABLE articles ADD COLUMN {name} {decl}")


def _v2(db: sqlite3.Connection) -> None:
    """Instants as UTC milliseconds, renderings, queued work, persisted upgrades, blob index.

    Audio stored by the first release lived under paths, not blob keys: its articles are
    marked evicted (read again on the next request, published ones right away).
    """
    db.execute("ALTER TABLE articles RENAME TO articles_v1")
    db.execute("""CREATE TABLE articles (
        id TEXT PRIMARY KEY, title TEXT, url TEXT, voice TEXT NOT NULL, rate TEXT NOT NULL,
        pitch TEXT NOT NULL, sentences TEXT NOT NULL,
        status TEXT NOT NULL, error TEXT, rendering TEXT, degraded TEXT,
        duration_ms INTEGER, bytes INTEGER, work INTEGER,
        upgrade_at INTEGER, upgrade_delay_s REAL,
        published INTEGER NOT NULL DEFAULT 0, category TEXT, feed_at INTEGER,
        published_at INTEGER, episode_rendering TEXT, episode_bytes INTEGER,
        episode_ms INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX articles_work ON articles(work) WHERE work IS NOT NULL")
    db.execute("CREATE INDEX articles_upgrade ON articles(upgrade_at) WHERE upgrade_at IS NOT NULL")
    db.execute("CREATE INDEX articles_feed ON articles(published, category)")
    old = db.execute("SELECT * FROM articles_v1")
    names = [d[0] for d in old.description]
    for values in old.fetchall():
        row = dict(zip(names, values, strict=True))
        was = str(row["status"])
        status = (
            Status.EVICTED
            if was == "ready"
            else (Status.FAILED if was == "failed" else Status.QUEUED)
        )
        created = _iso_ms(row["created_at"]) or 0
        db.execute(
            "INSERT INTO articles (id, title, url, voice, rate, pitch, sentences, status, error,"
            " work, published, category, feed_at, published_at, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row["id"],
                row["title"],
                row["url"],
                row["voice"],
                row["rate"],
                row["pitch"],
                row["sentences"],
                status.value,
                row["error"],
                int(Priority.BACKGROUND) if status == Status.QUEUED else None,
                int(bool(row["published"])),
                row["category"],
                _iso_ms(row["feed_at"]),
                _iso_ms(row["published_at"]),
                created,
                _iso_ms(row["updated_at"]) or created,
            ),
        )
    db.execute("DROP TABLE articles_v1")
    db.execute("""CREATE TABLE blobs (
        key TEXT PRIMARY KEY, size INTEGER NOT NULL, grp TEXT NOT NULL,
        evictable INTEGER NOT NULL, used_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX blobs_lru ON blobs(evictable, used_at)")


def _v3(db: sqlite3.Connection) -> None:
    """Blobs carry their SHA-256, checked whenever they are read."""
    db.execute("ALTER TABLE blobs ADD COLUMN sha256 TEXT")


# Numbered migrations: MIGRATIONS[n - 1] takes a database from version n - 1 to n.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema up to date, one numbered migration per transaction.

    Returns the schema version.
    """
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        db.execute("INSERT INTO schema_version VALUES (0)")
        version = 0
    else:
        version = int(row[0])
    for number, step in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute("UPDATE schema_version SET version=?", (number,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        version = number
    return version


def _record(row: sqlite3.Row) -> ArticleRecord:
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


class SqliteRegistry:
    """The registry in one SQLite file (WAL), shared by the threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.Lock()
        with self._lock:
            self.version = migrate(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
        return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _run(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock, _disk_full_is_storage_full():
            return self._db.execute(sql, args).rowcount

    # --- articles ----------------------------------------------------------------------

    def get(self, article_id: str) -> ArticleRecord | None:
        row = self._one("SELECT * FROM articles WHERE id=?", (article_id,))
        return None if row is None else _record(row)

    def add(self, record: ArticleRecord) -> tuple[ArticleRecord, bool]:
        now = utc_now()
        rec = replace(record, created_at=now, updated_at=now)
        created = (
            self._run(
                "INSERT OR IGNORE INTO articles (id, title, url, voice, rate, pitch, sentences,"
                " status, published_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.id,
                    rec.title,
                    rec.url,
                    rec.voice,
                    rec.rate,
                    rec.pitch,
                    json.dumps(rec.sentences, ensure_ascii=False),
                    rec.status.value,
                    _ms(rec.published_at),
                    _ms(now),
                    _ms(now),
                ),
            )
            == 1
        )
        stored = self.get(rec.id)
        assert stored is not None
        return stored, created

    def set_work(self, article_id: str, priority: Priority | None) -> None:
        self._run(
            "UPDATE articles SET work=?, updated_at=? WHERE id=?",
            (None if priority is None else int(priority), _ms(utc_now()), article_id),
        )

    def start(self, article_id: str) -> None:
        self._run(
            "UPDATE articles SET status=CASE WHEN rendering IS NULL THEN ? ELSE status END,"
            " updated_at=? WHERE id=?",
            (Status.SYNTHESIZING.value, _ms(utc_now()), article_id),
        )

    def finish(self, article_id: str, done: Finished) -> None:
        self._run(
            "UPDATE articles SET status=?, error=NULL, rendering=?, degraded=?, duration_ms=?,"
            " bytes=?, work=NULL, upgrade_at=?, upgrade_delay_s=?, updated_at=? WHERE id=?",
            (
                Status.READY.value,
                done.rendering,
                done.degraded,
                done.duration_ms,
                done.size,
                _ms(done.upgrade_at),
                done.upgrade_delay_s,
                _ms(utc_now()),
                article_id,
            ),
        )

    def fail(self, article_id: str, error: str) -> None:
        self._run(
            "UPDATE articles SET status=CASE WHEN rendering IS NULL THEN ? ELSE status END,"
            " error=?, work=NULL, updated_at=? WHERE id=?",
            (Status.FAILED.value, error, _ms(utc_now()), article_id),
        )

    def schedule_upgrade(self, article_id: str, at: datetime | None, delay_s: float | None) -> None:
        self._run(
            "UPDATE articles SET upgrade_at=?, upgrade_delay_s=?, updated_at=? WHERE id=?",
            (_ms(at), delay_s, _ms(utc_now()), article_id),
        )

    def upgrades_due(self, now: datetime) -> list[ArticleRecord]:
        rows = self._all(
            "SELECT * FROM articles WHERE upgrade_at IS NOT NULL AND upgrade_at<=?"
            " ORDER BY upgrade_at",
            (_ms(now),),
        )
        return [_record(r) for r in rows]

    def next_upgrade(self) -> datetime | None:
        row = self._one("SELECT MIN(upgrade_at) FROM articles WHERE upgrade_at IS NOT NULL", ())
        return None if row is None else _instant(row[0])

    def publish(self, article_id: str, *, category: str | None) -> None:
        now = _ms(utc_now())
        self._run(
            "UPDATE articles SET published=1, category=COALESCE(?, category),"
            " feed_at=COALESCE(feed_at, ?), updated_at=? WHERE id=?",
            (category, now, now, article_id),
        )

    def set_episode(self, article_id: str, *, rendering: str, size: int, duration_ms: int) -> None:
        self._run(
            "UPDATE articles SET episode_rendering=?, episode_bytes=?, episode_ms=?,"
            " updated_at=? WHERE id=?",
            (rendering, size, duration_ms, _ms(utc_now()), article_id),
        )

    def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        where = "published=1 AND episode_bytes IS NOT NULL"
        args: tuple[str, ...] = ()
        if category is not None:
            where, args = where + " AND category=?", (category,)
        rows = self._all(
            f"SELECT * FROM articles WHERE {where}"
            " ORDER BY COALESCE(published_at, feed_at) DESC, id LIMIT ?",
            (*args, limit),
        )
        return [_record(r) for r in rows]

    def unfinished(self) -> list[ArticleRecord]:
        rows = self._all(
            "SELECT * FROM articles WHERE work IS NOT NULL OR status=? OR (published=1 AND"
            " (episode_rendering IS NULL OR episode_rendering<>rendering))"
            " ORDER BY COALESCE(work, ?), created_at, id",
            (Status.SYNTHESIZING.value, int(Priority.BACKGROUND)),
        )
        return [_record(r) for r in rows]

    def forget_rendering(self, article_id: str, rendering: str) -> None:
        self._run(
            "UPDATE articles SET status=?, rendering=NULL, degraded=NULL, updated_at=?"
            " WHERE id=? AND rendering=?",
            (Status.EVICTED.value, _ms(utc_now()), article_id, rendering),
        )

    # --- the blob index ----------------------------------------------------------------

    def blob_added(
        self, key: str, *, size: int, group: str, evictable: bool, sha256: str | None = None
    ) -> None:
        self._run(
            "INSERT INTO blobs (key, size, grp, evictable, used_at, sha256) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT(key) DO UPDATE SET size=excluded.size, used_at=excluded.used_at,"
            " sha256=excluded.sha256",
            (key, size, group, int(evictable), _ms(utc_now()), sha256),
        )

    def blob_digest(self, key: str) -> tuple[int, str | None] | None:
        row = self._one("SELECT size, sha256 FROM blobs WHERE key=?", (key,))
        return None if row is None else (int(row[0]), row[1])

    def blobs_to_scrub(self, after: str, limit: int) -> list[tuple[str, int, str]]:
        rows = self._all(
            "SELECT key, size, sha256 FROM blobs WHERE sha256 IS NOT NULL AND key > ?"
            " ORDER BY key LIMIT ?",
            (after, limit),
        )
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def blobs_used(self, keys: Sequence[str], at: datetime) -> None:
        with self._lock, _disk_full_is_storage_full():
            self._db.executemany(
                "UPDATE blobs SET used_at=? WHERE key=?", [(_ms(at), k) for k in keys]
            )

    def blob_removed(self, keys: Sequence[str]) -> None:
        with self._lock, _disk_full_is_storage_full():
            self._db.executemany("DELETE FROM blobs WHERE key=?", [(k,) for k in keys])

    def blob_bytes(self) -> int:
        row = self._one("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE evictable=1", ())
        return int(row[0]) if row is not None else 0

    def least_recent(self, limit: int) -> list[BlobGroup]:
        rows = self._all(
            "SELECT grp, GROUP_CONCAT(key, char(10)), SUM(size) FROM blobs WHERE evictable=1"
            " GROUP BY grp ORDER BY MAX(used_at), grp LIMIT ?",
            (limit,),
        )
        return [
            BlobGroup(group=r[0], keys=tuple(str(r[1]).split("\n")), size=int(r[2])) for r in rows
        ]


@contextlib.contextmanager
def _disk_full_is_storage_full() -> Iterator[None]:
    """SQLite's "database or disk is full" is the same condition as ENOSPC on a blob."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):
            raise StorageFullError("the database disk is full; try again later") from exc
        raise


def connect(url: str) -> SqliteRegistry:
    """sqlite:///absolute/path.db (or sqlite:///relative.db from the working directory)."""
    return SqliteRegistry(Path(unquote(urlparse(url).path)))
