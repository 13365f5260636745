"""The shared work queue on Redis: saq's queues (one per priority) with heartbeats, retries and
sweeping; a lease per reading; a Redis Stream per reading for live listeners; locks.

A job is keyed by article and render version, so one reading is queued once per priority
whichever replica asks; a reading lease (`SET NX PX`, renewed with every heartbeat) makes
a job for the same reading taken from another priority's queue a no-op while it runs.
A worker that dies stops beating: after `HEARTBEAT_S` the sweep (run by every worker, one
at a time in the cluster) puts its job back, and the lease has expired by then, so another
worker reads the article again, reusing the parts already stored. Jobs are taken with a
mark (`_TAKE`) the sweep respects, so a job is never swept while its worker takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from service.errors import BackendUnavailableError, ConfigError
from service.store.queue import Work
from service.store.registry import Priority

HEARTBEAT_S = 15  # a job not touched for this long is stuck: its worker died
BEAT_EVERY_S = 3.0
LEASE_MS = 12_000  # a reading's lease: renewed every beat, gone before the sweep retries
RETRIES = 5  # attempts per job (a worker dying mid-reading uses one)
LIVE_TTL_S = 3600  # a live stream outlives its reading by this long
_UNAVAILABLE = "the job queue is unavailable; try again later"
_NAMES = {
    Priority.LISTENER: "listener",
    Priority.BACKGROUND: "background",
    Priority.UPGRADE: "upgrade",
}

# Renew or release a lease only if it is still ours.
_IF_OURS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call({}) else return 0 end"
_RENEW = _IF_OURS.format("'PEXPIRE', KEYS[1], ARGV[2]")
_RELEASE = _IF_OURS.format("'DEL', KEYS[1]")
# Take the next job and mark it taken, at once: the sweep leaves a job alone while the
# worker that took it marks it active (saq's own dequeue leaves that moment open).
_TAKE = """
local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if id then redis.call('SET', ARGV[1] .. id, '1', 'PX', ARGV[2]) end
return id
"""
_TAKEN_MS = 30_000


@contextlib.contextmanager
def _reaching() -> Iterator[None]:
    """Redis's connection failures as langdu's."""
    import redis.exceptions

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise BackendUnavailableError(_UNAVAILABLE) from exc


class Taken:
    """A job a worker took: the work, which attempt this is, and its heartbeat."""

    def __init__(self, owner: RedisWork, job: Any, work: Work) -> None:
        self._owner = owner
        self._job = job
        self.work = work
        self.attempt = int(job.attempts)
        self.token = f"{owner.worker_id}:{uuid.uuid4().hex[:8]}"

    async def beat(self) -> bool:
        """Tell the queue this job is alive; renew its reading lease. False if the lease
        was lost (the job was given to another worker meanwhile)."""
        with _reaching():
            await self._job.update()
            renewed = await self._owner.redis.eval(
                _RENEW, 1, self._owner.lease_key(self.work), self.token, LEASE_MS
            )
        return bool(renewed)

    async def claim(self) -> bool:
        """Take the reading's lease: False if another worker is reading it now."""
        with _reaching():
            won = await self._owner.redis.set(
                self._owner.lease_key(self.work), self.token, nx=True, px=LEASE_MS
            )
        return bool(won)

    async def done(self, *, error: str | None = None) -> None:
        """The job is over (an error: it failed for good, nothing to retry)."""
        from saq.job import Status

        with _reaching():
            await self._job.finish(Status.FAILED if error else Status.COMPLETE, error=error)
            await self._owner.redis.eval(_RELEASE, 1, self._owner.lease_key(self.work), self.token)

    async def give_back(self, reason: str) -> None:
        """Put the job back for another worker (this one is stopping)."""
        with _reaching():
            await self._job.retry(reason)
            await self._owner.redis.eval(_RELEASE, 1, self._owner.lease_key(self.work), self.token)


