"""Where article parsing (extraction, sentence splitting) runs: never on the event loop, and
on a bounded pool, so a handful of megabyte posts cannot starve everyone else's requests.

With `workers >= 1` parsing runs in that many worker processes (the server's default: the
CPU it takes cannot slow the event loop at all, and a worker is capped in memory); with
`workers = 0`, on one thread of this process (tests, and machines that cannot spawn).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import resource
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from service.errors import InputError, WorkerLostError
from service.runtime.lifeline import die_with_parent, name_process, yield_cpu
from service.runtime.respawn import RespawningPool

T = TypeVar("T")

_WORKER_MEMORY = 1024**3  # address space a parsing worker may use


def _worker_init(parent: int, max_bytes: int, preload: tuple[str, ...]) -> None:
    die_with_parent(parent)
    name_process("langdu-parse")
    yield_cpu()
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > max_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))
    # Load what parsing needs now, not on the first article.
    for module in preload:
        importlib.import_module(module)


class ParsePool:
    """A bounded pool for parsing work, rebuilt if a worker dies."""

    def __init__(
        self, workers: int, *, worker_memory: int = _WORKER_MEMORY, preload: tuple[str, ...] = ()
    ) -> None:
        """`preload`: modules each worker imports as it starts (what the work will call)."""
        self._workers = workers
        self._memory = worker_memory
        self._preload = preload
        self._pool = self._make()

    def _make(self) -> Executor:
        if self._workers <= 0:
            return ThreadPoolExecutor(1, thread_name_prefix="langdu-parse")
        # Not retried: the input that killed a worker would kill the next one too.
        return RespawningPool(
            self._workers,
            initializer=_worker_init,
            initargs=(os.getpid(), self._memory, self._preload),
            retries=0,
            name="langdu-parse",
        )

    async def warm_up(self) -> None:
        """Start the workers now (a spawned worker takes a moment to import)."""
        await self.run(int, 0)

    async def run(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """`fn(*args, **kwargs)` on the pool.

        Raises:
            InputError: the input took more memory than a parsing worker may use.
            WorkerLostError: a worker died (the pool is rebuilt for the next request).
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        except MemoryError as exc:
            raise InputError("the article is too large to parse") from exc
        except BrokenProcessPool as exc:
            raise WorkerLostError("a parsing worker died; try again") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
