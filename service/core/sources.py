"""Sources: the newsroom's RSS/Atom feeds, followed so that each new article is read (and
published to the podcast feed) before the first reader asks for it.

Every `poll_s` seconds each source is polled once for the whole deployment: a process
claims the poll in the registry (a conditional update only one caller wins), fetches the
feed under the fetching rules (service.runtime.fetch) with a conditional GET (ETag,
Last-Modified: an unchanged feed costs one 304), parses it with feedparser, and reads each
item it has not taken before, by its GUID (else its link), across polls and restarts. An
item's full content is read when the feed carries it, else its page is fetched by URL.
A source that fails backs off (twice the period per failure in a row, at most a day) and
shows its error until a poll goes well.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser

from service.core.context import Context
from service.core.intake import HowToRead, Intake
from service.errors import (
    BackendUnavailableError,
    ClientBusyError,
    FetchFailedError,
    FetchRefusedError,
    InputError,
    NotFoundError,
    QueueFullError,
    StorageFullError,
)
from service.runtime.fetch import FEED_TYPES, Fetcher
from service.store.registry import Priority, SourceRecord, utc_now

log = logging.getLogger("langdu.sources")

MAX_BACKOFF_S = 86400.0
FULL_TEXT_CHARS = 200  # a feed's content this long (as text) is the article, not a teaser
_TAGS = re.compile(r"<[^>]+>")
# Worth trying again at the next poll: the item is not recorded as taken.
_TRANSIENT = (
    QueueFullError,
    ClientBusyError,
    FetchFailedError,
    StorageFullError,
    BackendUnavailableError,
)


class FeedError(FetchRefusedError):
    """What a source's URL answered is not a feed feedparser can read."""


def backoff_s(period_s: float, failures: int) -> float:
    """How long a source that failed `failures` polls in a row waits for the next."""
    return float(min(period_s * 2 ** min(failures, 30), max(MAX_BACKOFF_S, period_s)))


def _instant(entry: Any) -> datetime | None:
    """The item's publication instant (feedparser gives UTC struct_time), never ahead of
    now."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return min(when, utc_now())


def _longest(entry: Any, *, summary: bool) -> str:
    """The item's longest content (content:encoded, Atom content), or summary too."""
    values = [str(c.get("value", "")) for c in entry.get("content", [])]
    if summary:
        values.append(str(entry.get("summary") or ""))
    return max(values, key=len, default="")


def _full_content(entry: Any) -> str | None:
    """The item's own HTML when it is the whole article, not a teaser."""
    best = _longest(entry, summary=False)
    return best if len(_TAGS.sub("", best).strip()) >= FULL_TEXT_CHARS else None


