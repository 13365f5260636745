"""Listening analytics: what players report (play, pause, seek, speed, progress as the
sentences heard, ended; a feed download by its own kind), kept without addresses or
cookies, rolled up per article and day, and read back as figures an editor can use.

Events are appended to the registry as they come (one insert per batch); a roll-up every
few seconds (and before every read of the figures) folds them into sessions and days, and
deletes raw events older than the days kept. The registry is shared by every replica, so
the figures are the same whichever one received the events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from service.core.context import Context
from service.core.ledger import Batch, Ledger, LedgerPool
from service.errors import InputError
from service.store.registry import ListeningDay, utc_now

log = logging.getLogger("langdu.analytics")

MAX_SPAN_DAYS = 366


@dataclass(frozen=True, slots=True)
class Figures:
    """Listening summed over days (of one article, or of every article)."""

    sessions: int = 0
    plays: int = 0
    downloads: int = 0
    listened_ms: int = 0
    quartiles: tuple[int, int, int, int] = (0, 0, 0, 0)
    degraded: int = 0
    speeds: dict[str, int] = field(default_factory=dict)
    voices: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, days: Sequence[ListeningDay]) -> Figures:
        speeds: Counter[str] = Counter()
        voices: Counter[str] = Counter()
        quartiles = [0, 0, 0, 0]
        for d in days:
            speeds.update(d.speeds)
            voices.update(d.voices)
            for i, q in enumerate(d.quartiles):
                quartiles[i] += q
        return cls(
            sessions=sum(d.sessions for d in days),
            plays=sum(d.plays for d in days),
            downloads=sum(d.downloads for d in days),
            listened_ms=sum(d.listened_ms for d in days),
            quartiles=(quartiles[0], quartiles[1], quartiles[2], quartiles[3]),
            degraded=sum(d.degraded for d in days),
            speeds=dict(sorted(speeds.items())),
            voices=dict(sorted(voices.items(), key=lambda kv: (-kv[1], kv[0]))),
        )


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class ArticleStats:
    """One article's listening between two days, sentence by sentence."""

    article_id: str
    title: str | None
    voice: str
    degraded: str | None  # the voice it is read in now, when it is not its own
    first: str
    last: str
    figures: Figures
    days: list[DayFigures]
    sentences: list[tuple[int, str]]  # (paragraph, text); paragraph 0 is the title, if any
    heard: list[int]  # per sentence: sessions that heard it

    @property
    def reach(self) -> list[float]:
        """Per sentence, the share of the sessions that played which heard it."""
        plays = self.figures.plays
        return [round(h / plays, 4) if plays else 0.0 for h in self.heard]


@dataclass(frozen=True, slots=True)
class ArticleLine:
    article_id: str
    title: str | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class Overview:
    """Every article's listening between two days: totals, each day, the most played."""

    first: str
    last: str
    figures: Figures
    days: list[DayFigures]
    articles: list[ArticleLine]


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} is not a day (YYYY-MM-DD): {text[:20]!r}") from None


def day_range(
    first_day: str | None, last_day: str | None, *, default_days: int = 30
) -> tuple[str, str]:
    """The days asked for (YYYY-MM-DD, both included), checked: `last_day` defaults to
    today (UTC), `first_day` to `default_days` before it.

    Raises:
        InputError: not a day, `first_day` after `last_day`, or more than a year apart.
    """
    last = _date(last_day, "to") if last_day else datetime.now(UTC).date()
    first = _date(first_day, "from") if first_day else last - timedelta(days=default_days - 1)
    if first > last:
        raise InputError(f"from ({first}) is after to ({last})")
    if (last - first).days >= MAX_SPAN_DAYS:
        raise InputError(f"at most {MAX_SPAN_DAYS} days at once")
    return first.isoformat(), last.isoformat()


