"""What langdu keeps as blobs, and under which keys: sentence parts, renderings, episodes.

Keys (never paths: the blob store may be a directory or a bucket):
    parts/<k[:2]>/<k>.part                    one sentence's MP3, keyed by all that shaped it
    renders/<id>/<rendering>.mp3 | .json      an article's audio and timings, one rendering
    episodes/<id>/<rendering>.mp3             a published article's podcast episode
Parts and renderings are a cache: capped at `max_bytes`, least recently used evicted first
(recency lives in the registry's blob index, not in file times). Episodes are not evicted.

Every blob's length and SHA-256 are recorded when it is stored and checked whenever it is
read (`read`) and by the scrubber (`scrub`): a damaged blob is deleted, counted, and never
served. A full disk evicts cached audio to make room, then fails cleanly (StorageFullError).

The package holds the state langdu keeps: this store, the part codec (`parts`), the registry
(`registry/`: the authority on each article's status) and the blob stores (`blobs/`), each
chosen by URL (`backends`). It may import `audio`, `config` and `errors`; `core` and above
use it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from service.audio.mp3 import Mp3Part
from service.errors import AudioError, StorageFullError
from service.store.blobs import BlobStore
from service.store.parts import decode_part, encode_part
from service.store.registry import BlobGroup, Registry, utc_now

log = logging.getLogger("langdu.store")
_TOUCH_EVERY = 60.0  # seconds between recency updates of one blob
_LONG_AGO = datetime(1971, 1, 1, tzinfo=UTC)  # found unindexed: evicted before anything else
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_ROOM_MARGIN = 4 * 1024**2


def part_key(*fields: object) -> str:
    """A stable cache key over everything that determines a sentence's audio."""
    h = hashlib.sha256()
    for f in fields:
        h.update(repr(f).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:40]


# A rendering's name as langdu issues it ("<render version>[-<fallback voice>]"): it is a
# blob key segment, so it starts with a letter or digit. URLs are checked against it.
RENDERING_NAME = r"[a-z0-9][a-z0-9-]{0,79}"


def audio_key(article_id: str, rendering: str) -> str:
    """The blob key of one rendering's MP3."""
    return f"renders/{article_id}/{rendering}.mp3"


def timings_key(article_id: str, rendering: str) -> str:
    """The blob key of one rendering's timings JSON."""
    return f"renders/{article_id}/{rendering}.json"


def episode_key(article_id: str, rendering: str) -> str:
    """The blob key of the episode made from one rendering."""
    return f"episodes/{article_id}/{rendering}.mp3"


def _part_blob(key: str) -> str:
    return f"parts/{key[:2]}/{key}.part"


