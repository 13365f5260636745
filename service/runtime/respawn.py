"""A process pool that outlives its workers: when one dies (the kernel's OOM killer, a
signal, a crash in native code), it is replaced, and the work it was doing is tried again on
the new one (for work that is safe to repeat) or fails with BrokenProcessPool.

Each worker has a pipe of its own, and a thread in this process feeds it one call at a time.
A dead worker's pipe reads as end-of-file at once, whatever it was doing. The standard
library's ProcessPoolExecutor is not used: its workers share one result pipe, and a worker
killed while writing a large result there leaves half a message that its manager thread waits
on forever, so that pool never learns it is broken and its work never finishes
(tests/runtime/test_respawn.py reproduces it). A plain ProcessPoolExecutor is also broken
for good once a worker dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its __cause__ in this process)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _serve(
    conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker's life: initialize, then answer calls until the pipe closes."""
    if initializer is not None:
        initializer(*initargs)  # if it raises, the worker exits: its pipe reads as closed
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return
        if call is None:
            return
        fn, args, kwargs = call
        try:
            answer: tuple[bool, Any, str] = (True, fn(*args, **kwargs), "")
        except BaseException as exc:
            answer = (False, exc, "".join(traceback.format_exception(exc)))
        try:
            conn.send(answer)
        except Exception as exc:  # an answer that cannot be pickled
            conn.send((False, RuntimeError(f"the answer cannot be sent back: {exc!r}"), ""))


@dataclass
class _Call:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    left: int  # how many more times it may run if its worker dies
    started: bool = False


class RespawningPool(Executor):
    """`workers` spawned processes, each prepared by `initializer(*initargs)`, started on
    first use; a call whose worker died is run again up to `retries` times before
    BrokenProcessPool reaches the caller."""

    def __init__(
        self,
        workers: int,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        retries: int = 1,
        name: str = "langdu-pool",
    ) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._context = multiprocessing.get_context("spawn")
        self._initializer = initializer
        self._initargs = initargs
        self._retries = retries
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.respawned = 0  # how many dead workers were replaced
        self._feeders = [
            threading.Thread(target=self._feed, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for feeder in self._feeders:
            feeder.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            future: Future[T] = Future()
            self._calls.put(_Call(future, fn, args, kwargs, self._retries))
        return future

    def _start(self) -> tuple[BaseProcess, Connection]:
        mine, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve, args=(theirs, self._initializer, self._initargs), daemon=True
        )
        try:
            process.start()
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()  # the worker holds the only other end: its death closes the pipe
        return process, mine

    def _feed(self) -> None:
        """One worker's feeder: take a call, send it, wait for the answer or the worker's
        death; start the worker when the first call comes, and again after it dies."""
        worker: tuple[BaseProcess, Connection] | None = None
        while True:
            call = self._calls.get()
            if call is None:
                break
            if not call.started and not call.future.set_running_or_notify_cancel():
                continue
            call.started = True
            try:
                payload = ForkingPickler.dumps((call.fn, call.args, call.kwargs))
            except Exception as exc:  # the call cannot be sent: the worker is not involved
                call.future.set_exception(exc)
                continue
            idle, worker = worker, None
            try:
                worker = self._deliver(idle, payload)  # `idle` is the feeder's no more
                ok, value, remote = worker[1].recv()
            except (EOFError, OSError) as exc:
                if worker is not None:
                    self._lost(worker)
                    worker = None
                self._after_death(call, exc)
                continue
            except Exception as exc:  # an answer that cannot be unpickled here
                call.future.set_exception(exc)
                continue
            if ok:
                call.future.set_result(value)
            else:
                if remote and isinstance(value, BaseException):
                    value.__cause__ = RemoteTraceback(remote)
                call.future.set_exception(value)
        if worker is not None:
            with contextlib.suppress(OSError):
                worker[1].send(None)
            _bury(worker, grace=5.0)

    def _deliver(
        self, worker: tuple[BaseProcess, Connection] | None, payload: memoryview
    ) -> tuple[BaseProcess, Connection]:
        """Send a call to `worker` (started if there is none) and return it. A worker that
        died while idle fails the send at once (its end of the pipe is closed): it is
        replaced, and the call does not count that death against its retries, since it
        never reached the worker. A new worker that cannot take the call raises OSError."""
        if worker is not None:
            try:
                worker[1].send_bytes(payload)
                return worker
            except OSError:
                self._lost(worker)
        worker = self._start()
        try:
            worker[1].send_bytes(payload)
        except OSError:
            self._lost(worker)
            raise
        return worker

    def _lost(self, worker: tuple[BaseProcess, Connection]) -> None:
        _bury(worker)
        with self._lock:
            self.respawned += 1

    def _after_death(self, call: _Call, cause: BaseException) -> None:
        with self._lock:
            if call.left > 0 and not self._closed:
                call.left -= 1
                self._calls.put(call)
                return
        error = BrokenProcessPool("a worker died while doing this work")
        error.__cause__ = cause
        call.future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                waiting: list[_Call] = []
                with contextlib.suppress(queue.Empty):
                    while True:
                        item = self._calls.get_nowait()
                        if item is not None:
                            waiting.append(item)
                for item in waiting:
                    if item.started:
                        item.future.set_exception(BrokenProcessPool("the pool was shut down"))
                    else:
                        item.future.cancel()
            for _ in self._feeders:
                self._calls.put(None)
        if wait:
            for feeder in self._feeders:
                feeder.join()


def _bury(worker: tuple[BaseProcess, Connection], grace: float = 0.0) -> None:
    """Close a worker's pipe and reap it (killing it if it does not end within `grace`)."""
    process, conn = worker
    conn.close()
    process.join(grace)
    if process.exitcode is None:
        process.kill()
        process.join()
