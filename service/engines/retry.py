"""What every engine that calls a remote service shares: a timeout per chunk, retries with
exponential backoff and jitter, and a check that the audio is as long as its text needs."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from service.engines.base import Clip
from service.errors import EngineError

T = TypeVar("T")

_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z0-9]")


class ShortAudio(Exception):
    """A clip much shorter than its text needs (or no audio at all): asked again."""


def min_plausible_ms(text: str, rate: float) -> float:
    """The shortest believable reading of `text` at `rate` (a lenient lower bound)."""
    syllables = len(_HAN.findall(text)) + len(_LATIN.findall(text)) / 2
    return syllables * 90 / rate  # fast news Mandarin is ~6 syllables/s; 11/s is not speech


def check_length(clip: Clip, need_ms: float) -> Clip:
    """The clip, unless it is shorter than `need_ms` (then ShortAudio: it is asked again)."""
    if clip.duration_ms < need_ms:
        raise ShortAudio(f"{clip.duration_ms:.0f} ms of audio for text that needs {need_ms:.0f} ms")
    return clip


@dataclass
class Retrying:
    """Run one chunk's request until it succeeds: `attempts` tries, each within `timeout_s`,
    `backoff_s` doubling between them (plus up to as much again of jitter, so many chunks
    failing together do not come back together)."""

    service: str  # for messages: "edge-tts", "the upstream at http://..."
    attempts: int = 4
    timeout_s: float = 20.0
    backoff_s: float = 0.5
    rng: Callable[[], float] = random.random
    retries: int = field(default=0, init=False)  # chunks asked again, for metrics

    async def run(
        self, attempt: Callable[[], Awaitable[T]], retryable: Callable[[Exception], bool]
    ) -> T:
        """The first attempt's result that is not an error `retryable` accepts.

        Raises:
            EngineError: an error that is not retryable, or every attempt failed.
        """
        last: Exception | None = None
        for n in range(self.attempts):
            if n:
                self.retries += 1
                delay = self.backoff_s * 2 ** (n - 1)
                await asyncio.sleep(delay + self.rng() * delay)
            try:
                async with asyncio.timeout(self.timeout_s):  # not wait_for: see upkeep
                    return await attempt()
            except (TimeoutError, ShortAudio) as exc:
                last = exc
            except Exception as exc:
                if not retryable(exc):
                    raise EngineError(f"{self.service} refused the chunk: {exc}") from exc
                last = exc
        raise EngineError(
            f"{self.service} failed after {self.attempts} attempts: {type(last).__name__}: {last}"
        ) from last