def _every_day(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _by_day(days: Sequence[ListeningDay], first: str, last: str) -> list[DayFigures]:
    grouped: dict[str, list[ListeningDay]] = {}
    for d in days:
        grouped.setdefault(d.day, []).append(d)
    return [DayFigures(day, Figures.of(grouped.get(day, []))) for day in _every_day(first, last)]


class Analytics:
    """Takes the players' events and answers with the figures. The events are checked,
    stored and rolled up by the events worker (service.core.ledger)."""

    def __init__(
        self,
        ctx: Context,
        *,
        keep_days: int,
        rollup_every_s: float = 1.0,
        worker_database: str | None = None,
    ) -> None:
        """`worker_database`: the registry's URL for a worker process of its own (None: a
        thread of this process)."""
        self._ctx = ctx
        self.keep_days = keep_days
        self.rollup_every_s = rollup_every_s
        self.worker = LedgerPool(ctx.registry, worker_database)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def record(self, batch: Batch, now: datetime | None = None) -> int:
        """Keep a batch of events (all or none); the number kept.

        Raises:
            NotFoundError: no such article.
            InputError: an event from the future or more than a day ago, or a sentence the
                article does not have.
            WorkerLostError: the events worker died.
        """
        return self.counted(await self.worker.run(Ledger.store, batch, now or utc_now()))

    def counted(self, kinds: dict[str, int]) -> int:
        """Count events kept (by kind, from Ledger.store); how many they were."""
        for kind, count in kinds.items():
            self._ctx.metrics.listening_events.labels(kind).inc(count)
        return sum(kinds.values())

    async def roll_up(self) -> int:
        """Fold the events not yet rolled up into the figures; the number folded."""
        async with self._lock:
            folded, plays = await self.worker.run(Ledger.roll_up, utc_now(), self.keep_days)
            self._ctx.metrics.listening_plays.inc(plays)
            return folded

    def start(self) -> None:
        self._task = asyncio.create_task(self._rolling(), name="langdu-analytics")

    async def _rolling(self) -> None:
        await self.worker.warm_up()
        while True:
            await asyncio.sleep(self.rollup_every_s)
            try:
                await self.roll_up()
            except Exception:  # the database was away: the events wait for the next turn
                log.exception("rolling up listening events failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.worker.close()

    async def article(self, article_id: str, first: str, last: str) -> ArticleStats:
        """One article's figures from `first` to `last` (days, both included).

        Raises:
            NotFoundError: no such article.
        """
        record = await self._ctx.record(article_id)
        await self.roll_up()
        days = await asyncio.to_thread(self._ctx.registry.listening_days, article_id, first, last)
        sentences = list(record.sentences)
        heard = [0] * len(sentences)
        for d in days:
            for i, n in enumerate(d.reach[: len(heard)]):
                heard[i] += n
        return ArticleStats(
            article_id=article_id,
            title=record.title,
            voice=record.voice,
            degraded=record.degraded,
            first=first,
            last=last,
            figures=Figures.of(days),
            days=_by_day(days, first, last),
            sentences=sentences,
            heard=heard,
        )

    async def overview(self, first: str, last: str, *, limit: int = 50) -> Overview:
        """Every article's figures from `first` to `last`; the `limit` most played."""
        await self.roll_up()
        days = await asyncio.to_thread(self._ctx.registry.listening_days, None, first, last)
        per_article: dict[str, list[ListeningDay]] = {}
        for d in days:
            per_article.setdefault(d.article_id, []).append(d)
        ranked = sorted(
            ((a, Figures.of(ds)) for a, ds in per_article.items()),
            key=lambda af: (-af[1].plays, -af[1].listened_ms, af[0]),
        )[:limit]
        lines = []
        for article_id, figures in ranked:
            record = await asyncio.to_thread(self._ctx.registry.get, article_id)
            lines.append(ArticleLine(article_id, record.title if record else None, figures))
        return Overview(first, last, Figures.of(days), _by_day(days, first, last), lines)
