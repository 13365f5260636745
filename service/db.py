"""The article registry: what was posted, with which voice, and how far synthesis got (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from service.errors import LangduError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id           TEXT PRIMARY KEY,
    title        TEXT,
    url          TEXT,
    voice        TEXT NOT NULL,
    rate         TEXT NOT NULL,
    pitch        TEXT NOT NULL,
    status       TEXT NOT NULL,
    duration_ms  INTEGER,
    bytes        INTEGER,
    error        TEXT,
    sentences    TEXT NOT NULL,
    published_at TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
"""
# Columns added after the first release, created on open when a database lacks them.
_ADDED_COLUMNS = (
    ("published", "INTEGER NOT NULL DEFAULT 0"),
    ("category", "TEXT"),
    ("feed_at", "TEXT"),
    ("episode_bytes", "INTEGER"),
    ("episode_ms", "INTEGER"),
    ("degraded", "TEXT"),  # the fallback voice that read it, while the asked-for one failed
)
_FIELDS = ("id, title, url, voice, rate, pitch, status, sentences, duration_ms, bytes, error,"
           " published_at, created_at, updated_at, published, category, feed_at, episode_bytes,"
           " episode_ms, degraded")

QUEUED, SYNTHESIZING, READY, FAILED = "queued", "synthesizing", "ready", "failed"


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """One registered article. `sentences` holds (paragraph, text) pairs in reading order."""

    id: str
    title: str | None
    url: str | None
    voice: str
    rate: str
    pitch: str
    status: str
    sentences: tuple[tuple[int, str], ...]
    duration_ms: int | None = None
    bytes: int | None = None
    error: str | None = None
    published_at: str | None = None
    created_at: str = ""
    updated_at: str = ""
    published: bool = False
    category: str | None = None
    feed_at: str | None = None  # when it was published to the feed
    episode_bytes: int | None = None
    episode_ms: int | None = None
    degraded: str | None = None


def _record(row: tuple[object, ...]) -> ArticleRecord:
    (id_, title, url, voice, rate, pitch, status, sentences, duration_ms, size, error,
     published_at, created_at, updated_at, published, category, feed_at, episode_bytes,
     episode_ms, degraded) = row
    return ArticleRecord(
        id=str(id_), title=title if isinstance(title, str) else None,
        url=url if isinstance(url, str) else None, voice=str(voice), rate=str(rate),
        pitch=str(pitch), status=str(status),
        sentences=tuple((int(p), str(t)) for p, t in json.loads(str(sentences))),
        duration_ms=duration_ms if isinstance(duration_ms, int) else None,
        bytes=size if isinstance(size, int) else None,
        error=error if isinstance(error, str) else None,
        published_at=published_at if isinstance(published_at, str) else None,
        created_at=str(created_at), updated_at=str(updated_at), published=bool(published),
        category=category if isinstance(category, str) else None,
        feed_at=feed_at if isinstance(feed_at, str) else None,
        episode_bytes=episode_bytes if isinstance(episode_bytes, int) else None,
        episode_ms=episode_ms if isinstance(episode_ms, int) else None,
        degraded=degraded if isinstance(degraded, str) else None,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    """Articles in one SQLite file. Calls block briefly: run them off the event loop."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(articles)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE articles ADD COLUMN {name} {decl}")
        self._lock = threading.Lock()
        # Nothing is synthesizing in a process that just started: what was, starts over.
        self._db.execute("UPDATE articles SET status=? WHERE status=?", (QUEUED, SYNTHESIZING))

    @classmethod
    def connect(cls, url: str) -> Registry:
        """Open the registry named by a database URL (sqlite:///path/to/file.db).

        Raises:
            LangduError: a scheme other than sqlite (PostgreSQL support is not built in yet).
        """
        parsed = urlparse(url)
        if parsed.scheme != "sqlite":
            raise LangduError(f"unsupported database URL {parsed.scheme}://... (use sqlite:///path)")
        return cls(Path(parsed.path))

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def get(self, article_id: str) -> ArticleRecord | None:
        """The article with this id, if registered."""
        with self._lock:
            row = self._db.execute(f"SELECT {_FIELDS} FROM articles WHERE id=?",
                                   (article_id,)).fetchone()
        return None if row is None else _record(row)

    def publish(self, article_id: str, *, category: str | None) -> None:
        """Put an article in the feed (the first publication time is kept)."""
        now = _now()
        with self._lock:
            self._db.execute(
                "UPDATE articles SET published=1, category=COALESCE(?, category),"
                " feed_at=COALESCE(feed_at, ?), updated_at=? WHERE id=?",
                (category, now, now, article_id),
            )

    def set_episode(self, article_id: str, *, size: int, duration_ms: int) -> None:
        """Record that the article's episode file is ready."""
        with self._lock:
            self._db.execute(
                "UPDATE articles SET episode_bytes=?, episode_ms=?, updated_at=? WHERE id=?",
                (size, duration_ms, _now(), article_id),
            )

    def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        """Published articles whose episode is ready, newest first."""
        where = "published=1 AND episode_bytes IS NOT NULL"
        args: tuple[object, ...] = ()
        if category is not None:
            where += " AND category=?"
            args = (category,)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FIELDS} FROM articles WHERE {where}"
                " ORDER BY COALESCE(published_at, feed_at) DESC, id LIMIT ?", (*args, limit),
            ).fetchall()
        return [_record(r) for r in rows]

    def add(self, record: ArticleRecord) -> tuple[ArticleRecord, bool]:
        """Register an article unless its id exists. Returns (stored record, created)."""
        now = _now()
        rec = replace(record, created_at=now, updated_at=now)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO articles (id, title, url, voice, rate, pitch, status,"
                " sentences, published_at, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (rec.id, rec.title, rec.url, rec.voice, rec.rate, rec.pitch, rec.status,
                 json.dumps(rec.sentences, ensure_ascii=False), rec.published_at, now, now),
            )
            created = cur.rowcount == 1
        stored = self.get(rec.id)
        assert stored is not None
        return stored, created

    def set_status(self, article_id: str, status: str, *, duration_ms: int | None = None,
                   size: int | None = None, error: str | None = None,
                   degraded: str | None = None) -> None:
        """Record progress: queued -> synthesizing -> ready | failed.

        On ready, `degraded` names the fallback voice that read the article (None: the
        voice asked for).
        """
        with self._lock:
            self._db.execute(
                "UPDATE articles SET status=?, duration_ms=COALESCE(?, duration_ms),"
                " bytes=COALESCE(?, bytes), error=?, updated_at=?,"
                " degraded=CASE WHEN ?=? THEN ? ELSE degraded END WHERE id=?",
                (status, duration_ms, size, error, _now(), status, READY, degraded, article_id),
            )