class RedisWork:
    """Readings to do, live streams and locks, under `prefix` in one Redis database."""

    def __init__(self, url: str, *, prefix: str) -> None:
        import redis.asyncio as aioredis
        from saq.queue.redis import RedisQueue

        self.prefix = prefix
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.redis: Any = aioredis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        self._queues = {
            p: RedisQueue(self.redis, name=f"{prefix}-{name}") for p, name in _NAMES.items()
        }
        self._taken_prefix = f"{prefix}:taken:"

    # --- life -----------------------------------------------------------------------------

    async def ping(self) -> None:
        """Reach Redis.

        Raises:
            BackendUnavailableError: it cannot be reached now.
        """
        with _reaching():
            await self.redis.ping()

    async def aclose(self) -> None:
        """Release the connections (saq's pub/sub is never used: nothing to close there)."""
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def lease_key(self, work: Work) -> str:
        """The Redis key of a reading's lease."""
        return f"{self.prefix}:lease:{work.key}"

    def live_key(self, article_id: str, version: str) -> str:
        """The Redis Stream a reading is announced on."""
        return f"{self.prefix}:live:{article_id}:{version}"

    # --- asking for work ------------------------------------------------------------------

    async def submit(self, work: Work) -> bool:
        """Queue a reading unless it is queued or running at that priority already.
        Returns True if it was queued now."""
        from saq.job import Job

        job = Job(
            function="read",
            key=work.key,
            kwargs={
                "article_id": work.article_id,
                "version": work.version,
                "priority": int(work.priority),
                "upgrade": work.upgrade,
                "client": work.client,
                "episode": work.episode,
            },
            heartbeat=HEARTBEAT_S,
            retries=RETRIES,
            timeout=0,
            ttl=600,
        )
        with _reaching():
            return await self._queues[work.priority].enqueue(job) is not None

    async def in_hand(self, priority: Priority = Priority.LISTENER) -> list[Work]:
        """Every reading queued or running at `priority`, across the cluster."""
        queue = self._queues[priority]
        with _reaching():
            ids = await self.redis.zrange(queue.namespace("incomplete"), 0, -1)
            payloads = await self.redis.mget(ids) if ids else []
        found = []
        for raw in payloads:
            if raw:
                found.append(_work(json.loads(raw)["kwargs"]))
        return found

    async def pending(self, work: Work) -> str | None:
        """ "active" while some worker reads it, "queued" while a job for it waits (or is
        being put back after its worker died), else None."""
        with _reaching():
            if await self.redis.exists(self.lease_key(work)):
                return "active"
            ids = [queue.job_id(work.key) for queue in self._queues.values()]
            payloads = await self.redis.mget(ids)
        for raw in payloads:
            if raw and json.loads(raw).get("status") in ("new", "queued", "active", "aborting"):
                return "queued"
        return None

    # --- doing work -----------------------------------------------------------------------

    async def take(self, priorities: Sequence[Priority], wait_s: float) -> Taken | None:
        """The next job, most urgent priority first, waiting up to `wait_s` for one."""
        from saq.job import Status

        with _reaching():
            for priority in priorities:
                queue = self._queues[priority]
                job_id = await self.redis.eval(
                    _TAKE,
                    2,
                    queue.namespace("queued"),
                    queue.namespace("active"),
                    self._taken_prefix,
                    _TAKEN_MS,
                )
                if job_id is not None:
                    job = await queue._get_job_by_id(job_id)
                    if job is None:  # swept meanwhile
                        await self.redis.lrem(queue.namespace("active"), 0, job_id)
                        continue
                    job.started = _now_ms()
                    job.attempts += 1
                    job.worker_id = self.worker_id
                    await job.update(status=Status.ACTIVE)
                    return Taken(self, job, _work(job.kwargs or {}))
        await asyncio.sleep(wait_s)
        return None

    async def sweep(self) -> list[str]:
        """Put back the jobs of workers that stopped beating, or died taking them (one
        sweeper in the cluster at a time). Returns the keys of the jobs put back."""
        from saq.job import Status

        swept: list[str] = []
        if not await self.once("sweep", BEAT_EVERY_S * 0.9):
            return swept
        with _reaching():
            for queue in self._queues.values():
                active = queue.namespace("active")
                for job_id in await self.redis.lrange(active, 0, -1):
                    job = await queue._get_job_by_id(job_id)
                    if job is None:  # its record expired: nothing to run
                        await self.redis.lrem(active, 0, job_id)
                        await self.redis.zrem(queue.namespace("incomplete"), job_id)
                        continue
                    if job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
                        await self.redis.lrem(active, 0, job_id)  # finished: tidy the list
                        continue
                    fresh = await self.redis.exists(self._taken_prefix + job_id.decode())
                    if (job.status == Status.ACTIVE and not job.stuck) or fresh:
                        continue  # beating, or being taken right now
                    swept.append(job.key)
                    if job.retryable:
                        await queue.retry(job, "its worker stopped")
                    else:
                        await queue.finish(job, Status.FAILED, error="its worker stopped")
        return swept

    async def once(self, name: str, every_s: float) -> bool:
        """True for one caller in the whole cluster per `every_s` seconds (periodic work)."""
        with _reaching():
            won = await self.redis.set(
                f"{self.prefix}:once:{name}", self.worker_id, nx=True, px=int(every_s * 1000)
            )
        return bool(won)

    async def value(self, name: str) -> str | None:
        """A small shared value (the scrubber's place, say)."""
        with _reaching():
            raw = await self.redis.get(f"{self.prefix}:value:{name}")
        return None if raw is None else raw.decode()

    async def set_value(self, name: str, value: str, *, ttl_s: float | None = None) -> None:
        """Set a small shared value (gone after `ttl_s` seconds, if given)."""
        with _reaching():
            await self.redis.set(
                f"{self.prefix}:value:{name}",
                value,
                px=None if ttl_s is None else int(ttl_s * 1000),
            )

    # --- live readings --------------------------------------------------------------------

    async def announce(self, article_id: str, version: str, entry: Mapping[str, Any]) -> None:
        """Add an entry to a reading's live stream."""
        key = self.live_key(article_id, version)
        with _reaching():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, dict(entry))
                pipe.expire(key, LIVE_TTL_S)
                await pipe.execute()

    async def follow(
        self, article_id: str, version: str, *, block_ms: int = 2000
    ) -> AsyncIterator[dict[str, bytes] | None]:
        """A reading's live stream from its first entry, as entries appear; None each time
        `block_ms` passes with nothing new (the caller decides whether to go on waiting)."""
        key = self.live_key(article_id, version)
        last = "0-0"
        while True:
            with _reaching():
                answer = await self.redis.xread({key: last}, count=64, block=block_ms)
            if not answer:
                yield None
                continue
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    yield {
                        (k.decode() if isinstance(k, bytes) else str(k)): v
                        for k, v in fields.items()
                    }

    async def forget_live(self, article_id: str, version: str) -> None:
        """Drop a reading's live stream (a new reading of the same version starts clean)."""
        with _reaching():
            await self.redis.delete(self.live_key(article_id, version))


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _work(kwargs: Mapping[str, Any]) -> Work:
    return Work(
        article_id=str(kwargs["article_id"]),
        version=str(kwargs["version"]),
        priority=Priority(int(kwargs["priority"])),
        upgrade=bool(kwargs.get("upgrade")),
        client=str(kwargs.get("client") or ""),
        episode=bool(kwargs.get("episode")),
    )


def connect(url: str, *, prefix: str) -> RedisWork:
    """redis://host:port/db.

    Raises:
        ConfigError: the redis or saq client is not installed.
    """
    import importlib.util

    for module in ("redis", "saq"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"a redis:// queue needs {module}: pip install 'langdu[cluster]'")
    return RedisWork(url, prefix=prefix)
