"""Engine worker processes: a fixed number of `python -m <module>` children, one request
at a time each, over pipes.

A library with global state or a long computation (espeak-ng, a neural model) runs in
workers: N workers use N cores, the event loop only waits on pipes, and a crash costs one
restarted worker, not the service. Protocol: the worker greets with a JSON line holding at
least {"rate": int}; then per request a JSON line in, and a JSON line {"ok": true,
"bytes": n, ...} followed by n bytes out, or {"ok": false, "error": str}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from service.engines.base import Clip, word_marks
from service.errors import EngineError

_STREAM_LIMIT = 64 * 1024 * 1024


class Refused(Exception):
    """The worker is healthy but refused the request (its message is the reason)."""


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label

    @classmethod
    async def start(cls, module: str, args: Sequence[str], label: str) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            str(os.getpid()),  # the worker dies with us
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=_STREAM_LIMIT,
        )
        worker = cls(proc, label)
        greeting = await worker._read_head()
        if not isinstance(greeting.get("rate"), int):
            raise EngineError(f"{label} worker sent a malformed greeting")
        return worker

    async def _read_head(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise EngineError(f"{self.label} worker exited unexpectedly")
        head = json.loads(line)
        if not isinstance(head, dict):
            raise EngineError(f"{self.label} worker sent a malformed reply")
        return head

    async def ask(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request, ensure_ascii=False).encode() + b"\n")
        await self.proc.stdin.drain()
        head = await self._read_head()
        if not head.get("ok"):
            raise Refused(str(head.get("error")))
        size = head.get("bytes")
        if not isinstance(size, int) or size < 0:
            raise EngineError(f"{self.label} worker sent a malformed reply")
        return head, await self.proc.stdout.readexactly(size)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                async with asyncio.timeout(2):  # not wait_for: see upkeep
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class WorkerPool:
    """`size` workers running `python -m module *args <our pid>`, started on first use
    (or by warm_up); a worker that dies is replaced and its request tried once more."""

    def __init__(self, module: str, args: Sequence[str], *, size: int, label: str) -> None:
        if size < 1:
            raise ValueError("workers must be at least 1")
        self._module = module
        self._args = tuple(args)
        self._size = size
        self.label = label
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: list[_Worker] = []

    def _queue(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:
            # Slots start empty (None): a worker process is started on first use of a slot.
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(None)
        return self._idle

    async def warm_up(self) -> None:
        """Start every worker now rather than on the first requests.

        Raises:
            EngineError: a worker could not start.
        """
        queue = self._queue()
        slots = [await queue.get() for _ in range(self._size)]
        started = await asyncio.gather(*(self._ready(s) for s in slots), return_exceptions=True)
        for w in started:
            queue.put_nowait(w if isinstance(w, _Worker) else None)
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            raise EngineError(f"cannot start {self.label}: {errors[0]}") from errors[0]

    async def _ready(self, worker: _Worker | None) -> _Worker:
        if worker is not None:
            return worker
        try:
            worker = await _Worker.start(self._module, self._args, self.label)
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot start {self.label} worker: {exc}") from exc
        self._all.append(worker)
        return worker

    async def ask(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The next free worker's answer to `request`: (reply head, payload).

        Raises:
            EngineError: the worker refused, or died twice in a row.
        """
        queue = self._queue()
        for attempt in (1, 2):
            worker = await queue.get()
            try:
                worker = await self._ready(worker)
                answer = await worker.ask(request)
            except Refused as exc:
                queue.put_nowait(worker)  # refused this request; the worker is fine
                raise EngineError(f"{self.label} failed: {exc}") from exc
            except BaseException as exc:
                # Died, or cancelled mid-reply: the pipes are in an unknown state.
                if worker is not None:
                    await self._retire(worker)
                queue.put_nowait(None)
                if attempt == 2 or not isinstance(
                    exc, EngineError | OSError | asyncio.IncompleteReadError
                ):
                    raise
                continue
            queue.put_nowait(worker)
            return answer
        raise AssertionError("unreachable")

    async def speak(self, request: dict[str, Any]) -> Clip:
        """The clip a worker speaks for `request` (with the words it times, if any).

        Raises:
            EngineError: refused, no audio, or the worker died twice in a row.
        """
        head, pcm = await self.ask(request)
        if not pcm:
            raise EngineError(
                f"{self.label} produced no audio for {str(request.get('text'))[:20]!r}"
            )
        return Clip(pcm=pcm, sample_rate=int(head["rate"]), words=word_marks(head.get("words")))

    async def _retire(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError):
            self._all.remove(worker)
        with contextlib.suppress(ProcessLookupError):
            worker.proc.kill()
        await worker.proc.wait()

    async def aclose(self) -> None:
        """Stop every worker process."""
        workers, self._all = self._all, []
        await asyncio.gather(*(w.stop() for w in workers))
        self._idle = None


class PooledEngine:
    """What every engine whose work runs on a `WorkerPool` (`self._pool`) does alike."""

    _pool: WorkerPool

    async def warm_up(self) -> None:
        """Start every worker process now (each loads what it needs) rather than on the
        first chunks."""
        await self._pool.warm_up()

    async def aclose(self) -> None:
        """Stop every worker process."""
        await self._pool.aclose()
