"""The upstream engine against a local server that speaks OpenAI's speech protocol, with
the faults a real one has: 5xx, 429, refusals, stalls, dropped connections, short audio."""

from __future__ import annotations

import asyncio
import io
import math
import wave
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from service.engines.base import SpeechOptions
from service.engines.openai import OpenAIEngine
from service.errors import EngineError, OptionError

pytestmark = pytest.mark.anyio

TEXT = "安宁区全面加强城市基层党建工作，推动争先进位。"


def _tone(seconds: float, rate: int = 24000) -> bytes:
    n = int(seconds * rate)
    return b"".join(
        int(6000 * math.sin(2 * math.pi * 220 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(n)
    )


class Upstream:
    """`faults` is consumed one per request: "503", "429", "400", "stall", "drop", "short";
    None answers properly. Requests are kept."""

    def __init__(self) -> None:
        self.faults: list[str | None] = []
        self.requests: list[tuple[dict[str, Any], str]] = []
        self.url = ""

    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append((body, request.headers.get("Authorization", "")))
        fault = self.faults.pop(0) if self.faults else None
        if fault in ("503", "429", "400"):
            return web.json_response({"error": {"message": fault}}, status=int(fault))
        if fault == "stall":
            await asyncio.sleep(3)  # past the engine timeout of 1 s
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        seconds = 0.2 if fault == "short" else 0.15 * len(body["input"]) / body["speed"]
        pcm = _tone(seconds)
        if body["response_format"] == "wav":
            out = io.BytesIO()
            with wave.open(out, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(22050)
                w.writeframes(_tone(seconds, 22050))
            return web.Response(body=out.getvalue(), content_type="audio/wav")
        if body["response_format"] == "mp3":
            import lameenc

            enc = lameenc.Encoder()
            enc.set_in_sample_rate(24000)
            enc.set_channels(1)
            enc.set_bit_rate(64)
            data = bytes(enc.encode(pcm)) + bytes(enc.flush())
            return web.Response(body=data, content_type="audio/mpeg")
        return web.Response(body=pcm, content_type="audio/pcm")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.router.add_post("/v1/audio/speech", up.speech)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    up.url = f"http://127.0.0.1:{port}/v1"
    yield up
    await runner.cleanup()


def _options(up: Upstream, rate: str = "+0%", **extra: str) -> SpeechOptions:
    table = {"base_url": up.url, "model": "tts-1", **extra}
    return SpeechOptions(voice="alloy", rate=rate, extra=tuple(sorted(table.items())))


async def _speak(up: Upstream, options: SpeechOptions, **kw: float) -> tuple[Any, OpenAIEngine]:
    engine = OpenAIEngine(backoff_s=0.01, **kw)  # type: ignore[arg-type]
    engine.check_options(options)
    try:
        return await engine.synthesize(TEXT, options), engine
    finally:
        await engine.aclose()


async def test_speaks_through_the_upstream_with_its_key(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "sk-test")
    clip, _ = await _speak(upstream, _options(upstream, "+50%", api_key_env="UPSTREAM_KEY"))
    body, auth = upstream.requests[-1]
    assert body == {
        "model": "tts-1",
        "voice": "alloy",
        "input": TEXT,
        "response_format": "pcm",
        "speed": 1.5,
    }
    assert auth == "Bearer sk-test"
    assert clip.sample_rate == 24000
    assert abs(clip.duration_ms - 150 * len(TEXT) / 1.5) < 5


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
async def test_wav_and_mp3_upstreams_decode(upstream: Upstream, fmt: str) -> None:
    clip, _ = await _speak(upstream, _options(upstream, response_format=fmt))
    assert clip.duration_ms > 0.9 * 150 * len(TEXT)
    assert clip.sample_rate == (22050 if fmt == "wav" else 24000)


@pytest.mark.parametrize(
    "faults", [["503"], ["429", "503"], ["drop"], ["stall"], ["short"], ["drop", "short", "503"]]
)
async def test_each_fault_is_retried_to_complete_audio(
    upstream: Upstream, faults: list[str]
) -> None:
    upstream.faults = list(faults)
    clip, engine = await _speak(upstream, _options(upstream), timeout_s=1.0)
    assert clip.duration_ms > 0.9 * 150 * len(TEXT)
    assert engine.retries == len(faults) and len(upstream.requests) == len(faults) + 1


async def test_a_refusal_is_not_retried(upstream: Upstream) -> None:
    upstream.faults = ["400"]
    with pytest.raises(EngineError, match=r"refused.*400"):
        await _speak(upstream, _options(upstream))
    assert len(upstream.requests) == 1


async def test_a_dead_upstream_fails_after_its_attempts(upstream: Upstream) -> None:
    upstream.faults = ["503"] * 3
    with pytest.raises(EngineError, match="after 3 attempts"):
        await _speak(upstream, _options(upstream), attempts=3)
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_url": "ftp://x/v1"}, "base_url"),
        ({"model": ""}, "model"),
        ({"response_format": "opus"}, "response_format"),
        ({"api_key_env": "LANGDU_NO_SUCH_KEY"}, "LANGDU_NO_SUCH_KEY"),
    ],
)
def test_presets_the_upstream_cannot_serve_are_refused(
    change: dict[str, str], message: str
) -> None:
    table = {"base_url": "http://127.0.0.1:9/v1", "model": "tts-1", **change}
    options = SpeechOptions(voice="alloy", extra=tuple(sorted(table.items())))
    with pytest.raises(OptionError, match=message):
        OpenAIEngine().check_options(options)
    pitched = SpeechOptions(
        voice="alloy", pitch="+5Hz", extra=(("base_url", "http://h/v1"), ("model", "m"))
    )
    with pytest.raises(OptionError, match="pitch"):
        OpenAIEngine().check_options(pitched)
