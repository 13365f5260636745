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
            row = self._db.execute(
                "SELECT id, title, url, voice, rate, pitch, status, sentences, duration_ms,"
                " bytes, error, published_at, created_at, updated_at FROM articles WHERE id=?",
                (article_id,),
            ).fetchone()
        if row is None:
            return None
        return ArticleRecord(
            id=row[0], title=row[1], url=row[2], voice=row[3], rate=row[4], pitch=row[5],
            status=row[6], sentences=tuple((int(p), str(t)) for p, t in json.loads(row[7])),
            duration_ms=row[8], bytes=row[9], error=row[10], published_at=row[11],
            created_at=row[12], updated_at=row[13],
        )

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
                   size: int | None = None, error: str | None = None) -> None:
        """Record progress: queued -> synthesizing -> ready | failed."""
        with self._lock:
            self._db.execute(
                "UPDATE articles SET status=?, duration_ms=COALESCE(?, duration_ms),"
                " bytes=COALESCE(?, bytes), error=?, updated_at=? WHERE id=?",
                (status, duration_ms, size, error, _now(), article_id),
            )
