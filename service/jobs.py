"""Article synthesis jobs: one per article at a time (single-flight), shared by every listener.

A job belongs to the runner, not to the request that started it: a listener that goes away
does not cancel work that others wait for. Audio reaches the disk only when the whole
article is done, in one atomic rename; until then listeners stream it from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from service.db import FAILED, QUEUED, READY, SYNTHESIZING, ArticleRecord, Registry
from service.errors import EngineError, LangduError, QueueFullError
from service.pipeline import Sentence, Synthesizer
from service.store import Store
from service.timings import Timeline, to_vtt
from service.voices import Voice, VoiceCatalog

log = logging.getLogger("langdu.jobs")


@dataclass(eq=False)
class Job:
    """One article being synthesized: its audio so far, in playing order."""

    article_id: str
    voice: str
    parts: list[bytes] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    finished: bool = False
    error: LangduError | None = None
    generation: int = 0  # bumped when the article starts over in a fallback voice
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def restart(self) -> None:
        """Drop the audio so far: the article is read again from the start, in another voice.

        Streams already under way end (a listener never hears the voice change mid-article);
        new listeners get the new reading from its first byte.
        """
        async with self._cond:
            self.generation += 1
            self.parts.clear()
            self.timeline = Timeline()
            self._cond.notify_all()

    async def _publish(self, data: bytes | None, *, finished: bool = False) -> None:
        async with self._cond:
            if data:
                self.parts.append(data)
            self.finished = self.finished or finished
            self._cond.notify_all()

    async def stream(self) -> AsyncIterator[bytes]:
        """The article's MP3 from the first byte, as fast as it is synthesized.

        Raises:
            LangduError: synthesis failed before the end (the stream stops there).
        """
        sent = 0
        generation = self.generation

        def ready_to_send() -> bool:
            return len(self.parts) > sent or self.finished or self.generation != generation

        while True:
            async with self._cond:
                await self._cond.wait_for(ready_to_send)
                if self.generation != generation:
                    raise LangduError("the article is being read again in another voice")
                ready, done = self.parts[sent:], self.finished
            for chunk in ready:
                yield chunk
            sent += len(ready)
            if done and sent == len(self.parts):
                if self.error is not None:
                    raise self.error
                return

    async def wait(self) -> None:
        """Until the job has finished (successfully or not)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.finished)


@dataclass(frozen=True, slots=True)
class JobEvents:
    """What the runner tells the outside world (metrics)."""

    started: Callable[[], None] = lambda: None
    finished: Callable[[float, bool], None] = lambda seconds, ok: None
    depth: Callable[[int], None] = lambda queued: None
    ready: Callable[[str], None] = lambda article_id: None
    degraded: Callable[[str], None] = lambda engine: None  # fell back from this engine
    upgraded: Callable[[str], None] = lambda article_id: None


