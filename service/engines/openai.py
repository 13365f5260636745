"""Any server that speaks OpenAI's `POST /v1/audio/speech` as an engine: Kokoro-FastAPI,
openai-edge-tts, a GPU server for CosyVoice-class models, OpenAI itself, another langdu.

A voice preset makes one:

    id = "kokoro-zf"
    engine = "openai"
    engine_voice = "zf_xiaobei"              # the upstream's voice name
    ...
    [options]
    base_url = "http://gpu-box:8880/v1"      # where /audio/speech lives
    model = "kokoro"
    api_key_env = "KOKORO_API_KEY"           # optional: the key is read from this variable
    response_format = "pcm"                  # pcm (24 kHz 16-bit mono, default), wav or mp3

Our chunking, normalization, timings, caching and fallback apply as for every engine; this
module adds a timeout per chunk, retries with backoff on dropped connections, 408/429/5xx
and short audio, and bounded concurrency per upstream.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import wave
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from service.audio.mp3 import clip_from_mp3
from service.engines.base import Clip, SpeechOptions, parse_rate
from service.engines.retry import Retrying, ShortAudio, check_length, min_plausible_ms
from service.errors import AudioError, OptionError

if TYPE_CHECKING:
    from service.config import Settings

_ADAPTER_VERSION = 1  # bump when this adapter changes what it asks of the upstream
_FORMATS = {"pcm", "wav", "mp3"}
PCM_RATE = 24000  # OpenAI's pcm: 24 kHz, signed 16-bit little-endian, mono
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # OpenAI's range for `speed`


class _Refused(Exception):
    """The upstream answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, _Refused):
        return exc.status in (408, 409, 429) or exc.status >= 500
    return isinstance(exc, aiohttp.ClientError | OSError | ConnectionError)


def _key(options: SpeechOptions) -> str | None:
    env = options.option("api_key_env")
    if not env:
        return None
    key = os.environ.get(env, "")
    if not key:
        raise OptionError(f"the upstream's API key variable {env} is not set")
    return key


def _clip(data: bytes, fmt: str) -> Clip:
    if fmt == "pcm":
        return Clip(pcm=data[: len(data) // 2 * 2], sample_rate=PCM_RATE)
    if fmt == "wav":
        try:
            with wave.open(io.BytesIO(data)) as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    raise ShortAudio("the upstream's WAV is not 16-bit mono")
                return Clip(pcm=w.readframes(w.getnframes()), sample_rate=w.getframerate())
        except (wave.Error, EOFError) as exc:
            raise ShortAudio(f"undecodable WAV: {exc}") from exc
    try:
        return clip_from_mp3(data)
    except AudioError as exc:
        raise ShortAudio(f"undecodable MP3: {exc}") from exc


class OpenAIEngine:
    """Speech from an OpenAI-compatible server; which server is each preset's option."""

    name = "openai"
    remote = True  # speaks through a service elsewhere: needs the network
    version = f"openai-{_ADAPTER_VERSION}"  # the upstream and its model are preset options
    sample_rate = PCM_RATE
    chunk_budget = 3000  # OpenAI takes 4096 characters; sentences are far shorter

    def __init__(
        self,
        *,
        concurrency: int = 4,
        timeout_s: float = 30.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._concurrency = concurrency
        self._sems: dict[str, asyncio.Semaphore] = {}  # one bound per upstream
        self._retrying = Retrying("the upstream speech server", attempts, timeout_s, backoff_s, rng)
        self._session: aiohttp.ClientSession | None = None

    @property
    def retries(self) -> int:
        """Chunks asked again, for metrics."""
        return self._retrying.retries

    def check_options(self, options: SpeechOptions) -> None:
        """A voice name, an http(s) base_url and a model; a rate within OpenAI's speed
        range; no pitch (the API has none); the key variable set when one is named.

        Raises:
            OptionError: the preset or the request asks what the upstream cannot do.
        """
        if not options.voice.strip():
            raise OptionError("an upstream voice name is needed (engine_voice)")
        base = options.option("base_url")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OptionError(f"[options] base_url must be an http(s) URL, got {base!r}")
        if not options.option("model"):
            raise OptionError("[options] model is needed (the upstream's model name)")
        fmt = options.option("response_format", "pcm")
        if fmt not in _FORMATS:
            raise OptionError(f"[options] response_format must be one of {sorted(_FORMATS)}")
        speed = parse_rate(options.rate)
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise OptionError(f"the upstream reads at {MIN_SPEED}x .. {MAX_SPEED}x")
        if options.pitch.strip() not in ("+0Hz", "-0Hz", "+0%", "-0%", "0Hz", "0%"):
            raise OptionError("the upstream speech API has no pitch setting")
        _key(options)

    async def warm_up(self) -> None:
        """Open the connection pool (connections themselves are made on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
            )

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak one chunk through the preset's upstream.

        Raises:
            EngineError: refused (4xx), or every attempt failed (dropped, stalled, 5xx,
                short audio).
        """
        await self.warm_up()
        base = options.option("base_url").rstrip("/")
        sem = self._sems.setdefault(base, asyncio.Semaphore(self._concurrency))
        async with sem:
            return await self._retrying.run(lambda: self._once(text, options), _retryable)

    async def _once(self, text: str, options: SpeechOptions) -> Clip:
        assert self._session is not None
        fmt = options.option("response_format", "pcm")
        speed = parse_rate(options.rate)
        headers = {"Accept": "*/*"}
        key = _key(options)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": options.option("model"),
            "voice": options.voice,
            "input": text,
            "response_format": fmt,
            "speed": speed,
        }
        url = f"{options.option('base_url').rstrip('/')}/audio/speech"
        async with self._session.post(url, json=body, headers=headers) as r:
            if r.status != 200:
                detail = (await r.text(errors="replace"))[:300].strip()
                raise _Refused(r.status, detail or r.reason or "")
            data = await r.read()
        clip = await asyncio.to_thread(_clip, data, fmt)
        return check_length(clip, min_plausible_ms(text, speed))

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def create(settings: Settings) -> OpenAIEngine:
    """The engine for voice presets with engine = "openai"."""
    return OpenAIEngine(
        concurrency=settings.upstream_concurrency,
        timeout_s=settings.upstream_timeout_s,
        attempts=settings.upstream_attempts,
    )
