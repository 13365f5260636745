"""Readings across machines (a queue URL is set): replicas queue them and stream them to
listeners; workers (`langdu worker`) take them, read them and announce every stored part.

The announcements are the reading's live stream (one Redis Stream per article and render
version): `start` (an attempt begins), `part` (a sentence part, its bytes and timing),
`restart` (the reading starts over in the fallback voice), `end` (finished, or failed for
good). A listener on any replica follows it; a retried attempt re-announces its parts (the
stored ones come back from the part cache, byte for byte), and the listener skips those it
has sent, so its stream carries on and equals the finished file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.core.jobs import Job
from service.errors import ClientBusyError, LangduError, QueueFullError
from service.store.queue import Work
from service.store.queue.redis import BEAT_EVERY_S, RedisWork, Taken
from service.store.registry import Priority

log = logging.getLogger("langdu.cluster")
_LOST_AFTER = 3  # silent waits (of 2 s) with the reading neither queued nor running
_STOP_S = 10.0  # how long a stopping worker waits for its slots


class LiveTimeline:
    """The timings of a reading another machine makes, from its announcements."""

    def __init__(self) -> None:
        self.sentences: list[dict[str, Any]] = []
        self.duration_ms = 0
        self._open = False

    def add(self, timing: dict[str, Any], *, lead: bool, duration_ms: int) -> None:
        """The sentence a part ends (a part after a lead piece completes its sentence)."""
        if self._open and self.sentences:
            self.sentences.pop()
        self.sentences.append(timing)
        self._open = lead
        self.duration_ms = duration_ms

    def to_json(self, *, voice: str) -> dict[str, Any]:
        """The timings document clients rely on."""
        return {"duration_ms": self.duration_ms, "voice": voice, "sentences": self.sentences}


@dataclass(eq=False)
class RemoteReading:
    """A reading under way on some worker, as a listener on this replica follows it."""

    work: RedisWork
    article_id: str
    version: str
    voice: str = ""
    timeline: LiveTimeline = field(default_factory=LiveTimeline)

    async def stream(self, on_cut: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """The article's MP3 from the first byte, as the worker stores its parts.

        Raises:
            LangduError: the reading failed (or was lost) before this listener heard any.
        """
        sent = 0  # parts sent (a retried attempt announces them again: skipped)
        sentences = 0
        heard = 0
        silent = 0
        key = Work(self.article_id, self.version, Priority.LISTENER)
        async for entry in self.work.follow(self.article_id, self.version):
            if entry is None:
                silent += 1
                if silent >= _LOST_AFTER and await self.work.pending(key) is None:
                    raise LangduError("the reading stopped; try again")
                continue
            silent = 0
            kind = entry["kind"].decode()
            if kind == "restart":
                if heard:
                    if on_cut is not None:
                        on_cut(sentences)
                    return
                sent, sentences = 0, 0
            elif kind == "part":
                voice = entry["voice"].decode()
                if int(entry["n"]) < sent and voice == self.voice:
                    continue  # sent already, in an earlier attempt
                if heard and voice != self.voice:
                    if on_cut is not None:  # a retry in another voice: never mid-stream
                        on_cut(sentences)
                    return
                self.voice = voice
                timing = json.loads(entry["timing"])
                self.timeline.add(
                    timing, lead=entry["lead"] == b"1", duration_ms=int(entry["duration"])
                )
                data = entry["data"]
                heard += len(data)
                sent += 1
                sentences += entry["lead"] != b"1"
                yield data
            elif kind == "end":
                error = entry["error"].decode()
                if error and not heard:
                    raise LangduError(error)
                return

    async def wait(self) -> None:
        """Until the reading has ended."""
        async for entry in self.work.follow(self.article_id, self.version):
            if entry is not None and entry["kind"] == b"end":
                return
            if entry is None and (
                await self.work.pending(Work(self.article_id, self.version, Priority.LISTENER))
                is None
            ):
                return


@dataclass(eq=False)
class AnnouncedJob(Job):
    """A job a worker runs: what it publishes for listeners is announced on the stream."""

    work: RedisWork | None = None
    version: str = ""
    _n: int = 0

    async def restart(self, voice: str) -> None:
        await super().restart(voice)
        self._n = 0
        assert self.work is not None
        await self.work.announce(self.article_id, self.version, {"kind": "restart", "voice": voice})

    async def publish(
        self, data: bytes | None, *, finished: bool = False, whole: bool = True
    ) -> None:
        assert self.work is not None
        if data:
            timing = self.timeline.sentences[-1].to_json() if self.timeline.sentences else {}
            await self.work.announce(
                self.article_id,
                self.version,
                {
                    "kind": "part",
                    "n": self._n,
                    "voice": self.voice,
                    "lead": "0" if whole else "1",
                    "data": data,
                    "timing": json.dumps(timing, ensure_ascii=False),
                    "duration": self.timeline.duration_ms,
                },
            )
            self._n += 1
        if finished:
            error = "" if self.error is None else str(self.error)
            await self.work.announce(self.article_id, self.version, {"kind": "end", "error": error})
        await super().publish(data, finished=finished, whole=whole)


class SharedQueue:
    """The replica's side: readings queued for the cluster, fair shares counted across it."""

    def __init__(self, work: RedisWork, *, max_active: int, max_queue: int) -> None:
        self.work = work
        self._limit = max_active + max_queue
        self._per_client = max(2, self._limit // 4)

    async def admit(self, client: str) -> None:
        """Check that a listener's new article could be queued (counted over every replica).

        Raises:
            QueueFullError: too many listeners' articles are in hand.
            ClientBusyError: this client has its share in hand already.
        """
        listeners = await self.work.in_hand(Priority.LISTENER)
        if client and sum(1 for w in listeners if w.client == client) >= self._per_client:
            raise ClientBusyError(
                f"{self._per_client} of your articles are being read or wait already;"
                " try again when one is done"
            )
        if len(listeners) >= self._limit:
            raise QueueFullError("the synthesis queue is full; try again shortly")

    async def make_episode(self, article_id: str) -> None:
        """Have a worker make (or bring up to date) the article's podcast episode."""
        work = Work(article_id, "", Priority.BACKGROUND, episode=True)
        if await self.work.submit(work):
            log.info("article %s: episode queued", article_id)

    async def submit(self, work: Work) -> RemoteReading:
        """Queue the reading (unless it is queued or running already); follow it."""
        if work.priority == Priority.LISTENER and await self.work.pending(work) is None:
            await self.admit(work.client)
        if await self.work.submit(work):
            log.info("article %s: queued (%s)", work.article_id, work.priority.name.lower())
        return RemoteReading(self.work, work.article_id, work.version)


Run = Callable[[Job], Any]


class Worker:
    """`langdu worker`'s loop: `slots` readings at once, listeners' first; background work
    never on the last free slot, and none at all while a newer deployment runs; every job
    beats while it runs; stuck jobs of dead workers are swept back to the queue."""

    def __init__(
        self,
        work: RedisWork,
        run: Run,
        *,
        slots: int,
        episode: Callable[[str], Awaitable[None]],
        outdated: Callable[[], bool] = lambda: False,
    ) -> None:
        self._work = work
        self._run = run
        self._episode = episode
        self._outdated = outdated
        self._slots = slots
        self._busy = 0
        self._background = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._reading: set[asyncio.Task[None]] = set()  # slots with a job in hand
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Work until cancelled. On the way out, idle slots leave at their next turn (a
        Redis call is never cut in half: a client cancelled mid-reply can hang), and a job in
        hand is cancelled and given back to the queue."""
        self._tasks = [
            asyncio.create_task(self._slot(i), name=f"langdu-worker-{i}")
            for i in range(self._slots)
        ]
        self._tasks.append(asyncio.create_task(self._sweeper(), name="langdu-sweeper"))
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._stop.set()
            for task in self._reading:
                task.cancel()
            _, late = await asyncio.wait(self._tasks, timeout=_STOP_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=_STOP_S)
                log.warning("%d worker tasks were slow to stop", len(late))

    def _priorities(self) -> list[Priority]:
        if self._outdated():  # a newer deployment runs: its workers re-render and upgrade
            return [Priority.LISTENER]
        reserve = 1 if self._slots > 1 else 0
        if self._background < self._slots - reserve:
            return [Priority.LISTENER, Priority.BACKGROUND, Priority.UPGRADE]
        return [Priority.LISTENER]

    async def _sweeper(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(LangduError):
                swept = await self._work.sweep()
                if swept:
                    log.warning("put back %d jobs of workers that stopped", len(swept))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BEAT_EVERY_S):
                    await self._stop.wait()

    async def _slot(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                taken = await self._work.take(self._priorities(), wait_s=0.05)
            except LangduError as exc:
                log.warning("worker slot %d: %s", index, exc)
                await asyncio.sleep(1.0)
                continue
            if taken is None:
                continue
            background = taken.work.priority != Priority.LISTENER
            self._busy += 1
            self._background += background
            me = asyncio.current_task()
            assert me is not None
            self._reading.add(me)
            try:
                await self._do(taken)
            finally:
                self._reading.discard(me)
                self._busy -= 1
                self._background -= background

    async def _do(self, taken: Taken) -> None:
        work = taken.work
        if not await taken.claim():
            await taken.done()  # another worker reads it now: this job is a duplicate
            return
        if work.episode:
            await self._make_episode(taken)
            return
        log.info("reading %s (attempt %d)", work.key, taken.attempt)
        job = AnnouncedJob(
            article_id=work.article_id,
            priority=work.priority,
            upgrade=work.upgrade,
            client=work.client,
            work=self._work,
            version=work.version,
        )
        await self._work.announce(
            work.article_id, work.version, {"kind": "start", "attempt": taken.attempt}
        )
        crash = await self._held(taken, self._run(job), f"reading {work.key}")
        if crash is not None:
            job.error = job.error or LangduError(f"internal error: {type(crash).__name__}")
        with contextlib.suppress(LangduError):
            await job.publish(None, finished=True)
            await taken.done()

    async def _make_episode(self, taken: Taken) -> None:
        # A failure is logged; the next publication or reconcile asks again.
        await self._held(
            taken, self._episode(taken.work.article_id), f"episode of {taken.work.article_id}"
        )
        with contextlib.suppress(LangduError):
            await taken.done()

    async def _held(self, taken: Taken, work: Awaitable[None], what: str) -> Exception | None:
        """Run `work` with the job's heartbeat; on cancellation give the job back. Returns
        what it crashed with, if it did (logged: a bug in one job must not take the slot
        down)."""
        beating = asyncio.create_task(self._beat(taken))
        try:
            await work
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(taken.give_back("the worker stopped"))
            raise
        except Exception as exc:
            log.exception("%s crashed", what)
            return exc
        finally:
            beating.cancel()
        return None

    async def _beat(self, taken: Taken) -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            with contextlib.suppress(LangduError):
                if not await taken.beat():
                    log.warning("reading %s: its lease was lost", taken.work.key)
