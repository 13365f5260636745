"""Where listening events are checked, stored and rolled up: a worker process of its own that
runs only on CPU time the server leaves idle, with its own connection to the registry.

Players post events all day long; checking a batch, inserting it and folding the events
into the figures are Python work that, in the server's process, would hold the interpreter
lock while a listener's audio request waits for it. In a worker the scheduler puts the
audio first: while the server is saturated, batches wait (their posts are answered later)
and nothing is lost. Without a database URL to open again there (parsing on a thread, an
in-memory database) the same work runs on a thread of this process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from service.errors import InputError, NotFoundError, WorkerLostError
from service.runtime.lifeline import die_with_parent, idle_cpu, name_process
from service.runtime.respawn import RespawningPool
from service.store.registry import ListeningEvent, Registry, connect

P = ParamSpec("P")
T = TypeVar("T")

MAX_AGE = timedelta(hours=24)  # events older than this are refused: a day is closed then
MAX_AHEAD = timedelta(minutes=5)  # clocks differ; more than this is a lie
ROLLUP_CHUNK = 20_000  # events folded in one transaction
_KNOWN_ARTICLES = 10_000


@dataclass(frozen=True, slots=True)
class Batch:
    """What one client posts at once: events of one session of one article."""

    article_id: str
    session: str
    client: str
    events: tuple[ListeningEvent, ...]


class Ledger:
    """The registry work of listening analytics (synchronous: it runs in the worker)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._sentences: dict[str, int] = {}  # article id -> its sentences (ids never change)

    def _sentence_count(self, article_id: str) -> int:
        known = self._sentences.get(article_id)
        if known is None:
            record = self.registry.get(article_id)
            if record is None:
                raise NotFoundError(f"no article {article_id}")
            known = len(record.sentences)  # the title is the first, when there is one
            if len(self._sentences) >= _KNOWN_ARTICLES:
                self._sentences.pop(next(iter(self._sentences)))
            self._sentences[article_id] = known
        return known

    def store(self, batch: Batch, now: datetime) -> dict[str, int]:
        """Keep a batch of events (all or none); how many of each kind were kept.

        Raises:
            NotFoundError: no such article.
            InputError: an event from the future or more than a day ago, or a sentence the
                article does not have.
        """
        sentences = self._sentence_count(batch.article_id)
        for i, event in enumerate(batch.events):
            if event.at > now + MAX_AHEAD:
                raise InputError(f"events[{i}].t is in the future ({event.at.isoformat()})")
            if event.at < now - MAX_AGE:
                raise InputError(f"events[{i}].t is more than a day ago ({event.at.isoformat()})")
            if event.heard and max(event.heard) >= sentences:
                raise InputError(
                    f"events[{i}].heard names sentence {max(event.heard)};"
                    f" the article has {sentences}"
                )
        self.registry.add_events(batch.events, now)
        return dict(Counter(event.kind for event in batch.events))

    def roll_up(self, now: datetime, keep_days: int) -> tuple[int, int]:
        """Fold what is not rolled up yet (ROLLUP_CHUNK at a time); (events, new plays)."""
        folded = plays = 0
        while True:
            events, new_plays = self.registry.roll_up(now, keep_days, ROLLUP_CHUNK)
            folded, plays = folded + events, plays + new_plays
            if events < ROLLUP_CHUNK:
                return folded, plays


# The worker process's own ledger (see _start).
_LEDGER: Ledger | None = None


def _start(parent: int, database: str) -> None:
    global _LEDGER
    die_with_parent(parent)
    name_process("langdu-events")
    idle_cpu()  # analytics wait while the server is busy (bench_events.py: p99 1.49x -> 1.05x)
    _LEDGER = Ledger(connect(database))


def _in_worker(fn: Callable[..., T], *args: object) -> T:
    assert _LEDGER is not None, "the events worker has no registry"
    return fn(_LEDGER, *args)


class LedgerPool:
    """Runs `fn(ledger, ...)` on the events worker: a process (`database`: the registry's
    URL, opened again there) or, with `database=None`, a thread with `registry`."""

    def __init__(self, registry: Registry, database: str | None) -> None:
        self._ledger: Ledger | None = None
        self._pool: Executor
        if database is None:
            self._ledger = Ledger(registry)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="langdu-events")
        else:
            # Not retried: a batch half-stored when its worker died must not be stored twice.
            self._pool = RespawningPool(
                1,
                initializer=_start,
                initargs=(os.getpid(), database),
                retries=0,
                name="langdu-events",
            )

    async def run(
        self, fn: Callable[Concatenate[Ledger, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(ledger, *args)` on the worker.

        Raises:
            WorkerLostError: the worker died (a new one takes the next call).
        """
        assert not kwargs, "positional arguments only: they cross to another process"
        loop = asyncio.get_running_loop()
        try:
            if self._ledger is not None:
                return await loop.run_in_executor(self._pool, fn, self._ledger, *args)
            return await loop.run_in_executor(self._pool, _in_worker, fn, *args)
        except BrokenProcessPool as exc:
            raise WorkerLostError("the events worker died; try again") from exc

    async def warm_up(self) -> None:
        """Start the worker now (a spawned worker takes a moment to import)."""
        with contextlib.suppress(WorkerLostError):
            await self.run(_nothing)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _nothing(_: Ledger) -> None:
    return None
