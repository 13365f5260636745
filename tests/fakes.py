"""A deterministic fake engine that satisfies the engine protocol, and an in-process app.

The fake speaks a tone per character (its pitch from the text), so audio length follows
the text and two texts never sound alike; it records every chunk it is asked for, and can
be told to fail, to fail on some texts, or to take its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

from service.config import Settings
from service.engines.base import Clip, SpeechOptions, WordMark, parse_pitch, parse_rate
from service.errors import EngineError, OptionError
from service.http.app import create_app, create_asgi
from service.http.hotpath import HotAudioMiddleware
from service.services import Services

VOICES = Path(__file__).resolve().parent / "fake_voices"
_RATE = re.compile(r"^[+-]\d+%$")  # like edge-tts: a sign is required


class FakeEngine:
    """Speaks any text as tones; `fail` decides, per chunk, whether it refuses."""

    chunk_budget = 300

    def __init__(
        self, name: str = "fake", *, sample_rate: int = 24000, ms_per_char: int = 40
    ) -> None:
        self.name = name
        self.version = f"{name}-1"
        self.sample_rate = sample_rate
        self.ms_per_char = ms_per_char
        self.calls: list[str] = []
        self.rates: list[str] = []  # the rate of each call
        self.fail: Callable[[str], bool] = lambda text: False
        self.delay_s = 0.0
        self.closed = False

    def check_options(self, options: SpeechOptions) -> None:
        if not options.voice.startswith(f"{self.name}-"):
            raise OptionError(f"{self.name} has no voice {options.voice!r}")
        if not _RATE.match(options.rate):
            raise OptionError(f"{self.name} takes a signed rate like +20%, got {options.rate!r}")
        parse_rate(options.rate)
        parse_pitch(options.pitch, base_hz=120.0)

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        self.calls.append(text)
        self.rates.append(options.rate)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail(text):
            raise EngineError(f"{self.name} refused {text[:10]!r}")
        n = max(
            1,
            int(len(text) * self.ms_per_char / parse_rate(options.rate)) * self.sample_rate // 1000,
        )
        # One period of a tone whose pitch comes from the text, repeated: cheap to make.
        period = self.sample_rate // (200 + zlib.crc32(text.encode()) % 400)
        cycle = b"".join(
            int(8000 * math.sin(2 * math.pi * i / period)).to_bytes(2, "little", signed=True)
            for i in range(period)
        )
        pcm = (cycle * (n // period + 1))[: 2 * n]
        # Every character a "word", evenly over the clip (as espeak-ng times Mandarin).
        step = n * 1000 / self.sample_rate / max(1, len(text))
        words = tuple(
            WordMark(offset=i, length=1, start_ms=i * step, end_ms=(i + 1) * step)
            for i, ch in enumerate(text)
            if ch.isalnum()
        )
        return Clip(pcm=pcm, sample_rate=self.sample_rate, words=words)

    async def warm_up(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


class Fakes:
    """The two engines of the fake catalog: `neural` (voices fake-*) and `offline`
    (voices offline-*, the fallback)."""

    def __init__(self) -> None:
        self.neural = FakeEngine("fake", sample_rate=24000)
        self.offline = FakeEngine("offline", sample_rate=16000, ms_per_char=30)

    def factories(self) -> dict[str, Callable[[Settings], FakeEngine]]:
        return {"fake": lambda _: self.neural, "offline": lambda _: self.offline}


def settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "voices_dir": VOICES,
        "default_voice": "fake-a",
        "fallback_voice": "offline-a",
        "workers": 1,
        "upgrade_after_s": 3600.0,
        "access_log": False,
        # The fake engines' chunks hold every test sentence: jieba is never needed.
        "preload_jieba": False,
        "memory_cache_bytes": 8 * 1024**2,
        "parse_workers": 0,  # a thread: no process to spawn per test
        "text_process": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_app(
    data_dir: Path, fakes: Fakes, *, asgi: bool = False, **overrides: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The app (its lifespan included) and a client that talks to it in-process.

    `asgi=True` puts the hot in-memory audio path in front, as `langdu serve` does.
    """
    config = settings(data_dir, **overrides)
    entry: ASGIApp
    if asgi:
        hot = create_asgi(config, engines=fakes.factories())
        assert isinstance(hot, HotAudioMiddleware) and isinstance(hot.app, FastAPI)
        app, entry = hot.app, hot
    else:
        app = entry = create_app(config, engines=fakes.factories())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=entry)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://langdu.test", timeout=30
        ) as client:
            yield client, app.state.services


async def wait_ready(
    client: httpx.AsyncClient, article_id: str, timeout: float = 30
) -> dict[str, object]:
    """Poll the article until it is ready or failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        info: dict[str, object] = (await client.get(f"/v1/articles/{article_id}")).json()
        if info["status"] in {"ready", "failed"}:
            return info
        await asyncio.sleep(0.02)
    raise AssertionError("article never finished")


async def until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll an async or plain check until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)
