"""A process pool that outlives its workers: when one dies (the kernel's OOM killer, a
signal, a crash in native code), the pool is rebuilt and the work it was doing is tried
again on the new one.

A plain ProcessPoolExecutor is broken for good once a worker dies: every later call would
fail until the server restarts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class RespawningPool(Executor):
    """Submit work to a process pool made by `make`; a call whose worker died is run again
    up to `retries` times (only for work that is safe to repeat) before BrokenProcessPool
    reaches the caller. Either way the next call gets a fresh pool."""

    def __init__(self, make: Callable[[], ProcessPoolExecutor], *, retries: int = 1) -> None:
        self._make = make
        self._retries = retries
        self._lock = threading.Lock()
        self._pool = make()
        self._closed = False
        self.respawned = 0  # how many times a dead worker's pool was replaced

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        outer: Future[T] = Future()
        self._send(outer, fn, args, kwargs, self._retries)
        return outer

    def _send(
        self,
        outer: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        left: int,
    ) -> None:
        pool = self._pool
        try:
            inner = pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._renew(pool)
            pool = self._pool
            inner = pool.submit(fn, *args, **kwargs)

        def done(f: Future[Any]) -> None:
            if outer.cancelled():
                return
            if f.cancelled():
                outer.cancel()
                return
            exc = f.exception()
            if isinstance(exc, BrokenProcessPool):
                self._renew(pool)
                if left > 0 and not self._closed:
                    self._send(outer, fn, args, kwargs, left - 1)
                    return
            try:
                if exc is not None:
                    outer.set_exception(exc)
                else:
                    outer.set_result(f.result())
            except Exception:
                pass

        inner.add_done_callback(done)

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken or self._closed:
                return  # another call has replaced it already
            self._pool = self._make()
            self.respawned += 1
        # The broken pool has terminated its workers; let its threads go.
        threading.Thread(target=broken.shutdown, kwargs={"wait": False}, daemon=True).start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)
