"""Rendering: what an article's audio should be now (its render version), whether the stored
audio is that, and reading it when it is not: jobs on the queue, the fallback voice when the
asked-for one fails, recording each outcome in the registry, and renderings leaving the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import timedelta

from service.core.cluster import RemoteReading, SharedQueue
from service.core.context import Context
from service.core.hotaudio import audio_etag
from service.core.jobs import Job, JobQueue
from service.core.views import ArticleView, Live, Stored
from service.core.voices import Voice
from service.errors import EngineError, LangduError, StorageFullError
from service.store import audio_key
from service.store.queue import Work
from service.store.registry import ArticleRecord, Finished, Priority, Status, utc_now
from service.text.lexicon import Lexicon
from service.text.sentences import Sentence

log = logging.getLogger("langdu.library")
_MAX_UPGRADE_DELAY_S = 6 * 3600.0
_FULL_BACKOFF_S = 15.0


class Rendering:
    """Render versions, the job queue and the readings it runs."""

    def __init__(
        self,
        ctx: Context,
        *,
        fallbacks: tuple[Voice, ...],
        upgrade_after_s: float,
        max_active: int,
        max_queue: int,
        shared: SharedQueue | None = None,
    ) -> None:
        self._ctx = ctx
        self._fallbacks = fallbacks
        self._upgrade_after = upgrade_after_s
        self.shared = shared  # the cluster's queue: readings are done by `langdu worker`
        self.queue = JobQueue(
            run=self.run,
            max_active=max_active,
            max_queue=max_queue,
            on_depth=ctx.metrics.queue_depth.set,
        )
        self._full_until = 0.0  # until then, new readings are refused: storage was full
        # Several processes (the cluster) may run different code or settings for a while (a
        # rolling deploy): only the newest deployment re-renders; an outdated one serves what
        # is stored as it is and never reads an article that has audio again.
        self.outdated = False

    @property
    def fingerprint(self) -> str:
        """This process's deployment: what shapes audio here, over every engine."""
        from service.store import part_key

        base = Lexicon(self._ctx.pronunciations.base).digest  # the operator's file: settings
        return part_key(*sorted(s.fingerprint for s in self._ctx.synths.values()), base)

    async def check_deployment(self) -> bool:
        """Record this deployment and learn whether a newer one runs (cluster only).
        Returns True if this one is outdated."""
        if self.shared is not None:
            ours = self.fingerprint
            newest = await asyncio.to_thread(self._ctx.registry.newest_deployment, ours)
            if (newest != ours) != self.outdated:
                log.warning(
                    "deployment %s is %s", ours[:12], "outdated" if newest != ours else "newest"
                )
            self.outdated = newest != ours
        return self.outdated

    # --- what the audio should be --------------------------------------------------------

    def render_version(self, rec: ArticleRecord, lexicon: Lexicon | None = None) -> str:
        """The render version an article's audio should have now: with `lexicon`, else the
        lexicon entries that apply to it (`Pronunciations.prepare` was awaited for it)."""
        voice = self._ctx.catalog.get(rec.voice)
        options = voice.options(rate=rec.rate, pitch=rec.pitch)
        if lexicon is None:
            lexicon = self._ctx.pronunciations.for_article(rec)
        return self._ctx.synths[voice.engine].article_version(options, lexicon)

    def current(self, rec: ArticleRecord) -> bool:
        """Whether the stored rendering is what the article's audio should be now (for an
        outdated deployment, any stored rendering: a newer one may have made it)."""
        if rec.rendering is not None and self.outdated:
            return True
        target = self.render_version(rec)
        return rec.rendering is not None and (
            rec.rendering == target or rec.rendering.startswith(target + "-")
        )

    def view(self, rec: ArticleRecord) -> ArticleView:
        """How an article looks from outside right now."""
        job = self.queue.get(rec.id)
        status = rec.status
        if rec.rendering is None and job is not None:
            status = Status.SYNTHESIZING if job.started else Status.QUEUED
        elif rec.rendering is None and rec.work is not None and status != Status.SYNTHESIZING:
            status = Status.QUEUED  # on the cluster's queue (a worker marks it started)
        return ArticleView(
            record=rec,
            status=status,
            rendering=rec.rendering,
            render_version=self.render_version(rec),
        )

    async def want_audio(
        self, rec: ArticleRecord, priority: Priority, client: str = ""
    ) -> Stored | Live:
        """The stored rendering (queueing a re-render if it is stale), or the live reading."""
        ctx = self._ctx
        await ctx.pronunciations.prepare(rec)
        if rec.rendering is not None:
            key = audio_key(rec.id, rec.rendering)
            if ctx.hot.peek(key) is not None or await asyncio.to_thread(
                ctx.store.blobs.exists, key
            ):
                if self.current(rec):
                    ctx.hot.remember(rec.id, rec.rendering)
                elif self.queue.get(rec.id) is None:
                    log.info(
                        "article %s: re-rendering %s -> %s",
                        rec.id,
                        rec.rendering,
                        self.render_version(rec),
                    )
                    await self.submit(rec, Priority.BACKGROUND)
                return Stored(
                    article_id=rec.id,
                    rendering=rec.rendering,
                    key=key,
                    etag=audio_etag(rec.id, rec.rendering),
                    degraded=rec.degraded is not None,
                )
            ctx.hot.forget_article(rec.id)
            await asyncio.to_thread(ctx.registry.forget_rendering, rec.id, rec.rendering)
        return Live(await self.submit(rec, priority, client=client))

    # --- jobs ----------------------------------------------------------------------------

    async def admit(self, client: str) -> None:
        """Check, before any work is done, that a listener's new article could be queued.

        Raises:
            QueueFullError / ClientBusyError: no room for this client's reading now.
        """
        if self.shared is not None:
            await self.shared.admit(client)
        else:
            self.queue.admit(client)

    def share_held(self, client: str) -> str | None:
        """Why `client`'s new article would be refused now (it holds its share of this
        process's queue), or None; asked before a post is even parsed. With a shared
        queue the shares are counted across the cluster, at `admit`."""
        return None if self.shared is not None else self.queue.share_held(client)

    async def submit(
        self, rec: ArticleRecord, priority: Priority, *, upgrade: bool = False, client: str = ""
    ) -> Job | RemoteReading:
        """Have the article read (joining its reading if one is under way), here or, with
        a shared queue, by a worker.

        Raises:
            StorageFullError: a listener's new reading, and the last one found no room.
            QueueFullError / ClientBusyError: no room for a listener's reading.
        """
        if (
            priority == Priority.LISTENER
            and self.queue.get(rec.id) is None
            and time.monotonic() < self._full_until
        ):
            # The last reading found no room to be kept: do not read another for nothing.
            raise StorageFullError("the audio storage is full; try again shortly")
        if self.shared is not None:
            work = Work(rec.id, self.render_version(rec), priority, upgrade, client)
            reading = await self.shared.submit(work)
            if rec.work is None or priority < rec.work:
                await asyncio.to_thread(self._ctx.registry.set_work, rec.id, priority)
            return reading
        job, changed = self.queue.submit(rec.id, priority, upgrade=upgrade, client=client)
        if changed:
            await asyncio.to_thread(self._ctx.registry.set_work, rec.id, job.priority)
        return job

    async def run(self, job: Job) -> None:
        """Read the job's article (a queue slot here, or a worker's), and record the outcome."""
        ctx = self._ctx
        rec = await asyncio.to_thread(ctx.registry.get, job.article_id)
        if rec is None:
            return
        # The lexicon as the registry has it now: the audio and its render version agree.
        await ctx.pronunciations.prepare(rec, fresh=True)
        lexicon = ctx.pronunciations.for_article(rec)
        if job.upgrade and rec.rendering is None:
            job.upgrade = False  # the fallback reading is gone: a listener needs any reading
        if job.upgrade and rec.degraded is None:
            await asyncio.to_thread(ctx.registry.set_work, rec.id, None)
            return  # read in its own voice meanwhile
        if (
            not job.upgrade
            and self.current(rec)
            and await asyncio.to_thread(ctx.store.has_rendering, rec.id, rec.rendering or "")
        ):
            await asyncio.to_thread(ctx.registry.set_work, rec.id, None)
            return  # somebody else's job finished it
        voice = ctx.catalog.get(rec.voice)
        target = self.render_version(rec, lexicon)
        await asyncio.to_thread(ctx.registry.start, rec.id)
        started = time.monotonic()
        ok = False
        try:
            degraded = await self._read_with_fallback(job, rec, voice, lexicon)
            await self._finish(job, rec, target, degraded)
            self._full_until = 0.0
            ok = True
            await ctx.pronunciations.prepare(rec, fresh=True)
            if self.render_version(rec, ctx.pronunciations.for_article(rec)) != target:
                ctx.rerender.add(rec.id)  # the lexicon moved meanwhile: upkeep reads it again
        except EngineError as exc:
            if not job.upgrade:
                await self._failed(job, rec, exc)
            else:
                job.error = exc
                await self._upgrade_failed(rec, exc)
        except StorageFullError as exc:
            # Not stuck: failed for now (listeners get 503 and Retry-After), and read again
            # by itself once there is room.
            await self._failed(job, rec, exc)
            ctx.rerender.add(rec.id)
            self._full_until = time.monotonic() + _FULL_BACKOFF_S
        except LangduError as exc:
            await self._failed(job, rec, exc)
        except OSError as exc:  # the store could not keep it (bucket gone ...)
            await self._failed(job, rec, LangduError(f"the audio could not be stored: {exc}"))
        except Exception as exc:  # a bug or a dead worker: failed, never stuck "synthesizing"
            log.exception("article %s: reading crashed", rec.id)
            await self._failed(job, rec, LangduError(f"internal error: {type(exc).__name__}"))
        finally:
            ctx.metrics.synthesis_seconds.observe(time.monotonic() - started)
            ctx.metrics.syntheses.labels("ok" if ok else "failed").inc()
        if self.shared is not None:  # other workers fill the same cache
            await asyncio.to_thread(ctx.store.refresh_size)
        if ctx.store.over_cap:
            await self.evict()

    async def _read_with_fallback(
        self, job: Job, rec: ArticleRecord, voice: Voice, lexicon: Lexicon
    ) -> str | None:
        """Read the whole article in its voice, else (not for upgrades) in the first fallback
        voice of an engine that has not failed, from the start: never a voice change
        mid-article. Returns the fallback used."""
        try:
            await self._read(job, rec, voice, lexicon)
            return None
        except EngineError as exc:
            if job.upgrade:
                raise
            error, failed, current = exc, {voice.engine}, voice
        for fallback in self._fallbacks:
            if fallback.engine in failed:
                continue
            log.warning(
                "article %s: %s failed (%s); reading it with %s",
                rec.id,
                current.id,
                error,
                fallback.id,
            )
            self._ctx.metrics.engine_failed(current.engine)
            await job.restart(fallback.id)
            try:
                await self._read(job, rec, fallback, lexicon)
                return fallback.id
            except EngineError as exc:
                error, current = exc, fallback
                failed.add(fallback.engine)
        raise error

    async def _read(self, job: Job, rec: ArticleRecord, voice: Voice, lexicon: Lexicon) -> None:
        synth = self._ctx.synths[voice.engine]
        sentences = [
            Sentence(index=i, paragraph=p, text=t) for i, (p, t) in enumerate(rec.sentences)
        ]
        options = voice.options(rate=rec.rate, pitch=rec.pitch)
        job.voice = voice.id
        async for part in synth.render(sentences, options, lexicon):
            job.timeline.add(part)
            data = part.speech.data + (part.pause.data if part.pause else b"")
            await job.publish(data, whole=not part.lead)

    async def _finish(
        self, job: Job, rec: ArticleRecord, target: str, degraded: str | None
    ) -> None:
        ctx = self._ctx
        rendering = target if degraded is None else f"{target}-{degraded}"
        # A long article's audio and timings are megabytes to join and serialize: not on
        # the event loop (a thread hands the interpreter lock back every millisecond).
        audio, timings = await asyncio.to_thread(_rendering_files, job)
        await asyncio.to_thread(
            ctx.store.put_rendering, rec.id, rendering, audio=audio, timings=timings
        )
        upgrade_at = None
        if degraded is not None:
            upgrade_at = utc_now() + timedelta(seconds=self._upgrade_after)
        await asyncio.to_thread(
            ctx.registry.finish,
            rec.id,
            Finished(
                rendering=rendering,
                degraded=degraded,
                duration_ms=job.timeline.duration_ms,
                size=len(audio),
                upgrade_at=upgrade_at,
                upgrade_delay_s=self._upgrade_after if degraded is not None else None,
            ),
        )
        ctx.hot.forget_article(rec.id)  # the stable URL now serves the new rendering
        if job.upgrade:
            log.info("article %s: now read with %s", rec.id, rec.voice)
        if degraded is not None:
            ctx.schedule_changed.set()
        if rec.published:
            ctx.episodes.ensure(rec.id)

    async def _failed(self, job: Job, rec: ArticleRecord, exc: LangduError) -> None:
        log.warning("article %s failed: %s", rec.id, exc)
        job.error = exc
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._ctx.registry.fail, rec.id, str(exc))

    async def _upgrade_failed(self, rec: ArticleRecord, exc: EngineError) -> None:
        registry = self._ctx.registry
        delay = min((rec.upgrade_delay_s or self._upgrade_after) * 2, _MAX_UPGRADE_DELAY_S)
        delay = max(delay, 1.0)
        log.info(
            "article %s: %s still failing (%s); next try in %.0f s", rec.id, rec.voice, exc, delay
        )
        await asyncio.to_thread(
            registry.schedule_upgrade, rec.id, utc_now() + timedelta(seconds=delay), delay
        )
        await asyncio.to_thread(registry.set_work, rec.id, None)
        self._ctx.schedule_changed.set()

    # --- leaving the cache ---------------------------------------------------------------

    async def evict(self) -> int:
        """Keep the cache under its cap: the least recently used parts and renderings go,
        and an article whose stored rendering went reads as evicted (the next listener
        has it read again). Returns how many renderings went."""
        ctx = self._ctx
        gone = await asyncio.to_thread(ctx.store.evict)
        for article_id, rendering in gone:
            ctx.hot.forget(audio_key(article_id, rendering))
            ctx.hot.forget_article(article_id)
            await asyncio.to_thread(ctx.registry.forget_rendering, article_id, rendering)
        return len(gone)


def _rendering_files(job: Job) -> tuple[bytes, bytes]:
    """A finished reading's MP3 and its timings document."""
    timings = json.dumps(job.timeline.to_json(voice=job.voice), ensure_ascii=False)
    return b"".join(job.parts), timings.encode("utf-8")
