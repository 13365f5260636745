"""The article registry: the authority on each article's status, rendering, publication and
scheduled work, plus the recency index of stored blobs.

One interface (`Registry`), chosen by the database URL's scheme: `sqlite:///path` is built
in; another backend is one new module `service/registry/<scheme>.py` with a `connect(url)`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from service.store.backends import backend_module


class Status(enum.StrEnum):
    """Where an article's audio stands."""

    QUEUED = "queued"  # registered, nothing stored yet, waiting for a job slot
    SYNTHESIZING = "synthesizing"  # first reading under way
    READY = "ready"  # a complete rendering is stored (maybe being re-rendered)
    FAILED = "failed"  # the last reading failed and nothing is stored
    EVICTED = "evicted"  # the stored rendering aged out of the cache


class Priority(enum.IntEnum):
    """Queued work, most urgent first."""

    LISTENER = 0  # somebody pressed play or posted it just now
    BACKGROUND = 1  # resumed after a restart, published articles, re-renders
    UPGRADE = 2  # reading a degraded article again in its own voice


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """One registered article. `sentences` holds (paragraph, text) pairs in reading order.

    `rendering` names the stored audio (render version, plus "-<voice>" when a fallback
    voice read it); `work` is the priority of work queued or running for it (None: none).
    """

    id: str
    title: str | None
    url: str | None
    voice: str
    rate: str
    pitch: str
    sentences: tuple[tuple[int, str], ...]
    status: Status = Status.QUEUED
    error: str | None = None
    rendering: str | None = None
    degraded: str | None = None
    duration_ms: int | None = None
    bytes: int | None = None
    work: Priority | None = None
    upgrade_at: datetime | None = None
    upgrade_delay_s: float | None = None
    published: bool = False
    category: str | None = None
    feed_at: datetime | None = None
    published_at: datetime | None = None
    episode_rendering: str | None = None
    episode_bytes: int | None = None
    episode_ms: int | None = None
    created_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    updated_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Finished:
    """What a completed reading left in the store."""

    rendering: str
    degraded: str | None
    duration_ms: int
    size: int
    upgrade_at: datetime | None = None  # when to try the asked-for voice again
    upgrade_delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A feed the newsroom had langdu follow: each new item is read (and published)."""

    id: str
    feed_url: str
    publish: bool = False
    voice: str | None = None
    category: str | None = None
    created_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    next_poll_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    polled_at: datetime | None = None  # the last poll that ended, well or not
    etag: str | None = None  # the feed's validators, for a conditional GET
    last_modified: str | None = None
    last_error: str | None = None  # the last poll's failure (None: it went well)
    failures: int = 0  # polls failed in a row (the back-off grows with them)
    items: int = 0  # items taken from the feed so far


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """A newsroom pronunciation: how `written` is said, for every article (source None) or
    for one source's articles."""

    written: str
    spoken: str
    source: str | None = None
    updated_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)


class ListeningEvent(NamedTuple):
    """One event a player (or an app, or the podcast side) reported, as it is kept: a
    random session id for one page view, never an address or a cookie. (A named tuple:
    a batch of them is made on every post and crosses to a database thread, cheaply.)"""

    article_id: str
    session: str
    kind: str  # play, pause, seek, speed, progress, ended, download
    at: datetime  # when it happened (the client's clock, checked against ours)
    client: str = "player"  # player, app, podcast
    position_ms: int | None = None  # where in the audio
    listened_ms: int | None = None  # progress: audio heard since the last report
    speed: float | None = None
    heard: tuple[int, ...] = ()  # progress: sentence indexes heard since the last report
    voice: str | None = None
    degraded: bool | None = None  # play: the article was read in a fallback voice


