"""Synthesis jobs: one per article at a time (single-flight), shared by every listener, run
from an in-process priority queue on a bounded number of slots.

A job belongs to the queue, not to the request that started it: a listener that goes away
does not cancel work that others wait for. What a job must do is persisted by the registry
(`work`), so the queue itself may forget: start-up reconciliation submits it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from service.audio.timings import Timeline
from service.errors import ClientBusyError, LangduError, QueueFullError
from service.store.registry import Priority

log = logging.getLogger("langdu.jobs")


@dataclass(eq=False)
class Job:
    """One article being read: its audio so far, in playing order, for live listeners."""

    article_id: str
    priority: Priority
    upgrade: bool = False  # read in the asked-for voice only (no fallback), to replace one
    client: str = ""  # who asked first (admission.Identity): slots are shared out fairly
    seq: int = 0  # submission order
    voice: str = ""
    parts: list[bytes] = field(default_factory=list)
    whole: list[bool] = field(default_factory=list)  # per part: it ends a sentence
    timeline: Timeline = field(default_factory=Timeline)
    started: bool = False
    finished: bool = False
    error: LangduError | None = None
    generation: int = 0  # bumped when the article starts over in the fallback voice
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def restart(self, voice: str) -> None:
        """Drop the audio so far: the article is read again from the start in `voice`.

        A listener who has heard nothing yet carries on with the new reading; one who has
        heard some of the old voice gets a clean end of stream (never a voice change
        mid-stream), and the player resumes the new reading at the same sentence.
        """
        async with self._cond:
            self.generation += 1
            self.voice = voice
            self.parts.clear()
            self.whole.clear()
            self.timeline = Timeline()
            self._cond.notify_all()

    async def publish(
        self, data: bytes | None, *, finished: bool = False, whole: bool = True
    ) -> None:
        """Add audio for listeners (and/or mark the job finished); `whole`: the part ends a
        sentence (a sentence's first piece does not)."""
        async with self._cond:
            if data:
                self.parts.append(data)
                self.whole.append(whole)
            self.finished = self.finished or finished
            self._cond.notify_all()

    async def stream(self, on_cut: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """The article's MP3 from the first byte, as fast as it is synthesized.

        If the article starts over in another voice after this listener heard some of it,
        the stream ends cleanly and `on_cut` is told how many whole sentences were sent
        (a part is a sentence with its pause, or a sentence's first piece): where the
        listener resumes.

        Raises:
            LangduError: synthesis failed before the end (the stream stops there).
        """
        sent = 0  # parts of this generation
        sentences = 0  # whole sentences among them
        heard = 0  # bytes this listener has been sent
        generation = self.generation

        def ready_to_send() -> bool:
            return len(self.parts) > sent or self.finished or self.generation != generation

        while True:
            async with self._cond:
                await self._cond.wait_for(ready_to_send)
                if self.generation != generation:
                    if heard:
                        if on_cut is not None:
                            on_cut(sentences)
                        return  # a clean end: the player picks up the new reading
                    generation, sent, sentences = self.generation, 0, 0  # nothing heard: go on
                    continue
                ready, done = self.parts[sent:], self.finished
                sentences += sum(self.whole[sent:])
            for chunk in ready:
                heard += len(chunk)
                yield chunk
            sent += len(ready)
            if done and sent == len(self.parts):
                if self.error is not None and not heard:
                    raise self.error
                return

    async def wait(self) -> None:
        """Until the job has finished (successfully or not)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.finished)


Runner = Callable[[Job], Awaitable[None]]


class JobQueue:
    """Runs jobs on `max_active` slots: listeners' articles first, shared fairly between
    clients (the client with the fewest articles running goes next, oldest first; no
    client on every slot), and background work (re-renders, upgrades) never on the last
    free slot while listeners could need it.

    At most `max_active + max_queue` listener jobs at once (more: QueueFullError), and at
    most `per_client` of them from one client (more: ClientBusyError); work in the
    background is never refused (it is persisted, and waits behind listeners).
    """

    def __init__(
        self,
        *,
        run: Runner,
        max_active: int,
        max_queue: int,
        per_client: int | None = None,
        on_depth: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._run = run
        self._max_active = max_active
        self._limit = max_active + max_queue
        # One client may hold a quarter of the queue (at least one slot and a waiting job).
        self._per_client = per_client or max(2, self._limit // 4)
        self._on_depth = on_depth
        self._jobs: dict[str, Job] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._running = 0
        self._running_by: dict[str, int] = {}
        self._background_running = 0

    def get(self, article_id: str) -> Job | None:
        """The queued or running job for an article, if any."""
        return self._jobs.get(article_id)

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._jobs) - self._running

    def admit(self, client: str) -> None:
        """Check, before any work is done, that a listener's new article could be queued.

        Raises:
            QueueFullError: too many listeners' articles are in hand.
            ClientBusyError: this client has its share in hand already.
        """
        held = self.share_held(client)
        if held is not None:
            raise ClientBusyError(held)
        listeners = [j for j in self._jobs.values() if j.priority == Priority.LISTENER]
        if len(listeners) >= self._limit:
            raise QueueFullError("the synthesis queue is full; try again shortly")

    def share_held(self, client: str) -> str | None:
        """Why `client` may not have another article read now (it holds its share of the
        queue), or None."""
        if not client:
            return None
        held = sum(
            1 for j in self._jobs.values() if j.priority == Priority.LISTENER and j.client == client
        )
        if held < self._per_client:
            return None
        return (
            f"{self._per_client} of your articles are being read or wait already;"
            " try again when one is done"
        )

    def submit(
        self, article_id: str, priority: Priority, *, upgrade: bool = False, client: str = ""
    ) -> tuple[Job, bool]:
        """The article's job: the existing one (made more urgent if need be) or a new one.

        Returns (job, changed): changed when the job is new or now more urgent.

        Raises:
            QueueFullError / ClientBusyError: a listener's job that cannot be taken now.
        """
        job = self._jobs.get(article_id)
        if job is not None:
            if priority < job.priority and not job.started:
                job.priority = priority
                job.client = job.client or client
                self._wake.set()
                return job, True
            return job, False
        if priority == Priority.LISTENER:
            self.admit(client)
        job = Job(
            article_id=article_id,
            priority=priority,
            upgrade=upgrade,
            client=client,
            seq=next(self._seq),
        )
        self._jobs[article_id] = job
        self._ensure_workers()
        self._wake.set()
        self._on_depth(self.queued)
        return job, True

    def _ensure_workers(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._worker(), name=f"langdu-slot-{i}")
                for i in range(self._max_active)
            ]

    def _next(self) -> Job | None:
        waiting = [j for j in self._jobs.values() if not j.started]
        # Background work may not take the last free slot: a listener pressing play must
        # find one (unless there is a single slot, which background work may use when free).
        # (A slot asks only when it is free, so with one slot nothing else is running.)
        reserve = 1 if self._max_active > 1 else 0
        background_ok = self._background_running < self._max_active - reserve
        # Nor may one client's articles take every slot: another's must find one free.
        share = max(1, self._max_active - 1)
        best: Job | None = None
        best_key: tuple[int, int, int] | None = None
        for job in waiting:
            if job.priority != Priority.LISTENER and not background_ok:
                continue
            if job.client and self._running_by.get(job.client, 0) >= share:
                continue
            key = (int(job.priority), self._running_by.get(job.client, 0), job.seq)
            if best_key is None or key < best_key:
                best, best_key = job, key
        return best

    async def _worker(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            job.started = True
            listener = job.priority == Priority.LISTENER
            self._running += 1
            self._running_by[job.client] = self._running_by.get(job.client, 0) + 1
            self._background_running += not listener
            self._on_depth(self.queued)
            try:
                await self._run(job)
            except asyncio.CancelledError:
                job.error = LangduError("the service is shutting down")
                raise
            except Exception as exc:  # a bug in a job must not take a slot down with it
                log.exception("job for %s crashed", job.article_id)
                job.error = LangduError(f"internal error: {type(exc).__name__}")
            finally:
                self._running -= 1
                self._running_by[job.client] -= 1
                if not self._running_by[job.client]:
                    del self._running_by[job.client]
                self._background_running -= not listener
                self._jobs.pop(job.article_id, None)
                self._on_depth(self.queued)
                self._wake.set()  # a freed slot may let background work start
                with contextlib.suppress(RuntimeError):
                    await asyncio.shield(job.publish(None, finished=True))

    async def aclose(self) -> None:
        """Stop every slot (unfinished work stays recorded in the registry)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for job in list(self._jobs.values()):
            job.error = job.error or LangduError("the service is shutting down")
            await job.publish(None, finished=True)
        self._jobs.clear()
