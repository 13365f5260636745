"""Microsoft's neural voices through edge-tts: the only module that imports edge_tts.

One `Communicate` per chunk (it streams once), a bounded number at a time (the service blocks
clients that open dozens of connections), a timeout per chunk, retries with exponential
backoff and jitter on connection errors, 403 (clock skew), 429 and 5xx, and a check of every
clip: audio received, and as long as its text and the service's own sentence boundary say it
should be (the service sometimes returns silently short audio), else it is asked again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import socket
from collections.abc import Callable
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import aiohttp
import edge_tts
import edge_tts.exceptions as edge_errors
from aiohttp.abc import AbstractResolver, ResolveResult
from edge_tts import communicate as edge_communicate

from service.audio.mp3 import clip_from_mp3
from service.engines.base import Clip, Network, SpeechOptions, WordMark, parse_pitch, parse_rate
from service.engines.retry import Retrying, ShortAudio, check_length, min_plausible_ms
from service.errors import AudioError, OptionError

if TYPE_CHECKING:
    from service.config import Settings

TICKS_PER_MS = 10_000  # edge-tts offsets and durations are in 100 ns ticks
# What edge-tts itself accepts (it raises ValueError on anything else, mid-article).
_EDGE_RATE = re.compile(r"^[+-]\d+%$")
_EDGE_PITCH = re.compile(r"^[+-]\d+(Hz|%)$")
_EDGE_VOICE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}(-[A-Za-z]+)?-[A-Za-z]+Neural$")
_ADAPTER_VERSION = 1  # bump when this adapter changes what it asks of the service


class EdgeEngine:
    """Neural voices from Microsoft's read-aloud service."""

    name = "edge"
    remote = True  # speaks through a service elsewhere: needs the network
    version = f"edge-{_ADAPTER_VERSION}/edge-tts-{package_version('edge-tts')}"
    sample_rate = 24000
    # edge-tts cuts at 4096 bytes of *escaped* text; & < > grow when escaped, so leave room.
    chunk_budget = 3000

    def __init__(
        self,
        *,
        concurrency: int = 4,
        timeout_s: float = 20.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        network: Network | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._sem = asyncio.Semaphore(concurrency)
        self._retrying = Retrying("edge-tts", attempts, timeout_s, backoff_s, rng)
        self._network = network or Network()

    @property
    def retries(self) -> int:
        """Chunks asked again, for metrics."""
        return self._retrying.retries

    def check_options(self, options: SpeechOptions) -> None:
        """Neural voice names (zh-CN-XiaoxiaoNeural); signed rate and pitch ("+20%", "-5Hz").

        Raises:
            OptionError: edge-tts or the service would refuse them.
        """
        if not _EDGE_VOICE.match(options.voice):
            raise OptionError(f"not a Microsoft neural voice name: {options.voice!r}")
        if not _EDGE_RATE.match(options.rate):
            raise OptionError(
                f"the neural voices take a signed whole rate like +20% or -10%,"
                f" got {options.rate!r}"
            )
        if not _EDGE_PITCH.match(options.pitch):
            raise OptionError(
                f"the neural voices take a signed whole pitch like +5Hz or -10%,"
                f" got {options.pitch!r}"
            )
        parse_rate(options.rate)
        parse_pitch(options.pitch, base_hz=200.0)

    async def warm_up(self) -> None:
        """Trust the configured extra CAs (connections themselves are made per chunk)."""
        if self._network.ca_file:
            # edge-tts verifies TLS with its own certifi-based context, not the system's.
            edge_communicate._SSL_CTX.load_verify_locations(cafile=self._network.ca_file)

    def _connector(self) -> _Connector | None:
        if not self._network.resolve:
            return None
        return _Connector(resolver=_Resolver(dict(self._network.resolve)))

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk (already cut to the budget by our chunker).

        Raises:
            EngineError: every attempt failed (refused, dropped, stalled, or short audio).
        """
        rate = parse_rate(options.rate)
        async with self._sem:
            return await self._retrying.run(lambda: self._once(text, options, rate), _retryable)

    async def _once(self, text: str, options: SpeechOptions, rate: float) -> Clip:
        chunk: Any
        connector = self._connector()
        communicate = edge_tts.Communicate(
            text,
            options.voice,
            rate=options.rate,
            pitch=_edge_pitch(options.pitch),
            connector=connector,
            proxy=self._network.proxy,
            boundary="WordBoundary",
        )
        audio = bytearray()
        spoken_until_ms = 0.0
        words: list[WordMark] = []
        cursor = 0
        try:
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    audio.extend(chunk["data"])
                elif chunk["type"] in ("SentenceBoundary", "WordBoundary"):
                    start = chunk["offset"] / TICKS_PER_MS
                    end = (chunk["offset"] + chunk["duration"]) / TICKS_PER_MS
                    spoken_until_ms = max(spoken_until_ms, end)
                    word = str(chunk.get("text", ""))
                    at = text.find(word, cursor) if word else -1
                    if at >= 0:  # the service's words are pieces of our text, in order
                        words.append(WordMark(at, len(word), start, end))
                        cursor = at + len(word)
        finally:
            if connector is not None:
                await connector.close_for_real()
        try:
            clip = await asyncio.to_thread(clip_from_mp3, bytes(audio))
        except AudioError as exc:
            raise ShortAudio(f"undecodable audio: {exc}") from exc
        check_length(clip, max(min_plausible_ms(text, rate), spoken_until_ms * 0.9))
        return dataclasses.replace(clip, words=tuple(words))

    async def aclose(self) -> None:
        """Nothing long-lived to close."""


def _edge_pitch(pitch: str) -> str:
    # edge-tts takes pitch in Hz only; a percentage is relative to a ~200 Hz voice.
    if pitch.endswith("%"):
        return f"{round(float(pitch[:-1]) * 2):+d}Hz"
    return pitch if pitch[0] in "+-" else f"+{pitch}"


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in (403, 408, 429) or exc.status >= 500
    return isinstance(
        exc,
        aiohttp.ClientError
        | OSError
        | ConnectionError
        | edge_errors.NoAudioReceived
        | edge_errors.WebSocketError
        | edge_errors.UnexpectedResponse
        | edge_errors.SkewAdjustmentError,
    )


class _Connector(aiohttp.TCPConnector):
    """A connector that outlives one session: edge-tts retries a 403 in a second session."""

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        return None  # closed by close_for_real() when the chunk is done

    async def close_for_real(self) -> None:
        await super().close()


class _Resolver(AbstractResolver):
    """aiohttp resolver that sends the named hosts to fixed addresses, others to DNS."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table
        self._default = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host in self._table:
            ip, _, fixed = self._table[host].rpartition(":")
            return [
                ResolveResult(
                    hostname=host,
                    host=ip,
                    port=int(fixed),
                    family=socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        return await self._default.resolve(host, port, family)

    async def close(self) -> None:
        await self._default.close()


def create(settings: Settings) -> EdgeEngine:
    """The engine registry's factory (see `service.engines`)."""
    return EdgeEngine(
        concurrency=settings.edge_concurrency,
        timeout_s=settings.edge_timeout_s,
        attempts=settings.edge_attempts,
        network=settings.network,
    )