class JobRunner:
    """Starts article jobs, at most `max_active` at once and `max_queue` more waiting."""

    def __init__(self, *, store: Store, registry: Registry, catalog: VoiceCatalog,
                 synthesizer_for: Callable[[str], Synthesizer], max_active: int,
                 max_queue: int, events: JobEvents | None = None,
                 fallback_voice: str | None = None, upgrade_after_s: float = 600.0) -> None:
        self._store = store
        self._registry = registry
        self._catalog = catalog
        self._synthesizer_for = synthesizer_for
        self._slots = asyncio.Semaphore(max_active)
        self._max_active = max_active
        self._limit = max_active + max_queue
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events = events or JobEvents()
        self._running = 0
        self._fallback = fallback_voice
        self._upgrade_after = upgrade_after_s

    def get(self, article_id: str) -> Job | None:
        """The running job for an article, if any."""
        return self._jobs.get(article_id)

    @property
    def queued(self) -> int:
        """Jobs waiting for a free slot."""
        return len(self._jobs) - self._running

    def start(self, record: ArticleRecord) -> Job:
        """The article's job: the running one, or a new one (single-flight).

        Raises:
            QueueFullError: too many articles are waiting already.
        """
        job = self._jobs.get(record.id)
        if job is not None:
            return job
        if len(self._jobs) >= self._limit:
            raise QueueFullError("the synthesis queue is full; try again shortly")
        job = Job(article_id=record.id, voice=record.voice)
        self._jobs[record.id] = job
        self._start_task(self._run(job, record), f"synth-{record.id}")
        self._events.depth(self.queued)
        return job

    async def _run(self, job: Job, record: ArticleRecord) -> None:
        ok = False
        started = 0.0
        try:
            async with self._slots:
                self._running += 1
                self._events.depth(self.queued)
                started = time.monotonic()
                self._events.started()
                await asyncio.to_thread(self._registry.set_status, record.id, SYNTHESIZING)
                await self._synthesize(job, record)
                ok = True
        except LangduError as exc:
            log.warning("article %s failed: %s", record.id, exc)
            job.error = exc
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._registry.set_status, record.id, FAILED,
                                        error=str(exc))
        except asyncio.CancelledError:
            job.error = LangduError("the service is shutting down")
            with contextlib.suppress(Exception):
                self._registry.set_status(record.id, QUEUED)
            raise
        finally:
            if started:
                self._running -= 1
                self._events.finished(time.monotonic() - started, ok)
            self._jobs.pop(record.id, None)
            self._events.depth(self.queued)
            await job._publish(None, finished=True)

    async def _synthesize(self, job: Job, record: ArticleRecord) -> None:
        voice = self._catalog.get(record.voice)
        degraded: str | None = None
        try:
            await self._render(job, record, voice)
        except EngineError as exc:
            fallback = self._catalog.get(self._fallback) if self._fallback else None
            if fallback is None or fallback.engine == voice.engine:
                raise
            # The whole article in the fallback voice: never a voice change mid-article.
            log.warning("article %s: %s failed (%s); reading it with %s", record.id,
                        voice.id, exc, fallback.id)
            self._events.degraded(voice.engine)
            await job.restart()
            await self._render(job, record, fallback)
            degraded = fallback.id
        await self._store_article(record.id, job, degraded=degraded)
        self._events.ready(record.id)
        if degraded:
            self._start_task(self._upgrade(record), f"upgrade-{record.id}")

    async def _render(self, job: Job, record: ArticleRecord, voice: Voice) -> None:
        synth = self._synthesizer_for(voice.engine)
        sentences = [Sentence(index=i, paragraph=p, text=t)
                     for i, (p, t) in enumerate(record.sentences)]
        options = voice.options(rate=record.rate, pitch=record.pitch)
        job.voice = voice.id
        async for part in synth.render(sentences, options):
            job.timeline.add(part)
            await job._publish(part.speech.data + (part.pause.data if part.pause else b""))

    async def _store_article(self, article_id: str, job: Job, *, degraded: str | None) -> None:
        audio = b"".join(job.parts)
        timings = json.dumps(job.timeline.to_json(voice=job.voice), ensure_ascii=False)
        store = self._store
        marker = store.article_path(article_id, "degraded")
        # Sidecars first, audio last: a finished article is one whose audio exists.
        await asyncio.to_thread(store.write, store.article_path(article_id, "json"),
                                timings.encode("utf-8"))
        await asyncio.to_thread(store.write, store.article_path(article_id, "vtt"),
                                to_vtt(job.timeline.sentences).encode("utf-8"))
        if degraded:
            await asyncio.to_thread(store.write, marker, degraded.encode())
        await asyncio.to_thread(store.write, store.article_path(article_id, "mp3"), audio)
        if not degraded:
            await asyncio.to_thread(marker.unlink, missing_ok=True)
        await asyncio.to_thread(self._registry.set_status, article_id, READY,
                                duration_ms=job.timeline.duration_ms, size=len(audio),
                                degraded=degraded)

    async def _upgrade(self, record: ArticleRecord) -> None:
        """Later, read a degraded article again in the voice asked for; replace it if it works."""
        delay = self._upgrade_after
        voice = self._catalog.get(record.voice)
        while True:
            await asyncio.sleep(delay)
            hidden = Job(article_id=record.id, voice=voice.id)  # nobody listens to this one
            try:
                async with self._slots:
                    await self._render(hidden, record, voice)
            except EngineError as exc:
                log.info("article %s: %s still failing (%s)", record.id, voice.id, exc)
                delay = min(delay * 2, 6 * 3600)
                continue
            await self._store_article(record.id, hidden, degraded=None)
            self._events.upgraded(record.id)
            log.info("article %s: now read with %s", record.id, voice.id)
            return

    def _start_task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel every job (their articles go back to queued)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
