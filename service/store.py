"""Content-addressed audio on disk: atomic writes, a size cap with least-recently-used eviction.

Layout under the root:
    articles/<id>.mp3 .json .vtt   finished articles (audio, timings, captions)
    parts/<k[:2]>/<k>.part          one sentence's MP3 part, keyed by everything that shaped it
    tmp/                            files being written; renamed into place when complete
A crash can leave files in tmp/ (removed at start-up) but never a partial file elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from service.audio import Mp3Part, mp3_frames
from service.errors import AudioError

_PART_MAGIC = b"LDP1"
_ARTICLE_KINDS = ("mp3", "json", "vtt")
_MARKERS = ("degraded",)  # present while a fallback voice reads the article


def part_key(*fields: object) -> str:
    """A stable cache key over everything that determines a sentence's audio."""
    h = hashlib.sha256()
    for f in fields:
        h.update(repr(f).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:40]


class Store:
    """Files for finished articles and per-sentence parts; safe to use from several threads."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._articles = root / "articles"
        self._parts = root / "parts"
        self._tmp = root / "tmp"
        # Published episodes are not cache: they live outside the evicted directories.
        self._episodes = root / "episodes"
        for d in (self._articles, self._parts, self._tmp, self._episodes):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for stale in self._tmp.iterdir():  # left by a crash mid-write: never served
            with contextlib.suppress(OSError):
                stale.unlink()
        self._size = sum(p.stat().st_size for p in self._files())

    @property
    def size(self) -> int:
        """Bytes currently stored (articles and parts)."""
        return self._size

    def _files(self) -> Iterator[Path]:
        for base in (self._articles, self._parts):
            for dirpath, _, names in os.walk(base):
                for name in names:
                    yield Path(dirpath, name)

    # --- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, final: Path) -> Iterator[IO[bytes]]:
        """A temp file that becomes `final` (atomically) only if the block completes."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=final.name + ".")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            old = final.stat().st_size if final.exists() else 0
            os.replace(tmp, final)
            if not final.is_relative_to(self._episodes):  # episodes are outside the cap
                self._grow(final.stat().st_size - old)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def write(self, final: Path, data: bytes) -> None:
        """Write `data` to `final` atomically."""
        with self.writer(final) as out:
            out.write(data)

    def _grow(self, delta: int) -> None:
        with self._lock:
            self._size += delta
            over = self._size > self.max_bytes
        if over:
            self.evict()

    def evict(self) -> int:
        """Drop least recently used files until the store is under 90% of its cap.

        A finished article's files go together. Returns the bytes freed.
        """
        target = int(self.max_bytes * 0.9)
        with self._lock:
            if self._size <= target:
                return 0
            entries: list[tuple[float, int, list[Path]]] = []
            groups: dict[str, list[Path]] = {}
            for path in self._files():
                if path.parent == self._articles:
                    groups.setdefault(path.stem, []).append(path)
                else:
                    groups[str(path)] = [path]
            for paths in groups.values():
                stats = [p.stat() for p in paths if p.exists()]
                if stats:
                    entries.append((max(s.st_mtime for s in stats),
                                    sum(s.st_size for s in stats), paths))
            entries.sort(key=lambda e: e[0])
            freed = 0
            for _, size, paths in entries:
                if self._size - freed <= target:
                    break
                for p in paths:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                freed += size
            self._size -= freed
            return freed

    # --- articles ------------------------------------------------------------------------

    def article_path(self, article_id: str, kind: str) -> Path:
        """Where an article's audio ("mp3"), timings ("json") or captions ("vtt") live."""
        if kind not in _ARTICLE_KINDS + _MARKERS:
            raise ValueError(kind)
        return self._articles / f"{article_id}.{kind}"

    def episode_path(self, article_id: str) -> Path:
        """Where an article's podcast episode lives (never evicted)."""
        return self._episodes / f"{article_id}.mp3"

    def has_article(self, article_id: str) -> bool:
        """True when all of the article's files are complete on disk."""
        return all(self.article_path(article_id, k).exists() for k in _ARTICLE_KINDS)

    def touch(self, path: Path) -> None:
        """Mark a file as used now (eviction drops the least recently used first)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)

    # --- sentence parts ------------------------------------------------------------------

    def _part_path(self, key: str) -> Path:
        return self._parts / key[:2] / f"{key}.part"

    def get_part(self, key: str) -> Mp3Part | None:
        """A cached sentence part, or None (also for a damaged file, which is removed)."""
        path = self._part_path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            if raw[:4] != _PART_MAGIC:
                raise AudioError("bad part header")
            rate, content = struct.unpack_from("<II", raw, 4)
            data = raw[12:]
            frames, spf, _ = mp3_frames(data)
        except (AudioError, struct.error):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        self.touch(path)
        return Mp3Part(data=data, sample_rate=rate, samples=frames * spf, content_samples=content)

    def put_part(self, key: str, part: Mp3Part) -> None:
        """Cache a sentence part."""
        header = _PART_MAGIC + struct.pack("<II", part.sample_rate, part.content_samples)
        self.write(self._part_path(key), header + part.data)
