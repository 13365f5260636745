"""Work shared by every replica and worker (the cluster configuration): the readings to do,
queued by priority with leases and retries, the live stream of each reading, and locks for
work that must run once per cluster.

One backend, chosen by `LANGDU_QUEUE_URL`'s scheme: `redis://host:port/db` (saq's queues,
Redis Streams and keys with expiry), in `redis.py`. Without a queue URL none of this is
used: the core's in-process `JobQueue` runs the work. Needs the `cluster` extra.

It may import `config`, `errors` and `store.registry` (for `Priority`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.store.backends import backend_module
from service.store.registry import Priority

if TYPE_CHECKING:
    from service.store.queue.redis import RedisWork


@dataclass(frozen=True, slots=True)
class Work:
    """One reading asked for: the article, the render version it is to have, how urgent it
    is, whether it only upgrades a fallback reading, and the client that asked first; or
    the making of an article's podcast episode."""

    article_id: str
    version: str
    priority: Priority
    upgrade: bool = False
    client: str = ""
    episode: bool = False  # not a reading: the podcast episode of the article's audio

    @property
    def key(self) -> str:
        """Single-flight key: one reading of an article per render version (one episode
        making per article)."""
        return f"{self.article_id}:episode" if self.episode else f"{self.article_id}:{self.version}"


def connect(url: str, *, prefix: str) -> RedisWork:
    """The shared work queue named by a URL (redis://host:port/db), its keys under `prefix`.

    Raises:
        ConfigError: no backend for that scheme, or its client is not installed.
    """
    module = backend_module("service.store.queue", url, what="queue", example="redis://host:6379/0")
    queue: RedisWork = module.connect(url, prefix=prefix)
    return queue


__all__ = ["Work", "connect"]
