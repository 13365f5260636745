"""Offline Mandarin engine: libespeak-ng (from the `espeakng-loader` wheel) in worker processes.

libespeak-ng keeps global state and speaks one text at a time, so each worker is a
process of its own (`espeak_worker`): N workers use N cores, the event loop only waits on
pipes, and a crash in the C library costs one restarted worker, not the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING

from service.engines.base import Clip, SpeechOptions, parse_pitch, parse_rate
from service.errors import EngineError, OptionError

if TYPE_CHECKING:
    from service.config import Settings

_DEFAULT_WPM = 175
_DEFAULT_PITCH = 50
_MEAN_PITCH_HZ = 120.0  # rough mean F0 of the cmn voice: maps "+10Hz" onto espeak's 0-100
_STREAM_LIMIT = 64 * 1024 * 1024
_PRELOAD_VOICE = "cmn"  # every Mandarin preset uses it (variants share its dictionary)
_VOICE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,16})?$")  # cmn, cmn+f3
_ADAPTER_VERSION = 1  # bump when this adapter changes what it asks of espeak-ng


def _library_version() -> str:
    try:
        return package_version("espeakng-loader")
    except PackageNotFoundError:
        return "unknown"


class _SynthFailed(Exception):
    """The worker is healthy but espeak-ng refused the request."""


class _Worker:
    """One `python -m service.engines.espeak_worker` process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, sample_rate: int) -> None:
        self.proc = proc
        self.sample_rate = sample_rate

    @classmethod
    async def start(cls) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.engines.espeak_worker",
            _PRELOAD_VOICE,
            str(os.getpid()),  # the worker dies with us
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=_STREAM_LIMIT,
        )
        worker = cls(proc, 0)
        head = await worker._read_head()
        rate = head.get("rate")
        if not isinstance(rate, int):
            raise EngineError("espeak-ng worker sent a malformed greeting")
        worker.sample_rate = rate
        return worker

    async def _read_head(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise EngineError("espeak-ng worker exited unexpectedly")
        head = json.loads(line)
        if not isinstance(head, dict):
            raise EngineError("espeak-ng worker sent a malformed reply")
        return head

    async def synth(self, text: str, voice: str, wpm: int, pitch: int) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"text": text, "voice": voice, "wpm": wpm, "pitch": pitch}
        self.proc.stdin.write(json.dumps(req, ensure_ascii=False).encode() + b"\n")
        await self.proc.stdin.drain()
        head = await self._read_head()
        if not head.get("ok"):
            raise _SynthFailed(str(head.get("error")))
        size = head.get("bytes")
        assert isinstance(size, int)
        return await self.proc.stdout.readexactly(size)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 2)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class EspeakEngine:
    """espeak-ng Mandarin on a fixed number of worker processes."""

    name = "espeak"
    version = f"espeak-{_ADAPTER_VERSION}/espeakng-loader-{_library_version()}"
    sample_rate = 22050
    # espeak itself has no limit; this keeps chunks short enough to spread a long sentence
    # over the workers and to start streaming soon.
    chunk_budget = 600

    def __init__(self, *, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._size = workers
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: list[_Worker] = []

    def _queue(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:
            # Slots start empty (None): a worker process is started on first use of a slot.
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(None)
        return self._idle

    def check_options(self, options: SpeechOptions) -> None:
        """espeak-ng voice names (cmn, cmn+f3); rate -50%..+200%; pitch within an octave.

        Raises:
            OptionError: any of them is not one espeak-ng can use.
        """
        if not _VOICE.match(options.voice):
            raise OptionError(f"espeak-ng has no voice {options.voice!r} (like cmn or cmn+f3)")
        parse_rate(options.rate)
        parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ)

    async def warm_up(self) -> None:
        """Start every worker process now rather than on the first chunks."""
        queue = self._queue()
        slots = [await queue.get() for _ in range(self._size)]
        started = await asyncio.gather(*(self._ready(s) for s in slots), return_exceptions=True)
        for w in started:
            queue.put_nowait(w if isinstance(w, _Worker) else None)
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            raise EngineError(f"cannot start espeak-ng: {errors[0]}") from errors[0]

    async def _ready(self, worker: _Worker | None) -> _Worker:
        return worker or await self._start()

    async def _start(self) -> _Worker:
        try:
            worker = await _Worker.start()
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot start espeak-ng worker: {exc}") from exc
        self._all.append(worker)
        return worker

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk on the next free worker.

        Raises:
            EngineError: espeak-ng failed, or its worker died twice in a row.
            OptionError: the rate or pitch is malformed or out of range.
        """
        wpm = round(_DEFAULT_WPM * parse_rate(options.rate))
        pitch = round(_DEFAULT_PITCH * parse_pitch(options.pitch, base_hz=_MEAN_PITCH_HZ))
        pitch = max(0, min(100, pitch))
        queue = self._queue()
        for attempt in (1, 2):
            worker = await queue.get()
            try:
                worker = await self._ready(worker)
                pcm = await worker.synth(text, options.voice, wpm, pitch)
            except _SynthFailed as exc:
                queue.put_nowait(worker)  # espeak refused this text; the worker is fine
                raise EngineError(f"espeak-ng failed: {exc}") from exc
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
            if not pcm:
                raise EngineError(f"espeak-ng produced no audio for {text[:20]!r}")
            return Clip(pcm=pcm, sample_rate=worker.sample_rate)
        raise AssertionError("unreachable")

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


def create(settings: Settings) -> EspeakEngine:
    """The engine registry's factory (see `service.engines`)."""
    return EspeakEngine(workers=settings.workers)
