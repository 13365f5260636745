"""The application layer: the one owner of an article's life.

Every transition goes through here: register, queue, start, finish, fail, degrade (fallback
voice), upgrade (back to the asked-for voice, at a persisted time), publish (episodes),
evict and re-render (a new render version). Routes and the CLI translate HTTP and argv into
these calls; the registry records every decision, so a restart reconciles and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.articles import Limits, build_record
from service.engines import Engine
from service.episodes import Episodes
from service.errors import EngineError, LangduError, NotFoundError, StorageFullError
from service.hotfiles import HotAudio, audio_etag
from service.jobs import Job, JobQueue
from service.metrics import Metrics
from service.parsing import ParsePool
from service.pipeline import Sentence, Synthesizer
from service.registry import ArticleRecord, Finished, Priority, Registry, Status, utc_now
from service.store import Store, audio_key, episode_key
from service.text.extract import Article
from service.voices import Voice, VoiceCatalog

log = logging.getLogger("langdu.library")
_MAX_UPGRADE_DELAY_S = 6 * 3600.0
_SCHEDULER_NAP_S = 60.0  # look at the upgrade schedule at least this often
_MAX_CUTS = 10_000
_MAX_SOURCES = 20_000
_UPKEEP_NAP_S = 5.0
_FULL_BACKOFF_S = 15.0


def _source_key(*parts: object) -> str:
    """What a post asked for, hashed: the same post names the same article."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Article):
            part = json.dumps([part.title, [(p.text, p.heading) for p in part.paragraphs]])
        digest.update(
            b"\x01" if part is None else b"s" + str(part).encode("utf-8", "surrogatepass")
        )
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    """A complete rendering to answer with."""

    article_id: str
    rendering: str
    key: str
    etag: str
    degraded: bool


@dataclass(frozen=True, slots=True)
class Live:
    """A reading under way: listeners stream it as it is made."""

    job: Job


@dataclass(frozen=True, slots=True)
class ArticleView:
    """An article as the outside sees it: the record, its status now, and the rendering
    its versioned URLs name (None while nothing is stored)."""

    record: ArticleRecord
    status: Status
    rendering: str | None
    render_version: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Sentence timings: of a stored rendering, or of a reading so far (`live`).

    `raw` is the JSON document as stored, served as it is; `document` parses it.
    """

    raw: bytes
    live: bool
    rendering: str | None

    def document(self) -> dict[str, Any]:
        """The timings as a dict (parsed on demand: most requests want the bytes)."""
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


@dataclass(frozen=True, slots=True)
class Episode:
    """A published article's podcast episode."""

    data: bytes
    etag: str
    final: bool  # made from the current rendering in the asked-for voice