class Sources:
    """Following feeds: the sources' records, and the poller."""

    def __init__(
        self,
        ctx: Context,
        intake: Intake,
        *,
        fetcher: Fetcher | None,
        poll_s: float = 600.0,
        max_items: int = 20,
    ) -> None:
        self._ctx = ctx
        self._intake = intake
        self._fetcher = fetcher
        self.poll_s = poll_s
        self._max_items = max_items
        self._task: asyncio.Task[None] | None = None

    # --- the records ---------------------------------------------------------------------

    async def add(
        self,
        feed_url: str,
        *,
        publish: bool = False,
        voice: str | None = None,
        category: str | None = None,
    ) -> tuple[SourceRecord, bool]:
        """Follow a feed (polled at once). A feed followed already: that source, and False.

        Raises:
            UnknownVoiceError: no such voice. FetchRefusedError: a URL never fetched (not
            http(s), credentials, an internal address as its host).
        """
        if voice is not None:
            self._intake.voice(voice)
        if self._fetcher is not None:
            self._fetcher.precheck(feed_url)
        record = SourceRecord(
            id=uuid.uuid4().hex, feed_url=feed_url, publish=publish, voice=voice, category=category
        )
        return await asyncio.to_thread(self._ctx.registry.add_source, record)

    async def get(self, source_id: str) -> SourceRecord:
        """Raises NotFoundError for an unknown id."""
        found = await asyncio.to_thread(self._ctx.registry.source, source_id)
        if found is None:
            raise NotFoundError(f"no source {source_id}")
        return found

    async def list(self) -> Sequence[SourceRecord]:
        return await asyncio.to_thread(self._ctx.registry.sources)

    async def remove(self, source_id: str) -> None:
        """Stop following a source (its articles stay). Raises NotFoundError."""
        if not await asyncio.to_thread(self._ctx.registry.remove_source, source_id):
            raise NotFoundError(f"no source {source_id}")

    # --- the poller ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="langdu-sources")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        nap = max(0.2, min(self.poll_s / 2, 30.0))
        while True:
            try:
                await self.poll_due()
            except Exception:  # the poller outlives one bad round (a database blip ...)
                log.exception("polling sources failed")
            await asyncio.sleep(nap)

    async def poll_due(self) -> int:
        """Poll each source that is due and that this process wins; returns how many."""
        registry = self._ctx.registry
        now = utc_now()
        polled = 0
        for source in await asyncio.to_thread(registry.sources_due, now):
            until = now + timedelta(seconds=self.poll_s)
            if await asyncio.to_thread(registry.claim_poll, source.id, source.next_poll_at, until):
                await self.poll(source)
                polled += 1
        return polled

    async def poll(self, source: SourceRecord) -> None:
        """Poll one source now and record how it went."""
        registry = self._ctx.registry
        etag, modified = source.etag, source.last_modified
        try:
            if self._fetcher is None:
                raise FetchRefusedError("fetching is turned off here (LANGDU_FETCH_PAGES)")
            page = await self._fetcher.fetch(
                source.feed_url, kinds=FEED_TYPES, etag=etag, last_modified=modified
            )
            # Unchanged: an item's trouble from the last good poll still stands.
            error = source.last_error if source.failures == 0 else None
            if page.status != 304:
                error = await self._take_items(source, page.body, page.media_type)
                etag, modified = page.etag, page.last_modified
            failures = 0
        except (FetchRefusedError, FetchFailedError, InputError) as exc:
            error, failures = str(exc), source.failures + 1
            log.warning("source %s (%s): %s", source.id, source.feed_url, exc)
        wait = self.poll_s if failures == 0 else backoff_s(self.poll_s, failures)
        await asyncio.to_thread(
            registry.poll_done,
            source.id,
            etag=etag,
            last_modified=modified,
            error=error,
            failures=failures,
            next_poll_at=utc_now() + timedelta(seconds=wait),
        )

    async def _take_items(self, source: SourceRecord, body: bytes, media_type: str) -> str | None:
        """Read the feed's new items, oldest first; the first item error, if any (the poll
        itself went well: the feed was read)."""
        parsed = await asyncio.to_thread(
            feedparser.parse, body, response_headers={"content-type": media_type}
        )
        if not parsed.entries and (parsed.bozo or not parsed.get("version")):
            reason = parsed.get("bozo_exception") or "no RSS or Atom document"
            raise FeedError(f"{source.feed_url}: not a feed ({reason})")
        registry = self._ctx.registry
        fresh = []
        for entry in parsed.entries:
            key = entry.get("id") or entry.get("link")
            if key and not await asyncio.to_thread(registry.item_known, source.id, key):
                fresh.append((key, entry))
        fresh = fresh[: self._max_items]  # feeds list the newest first: the rest next time
        trouble = None
        for key, entry in reversed(fresh):
            try:
                article_id = await self._read(source, entry, key)
            except _TRANSIENT as exc:
                trouble = trouble or f"{entry.get('link') or key}: {exc}"
                if isinstance(exc, QueueFullError | ClientBusyError | StorageFullError):
                    break  # nothing more fits now; the next poll takes up from here
                continue
            except InputError as exc:  # nothing to read there, ever: taken, as nothing
                trouble = trouble or f"{entry.get('link') or key}: {exc}"
                article_id = None
            await asyncio.to_thread(registry.add_item, source.id, key, article_id)
        return trouble

    async def _read(self, source: SourceRecord, entry: Any, key: str) -> str:
        """Register one item (recorded as taken once its article is registered); its
        article's id."""
        link = entry.get("link") or ""
        # feedparser takes a GUID for the link when it is a permalink: use only web URLs.
        link = link if link.lower().startswith(("http://", "https://")) else None
        how: HowToRead = {
            "voice": source.voice,
            "published_at": _instant(entry),
            "publish": source.publish,
            "category": source.category,
            "client": f"source:{source.id}",
            "priority": Priority.BACKGROUND,
            "item": (source.id, key),
        }
        content = _full_content(entry)
        if content is None and link:
            view, _ = await self._intake.register_url(link, **how)
            return view.record.id
        # The whole article, else the best the feed has (a short item is a short article).
        html = content or _longest(entry, summary=True)
        if not html.strip():
            raise InputError("the item has neither text nor a link")
        view, _ = await self._intake.register(
            html=html, title=entry.get("title") or None, url=link, **how
        )
        return view.record.id