@dataclass(frozen=True, slots=True)
class ListeningDay:
    """An article's listening on one day (UTC), as the roll-up counted it."""

    article_id: str
    day: str  # YYYY-MM-DD
    sessions: int = 0  # page views (and downloads) that reported anything
    plays: int = 0  # sessions that played
    downloads: int = 0  # feed downloads (a play only of their own kind)
    listened_ms: int = 0
    quartiles: tuple[int, int, int, int] = (0, 0, 0, 0)  # sessions reaching 25/50/75/100 %
    reach: tuple[int, ...] = ()  # per sentence: the sessions that heard it
    speeds: Mapping[str, int] = field(default_factory=dict)  # speed -> listened ms
    voices: Mapping[str, int] = field(default_factory=dict)  # voice -> plays
    degraded: int = 0  # plays of a fallback voice's reading


@dataclass(frozen=True, slots=True)
class BlobGroup:
    """Blobs evicted together (an article's audio and timings), with their total size."""

    group: str
    keys: tuple[str, ...]
    size: int


class Registry(Protocol):
    """Articles and the blob index. Calls block briefly: run them off the event loop."""

    def close(self) -> None:
        """Release the database."""

    def ping(self) -> None:
        """Reach the database (a trivial query).

        Raises:
            BackendUnavailableError: it cannot be reached now.
        """

    def get(self, article_id: str) -> ArticleRecord | None:
        """The article with this id, if registered."""

    def add(self, record: ArticleRecord) -> tuple[ArticleRecord, bool]:
        """Register an article unless its id exists. Returns (stored record, created)."""

    def set_work(self, article_id: str, priority: Priority | None) -> None:
        """Record that work is queued for the article (None: no work any more)."""

    def start(self, article_id: str) -> None:
        """A reading started: synthesizing, unless a rendering is stored already."""

    def finish(self, article_id: str, done: Finished) -> None:
        """A reading completed: ready, with this rendering (and upgrade schedule)."""

    def fail(self, article_id: str, error: str) -> None:
        """A reading failed: failed if nothing is stored, else the stored audio stays."""

    def schedule_upgrade(self, article_id: str, at: datetime | None, delay_s: float | None) -> None:
        """Try the article's own voice again at `at`, then `delay_s` later (None: never)."""

    def upgrades_due(self, now: datetime) -> list[ArticleRecord]:
        """Degraded articles whose upgrade time has come, earliest first."""

    def next_upgrade(self) -> datetime | None:
        """The earliest scheduled upgrade, if any."""

    def publish(self, article_id: str, *, category: str | None) -> None:
        """Put an article in the feed (the first publication time is kept)."""

    def set_episode(self, article_id: str, *, rendering: str, size: int, duration_ms: int) -> None:
        """Record the article's podcast episode, made from `rendering`."""

    def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        """Published articles whose episode is ready, newest first."""

    def unfinished(self) -> list[ArticleRecord]:
        """What was left to do: queued or running work, published articles whose episode
        is missing or older than their stored audio. Most urgent first, then oldest first."""

    def forget_rendering(self, article_id: str, rendering: str) -> None:
        """The stored rendering is gone (evicted, damaged): evicted, if it was the current one."""

    def add_source(self, source: SourceRecord) -> tuple[SourceRecord, bool]:
        """Record a source (a feed URL already recorded: that one, and False)."""
        ...

    def source(self, source_id: str) -> SourceRecord | None: ...

    def sources(self) -> list[SourceRecord]:
        """Every source, oldest first, with its item count."""
        ...

    def remove_source(self, source_id: str) -> bool:
        """Forget a source and its items; False if there was none."""
        ...

    def sources_due(self, now: datetime) -> list[SourceRecord]: ...

    def claim_poll(self, source_id: str, due: datetime, until: datetime) -> bool:
        """Take the poll that was due at `due` (nobody else will poll before `until`):
        True for exactly one caller in the whole deployment."""
        ...

    def poll_done(
        self,
        source_id: str,
        *,
        etag: str | None,
        last_modified: str | None,
        error: str | None,
        failures: int,
        next_poll_at: datetime,
    ) -> None: ...

    def item_known(self, source_id: str, key: str) -> bool: ...

    def add_item(self, source_id: str, key: str, article_id: str | None) -> None:
        """Record a feed item taken (None: it had nothing to read); once per key."""
        ...

    # --- the lexicon (the newsroom's pronunciations) ---

    def lexicon_revision(self) -> int:
        """A number that moves with every change to the lexicon (0: never changed)."""
        ...

    def lexicon_entries(self) -> tuple[int, list[LexiconEntry]]:
        """The revision and every entry at it (read together)."""
        ...

    def put_lexicon(self, written: str, spoken: str, source: str | None) -> bool:
        """Say `written` as `spoken` (for `source`'s articles only, if given); True if the
        entry is new. The revision moves if anything changed."""
        ...

    def delete_lexicon(self, written: str, source: str | None) -> bool:
        """Forget an entry; False if there was none."""
        ...

    def articles_saying(self, written: str, sources: Sequence[str] | None) -> list[str]:
        """The articles with stored audio whose text holds `written` (only those taken from
        `sources`, if given)."""
        ...

    def sources_of(self, article_ids: Iterable[str] | None = None) -> Mapping[str, frozenset[str]]:
        """The sources each article was taken from (of `article_ids`, or of every article)."""
        ...

    # --- listening analytics ---

    def add_events(self, events: Sequence[ListeningEvent], received_at: datetime) -> None:
        """Append a batch of events (all or none)."""
        ...

    def roll_up(self, now: datetime, keep_days: int, limit: int = 20_000) -> tuple[int, int]:
        """Fold events not yet rolled up (at most `limit`) into their sessions and days,
        then delete events and sessions older than `keep_days`; the events folded and the
        sessions that started playing. Safe to run from several processes at once: each
        event counts once."""
        ...

    def listening_days(self, article_id: str | None, first: str, last: str) -> list[ListeningDay]:
        """The days from `first` to `last` (YYYY-MM-DD, both included) of one article, or
        of every article, in order of article and day."""
        ...

    def newest_deployment(self, fingerprint: str) -> str:
        """Record this process's deployment (what shapes audio: code and settings), if it
        is new, and return the newest one recorded (first seen last)."""

    # --- the blob index (recency for eviction) ---

    def blob_added(
        self, key: str, *, size: int, group: str, evictable: bool, sha256: str | None = None
    ) -> None:
        """A blob was stored (or replaced), with its length and SHA-256."""

    def blob_found(self, key: str, *, size: int, group: str, used_at: datetime) -> bool:
        """Index an evictable blob found stored but not indexed, unless it has been indexed
        since (by its writer, with its digest). Returns True if it was indexed now."""

    def blob_digest(self, key: str) -> tuple[int, str | None] | None:
        """A blob's recorded (length, SHA-256), if it is indexed (the digest may be
        unknown for blobs stored before digests were kept)."""

    def blobs_to_scrub(self, after: str, limit: int) -> list[tuple[str, int, str]]:
        """Indexed blobs with a digest, in key order after `after`: (key, size, sha256)."""

    def blobs_used(self, keys: Sequence[str], at: datetime) -> None:
        """Blobs were read at `at`."""

    def blob_removed(self, keys: Sequence[str]) -> None:
        """Blobs were deleted."""

    def blob_bytes(self) -> int:
        """Total size of the evictable blobs."""

    def least_recent(self, limit: int) -> list[BlobGroup]:
        """The least recently used evictable blob groups."""


def connect(url: str) -> Registry:
    """Open the registry named by a database URL (sqlite:///path/to/file.db).

    Raises:
        ConfigError: no backend for that scheme.
    """
    module = backend_module(
        "service.store.registry", url, what="database", example="sqlite:///path/to/langdu.db"
    )
    registry: Registry = module.connect(url)
    return registry


def utc_now() -> datetime:
    """Now, as an aware UTC instant."""
    return datetime.now(UTC)


__all__ = [
    "ArticleRecord",
    "BlobGroup",
    "Finished",
    "Priority",
    "Registry",
    "Status",
    "connect",
    "utc_now",
]