class Library:
    """Owns every article's life; one per process, built by the lifespan."""

    def __init__(
        self,
        *,
        registry: Registry,
        store: Store,
        hot: HotAudio,
        catalog: VoiceCatalog,
        default_voice: str,
        engines: Mapping[str, Engine],
        synthesizers: Mapping[str, Synthesizer],
        episodes: Episodes,
        metrics: Metrics,
        fallback_voice: str | None,
        upgrade_after_s: float,
        max_active: int,
        max_queue: int,
        limits: Limits | None = None,
        parse: ParsePool | None = None,
        scrub_every_s: float = 3600.0,
        scrub_bytes: int = 256 * 1024**2,
    ) -> None:
        self._registry = registry
        self._parse = parse or ParsePool(0)
        self._limits = limits or Limits()
        self._store = store
        self._hot = hot
        self._catalog = catalog
        self._default_voice = catalog.get(default_voice)
        self._engines = engines
        self._synths = synthesizers
        self._episodes = episodes
        self._metrics = metrics
        self._fallback = catalog.get(fallback_voice) if fallback_voice else None
        self._upgrade_after = upgrade_after_s
        self._queue = JobQueue(
            run=self._run,
            max_active=max_active,
            max_queue=max_queue,
            on_depth=metrics.queue_depth.set,
        )
        self._schedule_changed = asyncio.Event()
        self._sources: OrderedDict[str, str] = OrderedDict()  # source key -> article id
        # (article, listener) -> sentences heard before the reading started over in the
        # fallback voice: where that listener's player resumes.
        self._cuts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._scheduler: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scrub_every = scrub_every_s
        self._scrub_bytes = scrub_bytes
        self._rerender: set[str] = set()  # articles to read again (damaged, or no room)
        self._full_until = 0.0  # until then, new readings are refused: storage was full

    # --- life of the library -----------------------------------------------------------

    @property
    def parse_pool(self) -> ParsePool:
        """The bounded pool for parsing work (extraction, large request bodies)."""
        return self._parse

    async def start(self) -> None:
        """Reconcile what a previous process left, then start the upgrade scheduler."""
        await self.reconcile()
        self._scheduler = asyncio.create_task(self._upgrades(), name="langdu-upgrades")
        self._loop = asyncio.get_running_loop()
        self._store.on_damage = self.blob_damaged
        self._upkeep = asyncio.create_task(self._maintain(), name="langdu-upkeep")

    async def aclose(self) -> None:
        """Stop scheduling and every job (their work stays recorded in the registry)."""
        for task in (self._scheduler, self._upkeep):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._queue.aclose()
        await self._episodes.aclose()
        self._parse.close()

    async def reconcile(self) -> int:
        """Resume what was interrupted: queued and running readings, re-renders, upgrades
        that were under way, and episodes of published articles that are missing or stale.
        Returns how many articles were picked up."""
        changed = await asyncio.to_thread(self._store.reconcile)
        if changed:
            log.info("blob index: %d entries reconciled", changed)
        if self._store.over_cap:  # the cap may have been lowered since the last run
            await self.evict()
        picked = 0
        for rec in await asyncio.to_thread(self._registry.unfinished):
            picked += 1
            if rec.work is not None or rec.status in (Status.QUEUED, Status.SYNTHESIZING):
                await self._submit(
                    rec,
                    rec.work if rec.work is not None else Priority.BACKGROUND,
                    upgrade=rec.work == Priority.UPGRADE,
                )
            elif (
                rec.published
                and rec.rendering is not None
                and await asyncio.to_thread(
                    self._store.blobs.exists, audio_key(rec.id, rec.rendering)
                )
            ):
                self._episodes.ensure(rec.id)
            elif rec.published:
                await self._submit(rec, Priority.BACKGROUND)
        if picked:
            log.info("resumed %d unfinished articles", picked)
        self._schedule_changed.set()
        return picked

    # --- reading the registry ----------------------------------------------------------

    async def record(self, article_id: str) -> ArticleRecord:
        """The registered article.

        Raises:
            NotFoundError: no such article.
        """
        rec = await asyncio.to_thread(self._registry.get, article_id)
        if rec is None:
            raise NotFoundError(f"no article {article_id}")
        return rec

    def voice(self, voice_id: str | None) -> Voice:
        """A voice preset (the default one for None).

        Raises:
            UnknownVoiceError: no such preset.
        """
        return self._default_voice if voice_id is None else self._catalog.get(voice_id)

    def render_version(self, rec: ArticleRecord) -> str:
        """The render version an article's audio should have now."""
        voice = self._catalog.get(rec.voice)
        options = voice.options(rate=rec.rate, pitch=rec.pitch)
        return self._synths[voice.engine].render_version(options)

    def _current(self, rec: ArticleRecord) -> bool:
        target = self.render_version(rec)
        return rec.rendering is not None and (
            rec.rendering == target or rec.rendering.startswith(target + "-")
        )

    def view(self, rec: ArticleRecord) -> ArticleView:
        """How an article looks from outside right now."""
        job = self._queue.get(rec.id)
        status = rec.status
        if rec.rendering is None and job is not None:
            status = Status.SYNTHESIZING if job.started else Status.QUEUED
        return ArticleView(
            record=rec,
            status=status,
            rendering=rec.rendering,
            render_version=self.render_version(rec),
        )

    @property
    def queued(self) -> int:
        """Readings waiting for a slot."""
        return self._queue.queued

    # --- registering and reading -------------------------------------------------------

    async def register(
        self,
        *,
        voice: str | None = None,
        text: str | None = None,
        html: str | None = None,
        article: Article | None = None,
        title: str | None = None,
        url: str | None = None,
        rate: str | None = None,
        pitch: str | None = None,
        published_at: datetime | None = None,
        publish: bool = False,
        category: str | None = None,
        client: str = "",
    ) -> tuple[ArticleView, bool]:
        """Register an article (same content, voice, rate, pitch: same id) and start
        reading it unless its audio is stored. Returns (view, created).

        Raises:
            InputError: nothing to read. UnknownVoiceError / OptionError: bad voice options.
            QueueFullError / ClientBusyError: a new article, and too many articles (or too
            many of this client's) wait already; nothing is stored. A known article whose
            audio must be made again is registered, then refused.
        """
        chosen = self.voice(voice)
        self._engines[chosen.engine].check_options(chosen.options(rate=rate, pitch=pitch))
        # A page posted before (every reader's player posts it) is known by its source:
        # no extraction, and no admission check unless it must be read again.
        source = _source_key(chosen.id, text, html, article, title, url, rate, pitch)
        known = self._sources.get(source)
        if known is not None:
            rec = await asyncio.to_thread(self._registry.get, known)
            if rec is not None:
                self._sources.move_to_end(source)
                return await self._registered(rec, False, client, publish, category)
        # Refuse before doing the work: a new article the queue cannot take is not even
        # extracted, and nothing of it is stored.
        self._queue.admit(client)
        record = await self._parse.run(
            build_record,
            voice=chosen,
            limits=self._limits,
            text=text,
            html=html,
            article=article,
            title=title,
            url=url,
            rate=rate,
            pitch=pitch,
            published_at=published_at,
        )
        stored, created = await asyncio.to_thread(self._registry.add, record)
        self._sources[source] = stored.id
        while len(self._sources) > _MAX_SOURCES:
            self._sources.popitem(last=False)
        return await self._registered(stored, created, client, publish, category)

    async def _registered(
        self,
        stored: ArticleRecord,
        created: bool,
        client: str,
        publish: bool,
        category: str | None,
    ) -> tuple[ArticleView, bool]:
        self._metrics.cache.labels("article", "miss" if created else "hit").inc()
        if publish:
            await asyncio.to_thread(self._registry.publish, stored.id, category=category)
        found = await self._want_audio(stored, Priority.LISTENER, client)
        if publish:
            self._episodes.ensure(stored.id)
        if isinstance(found, Live) and stored.rendering is not None:
            stored = await self.record(stored.id)  # its audio was gone: forgotten just now
        return self.view(stored), created

    async def _want_audio(
        self, rec: ArticleRecord, priority: Priority, client: str = ""
    ) -> Stored | Live:
        """The stored rendering (queueing a re-render if it is stale), or the live reading."""
        if rec.rendering is not None:
            key = audio_key(rec.id, rec.rendering)
            if self._hot.peek(key) is not None or await asyncio.to_thread(
                self._store.blobs.exists, key
            ):
                if self._current(rec):
                    self._hot.remember(rec.id, rec.rendering)
                elif self._queue.get(rec.id) is None:
                    log.info(
                        "article %s: re-rendering %s -> %s",
                        rec.id,
                        rec.rendering,
                        self.render_version(rec),
                    )
                    await self._submit(rec, Priority.BACKGROUND)
                return Stored(
                    article_id=rec.id,
                    rendering=rec.rendering,
                    key=key,
                    etag=audio_etag(rec.id, rec.rendering),
                    degraded=rec.degraded is not None,
                )
            self._hot.forget_article(rec.id)
            await asyncio.to_thread(self._registry.forget_rendering, rec.id, rec.rendering)
        return Live(await self._submit(rec, priority, client=client))

    async def listen(self, article_id: str, client: str = "") -> Stored | Live:
        """What a listener pressing play gets: stored audio, or the reading as it is made.

        Raises:
            NotFoundError: no such article. QueueFullError: it must be read and cannot be now.
        """
        found = await self._want_audio(await self.record(article_id), Priority.LISTENER, client)
        self._metrics.cache.labels("audio", "hit" if isinstance(found, Stored) else "miss").inc()
        return found

    def note_cut(self, article_id: str, listener: str, sentences: int) -> None:
        """A listener's stream ended early because the article started over in another
        voice, after `sentences` whole sentences."""
        self._cuts[(article_id, listener)] = sentences
        while len(self._cuts) > _MAX_CUTS:
            self._cuts.popitem(last=False)

    def resume_at(self, article_id: str, listener: str | None) -> int | None:
        """Where a listener whose stream was cut resumes (None: it was not cut)."""
        return None if listener is None else self._cuts.get((article_id, listener))

    async def stored_audio(self, article_id: str, rendering: str) -> bytes | None:
        """One rendering's MP3 if it is still stored (old renderings stay until evicted)."""
        return await self._hot.get(audio_key(article_id, rendering))

    async def timings(self, article_id: str, rendering: str | None = None) -> Timings | None:
        """Timings of a given rendering (None if it is gone), or of what the stable URLs
        serve now: the stored rendering, else the reading so far.

        Raises:
            NotFoundError: no such article. QueueFullError: it must be read and cannot be now.
        """
        if rendering is not None:
            raw = await asyncio.to_thread(self._store.timings, article_id, rendering)
            return None if raw is None else Timings(raw, False, rendering)
        rec = await self.record(article_id)
        found = await self._want_audio(rec, Priority.LISTENER)
        if isinstance(found, Stored):
            raw = await asyncio.to_thread(self._store.timings, article_id, found.rendering)
            if raw is not None:
                return Timings(raw, False, found.rendering)
            found = Live(await self._submit(rec, Priority.LISTENER))
        job = found.job
        document = job.timeline.to_json(voice=job.voice or rec.voice)
        return Timings(json.dumps(document, ensure_ascii=False).encode("utf-8"), True, None)

    async def wait(self, article_id: str) -> None:
        """Until the article's current job (if any) has finished."""
        job = self._queue.get(article_id)
        if job is not None:
            await job.wait()

    # --- publishing --------------------------------------------------------------------

    async def publish(self, article_id: str, *, category: str | None) -> ArticleView:
        """Put an article in the podcast feed; its episode follows its audio.

        Raises:
            NotFoundError: no such article.
        """
        rec = await self.record(article_id)
        await asyncio.to_thread(self._registry.publish, rec.id, category=category)
        found = await self._want_audio(rec, Priority.BACKGROUND)
        if isinstance(found, Stored):
            self._episodes.ensure(rec.id)  # the maker reads the published record itself
        elif rec.rendering is not None:
            rec = await self.record(article_id)  # its audio was gone: forgotten just now
        return self.view(rec)

    async def episode(self, article_id: str) -> Episode:
        """A published article's episode file.

        Raises:
            NotFoundError: not published, or its episode is not made yet.
        """
        rec = await self.record(article_id)
        missing = NotFoundError(f"no episode for {article_id} (not published, or not ready yet)")
        if not rec.published or rec.episode_rendering is None:
            raise missing
        data = await asyncio.to_thread(self._store.read, episode_key(rec.id, rec.episode_rendering))
        if data is None:
            self._episodes.ensure(rec.id)
            raise missing
        final = (
            rec.degraded is None and rec.episode_rendering == rec.rendering and self._current(rec)
        )
        return Episode(data=data, etag=f'"{rec.id}.episode.{rec.episode_rendering}"', final=final)

    async def wait_episode(self, article_id: str) -> None:
        """Until the article's episode work (if any) has finished."""
        await self._episodes.wait(article_id)

    async def feed(self, *, category: str | None, limit: int) -> list[ArticleRecord]:
        """Published articles with an episode, newest first."""
        return await asyncio.to_thread(self._registry.feed, category=category, limit=limit)

    # --- eviction ----------------------------------------------------------------------

    async def evict(self) -> int:
        """Keep the cache under its cap: the least recently used parts and renderings go,
        and an article whose stored rendering went reads as evicted (the next listener
        has it read again). Returns how many renderings went."""
        gone = await asyncio.to_thread(self._store.evict)
        for article_id, rendering in gone:
            self._hot.forget(audio_key(article_id, rendering))
            self._hot.forget_article(article_id)
            await asyncio.to_thread(self._registry.forget_rendering, article_id, rendering)
        return len(gone)

    # --- jobs --------------------------------------------------------------------------

    async def _submit(
        self, rec: ArticleRecord, priority: Priority, *, upgrade: bool = False, client: str = ""
    ) -> Job:
        if (
            priority == Priority.LISTENER
            and self._queue.get(rec.id) is None
            and time.monotonic() < self._full_until
        ):
            # The last reading found no room to be kept: do not read another for nothing.
            raise StorageFullError("the audio storage is full; try again shortly")
        job, changed = self._queue.submit(rec.id, priority, upgrade=upgrade, client=client)
        if changed:
            await asyncio.to_thread(self._registry.set_work, rec.id, job.priority)
        return job

    async def _run(self, job: Job) -> None:
        rec = await asyncio.to_thread(self._registry.get, job.article_id)
        if rec is None:
            return
        if job.upgrade and rec.rendering is None:
            job.upgrade = False  # the fallback reading is gone: a listener needs any reading
        if job.upgrade and rec.degraded is None:
            await asyncio.to_thread(self._registry.set_work, rec.id, None)
            return  # read in its own voice meanwhile
        if (
            not job.upgrade
            and self._current(rec)
            and await asyncio.to_thread(self._store.has_rendering, rec.id, rec.rendering or "")
        ):
            await asyncio.to_thread(self._registry.set_work, rec.id, None)
            return  # somebody else's job finished it
        voice = self._catalog.get(rec.voice)
        target = self.render_version(rec)
        await asyncio.to_thread(self._registry.start, rec.id)
        started = time.monotonic()
        ok = False
        try:
            degraded = await self._read_with_fallback(job, rec, voice)
            await self._finish(job, rec, target, degraded)
            self._full_until = 0.0
            ok = True
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
            self._rerender.add(rec.id)
            self._full_until = time.monotonic() + _FULL_BACKOFF_S
        except LangduError as exc:
            await self._failed(job, rec, exc)
        except OSError as exc:  # the store could not keep it (bucket gone ...)
            await self._failed(job, rec, LangduError(f"the audio could not be stored: {exc}"))
        except Exception as exc:  # a bug or a dead worker: failed, never stuck "synthesizing"
            log.exception("article %s: reading crashed", rec.id)
            await self._failed(job, rec, LangduError(f"internal error: {type(exc).__name__}"))
        finally:
            self._metrics.synthesis_seconds.observe(time.monotonic() - started)
            self._metrics.syntheses.labels("ok" if ok else "failed").inc()
        if self._store.over_cap:
            await self.evict()

    async def _read_with_fallback(self, job: Job, rec: ArticleRecord, voice: Voice) -> str | None:
        """Read the whole article in its voice, else (not for upgrades) in the fallback
        voice from the start: never a voice change mid-article. Returns the fallback used."""
        try:
            await self._read(job, rec, voice)
            return None
        except EngineError as exc:
            fallback = self._fallback
            if job.upgrade or fallback is None or fallback.engine == voice.engine:
                raise
            log.warning(
                "article %s: %s failed (%s); reading it with %s", rec.id, voice.id, exc, fallback.id
            )
            self._metrics.engine_failed(voice.engine)
            await job.restart(fallback.id)
            await self._read(job, rec, fallback)
            return fallback.id

    async def _read(self, job: Job, rec: ArticleRecord, voice: Voice) -> None:
        synth = self._synths[voice.engine]
        sentences = [
            Sentence(index=i, paragraph=p, text=t) for i, (p, t) in enumerate(rec.sentences)
        ]
        options = voice.options(rate=rec.rate, pitch=rec.pitch)
        job.voice = voice.id
        async for part in synth.render(sentences, options):
            job.timeline.add(part)
            await job.publish(part.speech.data + (part.pause.data if part.pause else b""))

    async def _finish(
        self, job: Job, rec: ArticleRecord, target: str, degraded: str | None
    ) -> None:
        rendering = target if degraded is None else f"{target}-{degraded}"
        # A long article's audio and timings are megabytes to join and serialize: not on
        # the event loop (a thread hands the interpreter lock back every millisecond).
        audio, timings = await asyncio.to_thread(_rendering_files, job)
        await asyncio.to_thread(
            self._store.put_rendering, rec.id, rendering, audio=audio, timings=timings
        )
        upgrade_at = None
        if degraded is not None:
            upgrade_at = utc_now() + timedelta(seconds=self._upgrade_after)
        await asyncio.to_thread(
            self._registry.finish,
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
        self._hot.forget_article(rec.id)  # the stable URL now serves the new rendering
        if job.upgrade:
            log.info("article %s: now read with %s", rec.id, rec.voice)
        if degraded is not None:
            self._schedule_changed.set()
        if rec.published:
            self._episodes.ensure(rec.id)

    async def _failed(self, job: Job, rec: ArticleRecord, exc: LangduError) -> None:
        log.warning("article %s failed: %s", rec.id, exc)
        job.error = exc
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._registry.fail, rec.id, str(exc))

    async def _upgrade_failed(self, rec: ArticleRecord, exc: EngineError) -> None:
        delay = min((rec.upgrade_delay_s or self._upgrade_after) * 2, _MAX_UPGRADE_DELAY_S)
        delay = max(delay, 1.0)
        log.info(
            "article %s: %s still failing (%s); next try in %.0f s", rec.id, rec.voice, exc, delay
        )
        await asyncio.to_thread(
            self._registry.schedule_upgrade, rec.id, utc_now() + timedelta(seconds=delay), delay
        )
        await asyncio.to_thread(self._registry.set_work, rec.id, None)
        self._schedule_changed.set()

    def blob_damaged(self, key: str) -> None:
        """The store found (and deleted) a blob that is not what was stored: count it, and
        have a damaged rendering read again. Called from any thread."""
        kind = key.split("/", 1)[0]
        self._metrics.damaged.labels(kind).inc()
        if kind == "renders" and self._loop is not None:
            self._loop.call_soon_threadsafe(self._forget_damaged, key)

    def _forget_damaged(self, key: str) -> None:
        article_id = key.split("/")[1]
        self._hot.forget(key)
        self._hot.forget_article(article_id)
        self._rerender.add(article_id)

    async def _maintain(self) -> None:
        """Every few seconds: read again what was damaged or found no room; every
        `scrub_every_s`, check a slice of the stored blobs against their digests."""
        cursor = ""
        next_scrub = time.monotonic() + min(60.0, self._scrub_every)
        while True:
            await asyncio.sleep(_UPKEEP_NAP_S)
            try:
                if time.monotonic() >= next_scrub:
                    cursor, damaged = await asyncio.to_thread(
                        self._store.scrub, after=cursor, max_bytes=self._scrub_bytes
                    )
                    if damaged:
                        log.warning("scrub: %d damaged blobs deleted", damaged)
                    next_scrub = time.monotonic() + self._scrub_every
                await self._read_again()
            except Exception:  # the store may be briefly unavailable: try again later
                log.exception("upkeep")

    async def _read_again(self) -> None:
        while self._rerender:
            article_id = self._rerender.pop()
            rec = await asyncio.to_thread(self._registry.get, article_id)
            if rec is None:
                continue
            if rec.rendering is not None and not await asyncio.to_thread(
                self._store.has_rendering, rec.id, rec.rendering
            ):
                await asyncio.to_thread(self._registry.forget_rendering, rec.id, rec.rendering)
                rec = await asyncio.to_thread(self._registry.get, article_id)
                if rec is None:
                    continue
            if rec.rendering is None and self._queue.get(rec.id) is None:
                log.info("article %s: reading it again", rec.id)
                await self._submit(rec, Priority.BACKGROUND)

    async def _upgrades(self) -> None:
        """Submit each degraded article's upgrade when its (persisted) time comes."""
        while True:
            self._schedule_changed.clear()
            try:
                for rec in await asyncio.to_thread(self._registry.upgrades_due, utc_now()):
                    if rec.degraded is None:
                        await asyncio.to_thread(self._registry.schedule_upgrade, rec.id, None, None)
                    elif self._queue.get(rec.id) is None:
                        await self._submit(rec, Priority.UPGRADE, upgrade=True)
                nxt = await asyncio.to_thread(self._registry.next_upgrade)
            except Exception:  # the registry may be briefly unavailable: look again later
                log.exception("upgrade scheduler")
                nxt = None
            nap = _SCHEDULER_NAP_S if nxt is None else (nxt - utc_now()).total_seconds()
            nap = min(max(nap, 0.5), _SCHEDULER_NAP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._schedule_changed.wait(), nap)


def _rendering_files(job: Job) -> tuple[bytes, bytes]:
    """A finished reading's MP3 and its timings document."""
    timings = json.dumps(job.timeline.to_json(voice=job.voice), ensure_ascii=False)
    return b"".join(job.parts), timings.encode("utf-8")
