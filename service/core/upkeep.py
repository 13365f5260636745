"""Upkeep: what keeps the library true over time without a request asking. Reconciling what
a previous process left, upgrading degraded articles at their (persisted) time, reading again
what was damaged or found no room, and scrubbing stored blobs against their digests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from service.core.context import Context
from service.core.rendering import Rendering
from service.store import audio_key
from service.store.registry import ArticleRecord, Priority, Status, utc_now

log = logging.getLogger("langdu.library")
_SCHEDULER_NAP_S = 60.0  # look at the upgrade schedule at least this often
_UPKEEP_NAP_S = 5.0
_DEPLOYMENT_EVERY_S = 15.0  # how soon a process learns that a newer deployment runs
# In a cluster, periodic work runs once for all processes (a lock in Redis with expiry):
_RECONCILE_EVERY_S = 300.0  # start-up reconciliation (the rest of the cluster goes on)
_UPGRADES_EVERY_S = 1.0  # submitting the upgrades that are due


class Upkeep:
    """The library's background tasks, and start-up reconciliation."""

    def __init__(
        self,
        ctx: Context,
        rendering: Rendering,
        *,
        scrub_every_s: float = 3600.0,
        scrub_bytes: int = 256 * 1024**2,
    ) -> None:
        self._ctx = ctx
        self._rendering = rendering
        self._scrub_every = scrub_every_s
        self._scrub_bytes = scrub_bytes
        self._scheduler: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Reconcile what a previous process left, then start the upgrade scheduler and the
        upkeep loop."""
        await self.reconcile()
        self._scheduler = asyncio.create_task(self._upgrades(), name="langdu-upgrades")
        self._loop = asyncio.get_running_loop()
        self._ctx.store.on_damage = self.blob_damaged
        self._upkeep = asyncio.create_task(self._maintain(), name="langdu-upkeep")

    async def aclose(self) -> None:
        """Stop the background tasks."""
        for task in (self._scheduler, self._upkeep):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def reconcile(self) -> int:
        """Resume what was interrupted: queued and running readings, re-renders, upgrades
        that were under way, and episodes of published articles that are missing or stale.
        Returns how many articles were picked up."""
        ctx, rendering = self._ctx, self._rendering
        await rendering.check_deployment()
        shared = rendering.shared
        if shared is not None and not await shared.work.once("reconcile", _RECONCILE_EVERY_S):
            return 0  # another process of the cluster reconciled a moment ago
        changed = await asyncio.to_thread(ctx.store.reconcile)
        if changed:
            log.info("blob index: %d entries reconciled", changed)
        if ctx.store.over_cap:  # the cap may have been lowered since the last run
            await rendering.evict()
        picked = 0
        for rec in await asyncio.to_thread(ctx.registry.unfinished):
            picked += 1
            if rec.work is not None or rec.status in (Status.QUEUED, Status.SYNTHESIZING):
                await rendering.submit(
                    rec,
                    rec.work if rec.work is not None else Priority.BACKGROUND,
                    upgrade=rec.work == Priority.UPGRADE,
                )
            elif (
                rec.published
                and rec.rendering is not None
                and await asyncio.to_thread(
                    ctx.store.blobs.exists, audio_key(rec.id, rec.rendering)
                )
            ):
                ctx.episodes.ensure(rec.id)
            elif rec.published:
                await rendering.submit(rec, Priority.BACKGROUND)
        if picked:
            log.info("resumed %d unfinished articles", picked)
        ctx.schedule_changed.set()
        return picked

    def blob_damaged(self, key: str) -> None:
        """The store found (and deleted) a blob that is not what was stored: count it, and
        have a damaged rendering read again. Called from any thread."""
        kind = key.split("/", 1)[0]
        self._ctx.metrics.damaged.labels(kind).inc()
        if kind == "renders" and self._loop is not None:
            self._loop.call_soon_threadsafe(self._forget_damaged, key)

    def _forget_damaged(self, key: str) -> None:
        article_id = key.split("/")[1]
        self._ctx.hot.forget(key)
        self._ctx.hot.forget_article(article_id)
        self._ctx.rerender.add(article_id)

    async def _maintain(self) -> None:
        """Every few seconds: read again what was damaged or found no room; every
        `scrub_every_s`, check a slice of the stored blobs against their digests."""
        cursor = ""
        next_scrub = time.monotonic() + min(60.0, self._scrub_every)
        next_deployment = time.monotonic() + _DEPLOYMENT_EVERY_S
        while True:
            await asyncio.sleep(_UPKEEP_NAP_S)
            try:
                if time.monotonic() >= next_deployment:
                    await self._rendering.check_deployment()
                    next_deployment = time.monotonic() + _DEPLOYMENT_EVERY_S
                if time.monotonic() >= next_scrub:
                    cursor = await self._scrub(cursor)
                    next_scrub = time.monotonic() + self._scrub_every
                await self._read_again()
            except Exception:  # the store may be briefly unavailable: try again later
                log.exception("upkeep")

    async def _scrub(self, cursor: str) -> str:
        """Check the next slice of stored blobs; in a cluster, one process per period does,
        carrying on from where the last one stopped. Returns where to go on from."""
        shared = self._rendering.shared
        if shared is not None:
            if not await shared.work.once("scrub", self._scrub_every * 0.9):
                return cursor
            cursor = await shared.work.value("scrub") or ""
        cursor, damaged = await asyncio.to_thread(
            self._ctx.store.scrub, after=cursor, max_bytes=self._scrub_bytes
        )
        if damaged:
            log.warning("scrub: %d damaged blobs deleted", damaged)
        if shared is not None:
            await shared.work.set_value("scrub", cursor)
        return cursor

    async def _read_again(self) -> None:
        ctx = self._ctx
        later: set[str] = set()
        while ctx.rerender:
            article_id = ctx.rerender.pop()
            if self._rendering.queue.get(article_id) is not None:
                later.add(article_id)  # its reading is still under way: look again next time
                continue
            rec = await asyncio.to_thread(ctx.registry.get, article_id)
            if rec is None:
                continue
            if rec.rendering is not None and not await asyncio.to_thread(
                ctx.store.has_rendering, rec.id, rec.rendering
            ):
                await asyncio.to_thread(ctx.registry.forget_rendering, rec.id, rec.rendering)
                rec = await asyncio.to_thread(ctx.registry.get, article_id)
                if rec is None:
                    continue
            if rec.rendering is not None:
                # Stored and whole: read again only if it is not what it should sound like
                # now (the lexicon moved while it was read).
                await ctx.pronunciations.prepare(rec, fresh=True)
                if self._rendering.current(rec) or self._rendering.outdated:
                    continue
            log.info("article %s: reading it again", rec.id)
            await self._rendering.submit(rec, Priority.BACKGROUND)
        ctx.rerender |= later

    async def _upgrades_due(self) -> list[ArticleRecord]:
        """Degraded articles whose upgrade time has come (in a cluster, for one process at a
        time: the others find none)."""
        shared = self._rendering.shared
        if shared is not None and not await shared.work.once("upgrades", _UPGRADES_EVERY_S):
            return []
        return await asyncio.to_thread(self._ctx.registry.upgrades_due, utc_now())

    async def _upgrades(self) -> None:
        """Submit each degraded article's upgrade when its (persisted) time comes."""
        ctx = self._ctx
        while True:
            ctx.schedule_changed.clear()
            try:
                for rec in await self._upgrades_due():
                    if rec.degraded is None:
                        await asyncio.to_thread(ctx.registry.schedule_upgrade, rec.id, None, None)
                    elif self._rendering.queue.get(rec.id) is None:
                        await self._rendering.submit(rec, Priority.UPGRADE, upgrade=True)
                nxt = await asyncio.to_thread(ctx.registry.next_upgrade)
            except Exception:  # the registry may be briefly unavailable: look again later
                log.exception("upgrade scheduler")
                nxt = None
            nap = _SCHEDULER_NAP_S if nxt is None else (nxt - utc_now()).total_seconds()
            nap = min(max(nap, 0.5), _SCHEDULER_NAP_S)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # arrives as the event is set (aclose then waited for the whole nap)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(nap):
                    await ctx.schedule_changed.wait()