class Store:
    """Audio blobs with a size cap; safe to use from several threads (calls block)."""

    def __init__(
        self,
        blobs: BlobStore,
        index: Registry,
        *,
        max_bytes: int,
        on_damage: Callable[[str], None] = lambda key: None,
    ) -> None:
        self.blobs = blobs
        self.on_damage = on_damage  # the library's, once it runs
        self.max_bytes = max_bytes
        self._index = index
        self._lock = threading.Lock()
        self._evicting = threading.Lock()
        self._touched: dict[str, float] = {}
        self._evicted: list[tuple[str, str]] = []  # renderings dropped, not yet reported
        self._size = index.blob_bytes()

    @property
    def size(self) -> int:
        """Bytes of evictable blobs (parts and renderings) stored now."""
        return self._size

    def reconcile(self) -> int:
        """Index blobs a crash stored but never indexed (they are evicted first), and drop
        index entries whose blob is gone. Returns how many entries changed.

        Other processes may write meanwhile (a cluster): an entry is dropped only if its blob
        is still missing when looked at again, and a blob is indexed only if nobody has
        indexed it since (its writer's digest is never overwritten)."""
        stored = dict(self.blobs.list())
        changed = 0
        indexed: set[str] = set()
        for entry in self._index.least_recent(limit=10**9):
            gone = [k for k in entry.keys if k not in stored and not self.blobs.exists(k)]
            indexed.update(entry.keys)
            if gone:
                self._index.blob_removed(gone)
                changed += len(gone)
        for key, size in stored.items():
            if key not in indexed and not key.startswith("episodes/"):
                group = key.rsplit(".", 1)[0] if key.startswith("renders/") else key
                if self._index.blob_found(key, size=size, group=group, used_at=_LONG_AGO):
                    changed += 1
        self._size = self._index.blob_bytes()
        return changed

    # --- writing -----------------------------------------------------------------------

    def _put(self, key: str, data: bytes, *, group: str, evictable: bool = True) -> None:
        """Store a blob and index it with its length and digest.

        Keys name immutable content, so the first writer of a key wins (`put_new`): a
        second writer, in this process or another, indexes the bytes that are stored, never
        its own, so the index can never condemn a sound blob. Bytes that no longer match
        the index (damaged) are replaced.

        Raises:
            StorageFullError: no room, even after evicting cached audio.
        """
        digest = hashlib.sha256(data).hexdigest()
        recorded = self._index.blob_digest(key)
        if not self._write(key, data, new=True):
            existing = self.blobs.get(key)
            if existing is None:  # deleted since: ours
                self._write(key, data, new=False)
            else:
                theirs = hashlib.sha256(existing).hexdigest()
                recorded = self._index.blob_digest(key)
                damaged = (
                    recorded is not None
                    and recorded[1] is not None
                    and recorded != (len(existing), theirs)
                )
                if damaged:
                    self._write(key, data, new=False)
                else:
                    data, digest = existing, theirs
        self._index.blob_added(key, size=len(data), group=group, evictable=evictable, sha256=digest)
        if evictable:
            with self._lock:
                self._size += len(data) - (recorded[0] if recorded else 0)

    def _write(self, key: str, data: bytes, *, new: bool) -> bool:
        """Write a blob (only if absent, when `new`), evicting to make room on a full disk.

        Raises:
            StorageFullError: no room, even after evicting cached audio.
        """
        put = self.blobs.put_new if new else self.blobs.put
        try:
            return put(key, data) is not False
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            freed = self.make_room(2 * len(data) + _ROOM_MARGIN)
            log.warning("storage full writing %s: evicted %d bytes to make room", key, freed)
            try:
                return put(key, data) is not False
            except OSError as again:
                if again.errno not in _NO_SPACE:
                    raise
                raise StorageFullError("the audio storage is full; try again later") from again

    # --- reading, checked --------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        """A blob, if it is stored and is what was stored: its length and SHA-256 match
        the index. A blob that does not match is deleted and reported (never returned)."""
        data = self.blobs.get(key)
        if data is None:
            return None
        if not self._intact(key, data):
            return None
        return data

    def _intact(
        self, key: str, data: bytes, recorded: tuple[int, str | None] | None = None
    ) -> bool:
        recorded = recorded or self._index.blob_digest(key)
        if recorded is None:
            return True  # not indexed yet (reconciled at start-up): nothing to compare
        size, digest = recorded
        if len(data) == size and (digest is None or hashlib.sha256(data).hexdigest() == digest):
            return True
        self.damaged(key)
        return False

    def damaged(self, key: str) -> None:
        """Delete a blob that failed its check (and, for a rendering, its other file)."""
        log.error("blob %s does not match its recorded length/SHA-256: deleted", key)
        keys = [key]
        if key.startswith("renders/"):
            base = key.rsplit(".", 1)[0]
            keys = [f"{base}.mp3", f"{base}.json"]
        for k in keys:
            with contextlib.suppress(OSError):
                self.blobs.delete(k)
        self._index.blob_removed(keys)
        self._size = self._index.blob_bytes()
        self.on_damage(key)

    def scrub(self, *, after: str = "", max_bytes: int) -> tuple[str, int]:
        """Check stored blobs by their digests, in key order from `after`, reading at most
        about `max_bytes`. Returns (the last key checked or "" at the end, damaged)."""
        read = 0
        damaged = 0
        last = after
        while read < max_bytes:
            batch = self._index.blobs_to_scrub(last, 200)
            if not batch:
                return "", damaged
            for key, size, digest in batch:
                last = key
                data = self.blobs.get(key)
                read += size
                if data is not None and not self._intact(key, data, (size, digest)):
                    damaged += 1
                if read >= max_bytes:
                    break
        return last, damaged

    def make_room(self, wanted: int) -> int:
        """Evict least recently used cached audio until `wanted` bytes are freed (or nothing
        is left to evict). Returns the bytes freed."""
        freed = 0
        with self._evicting:
            while freed < wanted:
                groups = self._index.least_recent(limit=16)
                if not groups:
                    break
                for group in groups:
                    freed += self._drop_group(group)
                    if freed >= wanted:
                        break
        return freed

    def _drop_group(self, group: BlobGroup) -> int:
        for key in group.keys:
            with contextlib.suppress(OSError):
                self.blobs.delete(key)
        self._index.blob_removed(group.keys)
        if group.group.startswith("renders/"):
            _, article_id, rendering = group.group.split("/")
            self._index.forget_rendering(article_id, rendering)
            self._evicted.append((article_id, rendering))
        with self._lock:
            self._size -= group.size
        return group.size

    def refresh_size(self) -> int:
        """Count the cache again from the index (other processes write to it too, in a
        cluster). Returns the bytes of evictable blobs stored now."""
        with self._lock:
            self._size = self._index.blob_bytes()
        return self._size

    @property
    def over_cap(self) -> bool:
        """True when the cache holds more than its cap (the library then evicts)."""
        return self._size > self.max_bytes

    def evict(self) -> list[tuple[str, str]]:
        """Drop least recently used groups until the cache is under 90% of its cap.

        Returns the (article id, rendering) pairs whose audio went, for the registry.
        """
        target = int(self.max_bytes * 0.9)
        freed = 0
        with self._evicting:
            while self._size > target:
                groups = self._index.least_recent(limit=64)
                if not groups:
                    break
                for group in groups:
                    if self._size <= target:
                        break
                    freed += self._drop_group(group)
            renderings, self._evicted = self._evicted, []
        if freed:
            log.info("evicted %d bytes of cached audio", freed)
        return renderings

    def touch(self, *keys: str) -> None:
        """Mark blobs as used now (at most once a minute each: it is a database write)."""
        now = time.monotonic()
        due = [k for k in keys if now - self._touched.get(k, 0.0) > _TOUCH_EVERY]
        if due:
            for k in due:
                self._touched[k] = now
            if len(self._touched) > 100_000:
                self._touched.clear()
            with contextlib.suppress(StorageFullError):  # recency only: never fail a read
                self._index.blobs_used(due, utc_now())

    # --- renderings --------------------------------------------------------------------

    def put_rendering(
        self, article_id: str, rendering: str, *, audio: bytes, timings: bytes
    ) -> None:
        """Store one complete rendering (timings first: the audio's presence means done)."""
        group = f"renders/{article_id}/{rendering}"
        self._put(timings_key(article_id, rendering), timings, group=group)
        self._put(audio_key(article_id, rendering), audio, group=group)

    def has_rendering(self, article_id: str, rendering: str) -> bool:
        """True while both files of the rendering are stored."""
        return self.blobs.exists(audio_key(article_id, rendering)) and self.blobs.exists(
            timings_key(article_id, rendering)
        )

    def timings(self, article_id: str, rendering: str) -> bytes | None:
        """A rendering's timings JSON, if stored (and intact)."""
        return self.read(timings_key(article_id, rendering))

    # --- episodes ----------------------------------------------------------------------

    def put_episode(self, article_id: str, rendering: str, data: bytes) -> None:
        """Store a podcast episode (never evicted)."""
        self._put(
            episode_key(article_id, rendering),
            data,
            group=f"episodes/{article_id}/{rendering}",
            evictable=False,
        )

    def delete_episode(self, article_id: str, rendering: str) -> None:
        """Remove an episode that a newer one replaced."""
        key = episode_key(article_id, rendering)
        self.blobs.delete(key)
        self._index.blob_removed([key])

    # --- sentence parts ----------------------------------------------------------------

    def get_part(self, key: str) -> Mp3Part | None:
        """A cached sentence part, or None (also for a damaged blob, which is removed)."""
        blob = _part_blob(key)
        raw = self.read(blob)
        if raw is None:
            return None
        try:
            part = decode_part(raw)
        except AudioError:
            with contextlib.suppress(OSError):
                self.blobs.delete(blob)
            self._index.blob_removed([blob])
            self._size = self._index.blob_bytes()
            return None
        self.touch(blob)
        return part

    def put_part(self, key: str, part: Mp3Part) -> None:
        """Cache a sentence part."""
        blob = _part_blob(key)
        self._put(blob, encode_part(part), group=blob)
