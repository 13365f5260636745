"""The OpenAI-compatible speech endpoint in process (fake engine): every response format
decodes, speed covers OpenAI's whole range, bad values are 422."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from service.audio.formats import tempo_filter
from service.http.routes.speech import _speeds
from tests.conftest import decoded_seconds
from tests.fakes import Fakes, running_app

pytestmark = pytest.mark.anyio

BODY = {"model": "tts-1", "input": "你好，欢迎收听今天的新闻。", "voice": "alloy"}
# Long enough that the encoder's fixed padding does not blur a speed.
NEWS = "安宁区召开党建工作会议。会议总结了上半年全区基层党建工作的主要成效。\n" * 3
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


async def test_every_format_decodes_to_the_same_speech(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        answers = {
            fmt: await client.post("/v1/audio/speech", json={**BODY, "response_format": fmt})
            for fmt in FORMATS
        }
    for fmt, r in answers.items():
        assert r.status_code == 200, (fmt, r.text)
        assert r.headers["content-type"] == MEDIA[fmt]
    seconds = {fmt: decoded_seconds(r.content, fmt) for fmt, r in answers.items()}
    base = seconds["mp3"]
    assert base > 0.5
    for s in seconds.values():
        assert abs(s - base) < 0.1 * base + 0.08, seconds  # encoder padding, not content
    with wave.open(io.BytesIO(answers["wav"].content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert len(w.readframes(10**9)) == len(answers["pcm"].content)


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
async def test_speed_covers_openais_whole_range(tmp_path: Path, speed: float) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        body = {**BODY, "input": NEWS, "response_format": "pcm"}
        normal = await client.post("/v1/audio/speech", json=body)
        fast = await client.post("/v1/audio/speech", json={**body, "speed": speed})
    assert fast.status_code == 200, fast.text
    ratio = decoded_seconds(normal.content, "pcm") / decoded_seconds(fast.content, "pcm")
    # Within 15%: each sentence's MP3 part keeps a few ms of encoder padding at any speed.
    assert abs(ratio - speed) < 0.15 * speed, ratio


@pytest.mark.parametrize(
    "change",
    [
        {"speed": 0.2},
        {"speed": 4.5},
        {"response_format": "ogg"},
        {"stream_format": "sse"},
        {"input": ""},
        {"input": "字" * 4097},
    ],
)
async def test_values_outside_openais_are_422(tmp_path: Path, change: dict[str, object]) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        r = await client.post("/v1/audio/speech", json={**BODY, **change})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_speeds_split_between_engine_and_time_stretch() -> None:
    assert _speeds(1.0) == (1.0, 1.0)
    assert _speeds(0.25) == (0.5, 0.5)
    engine, tempo = _speeds(4.0)
    assert engine == 3.0 and abs(tempo - 4 / 3) < 1e-9
    assert _speeds(1.234)[0] == 1.23  # whole percent, as the engines take it
    assert tempo_filter(1.0) == "anull"
    assert tempo_filter(0.25) == "atempo=0.5,atempo=0.5"
    assert tempo_filter(4.0) == "atempo=2,atempo=2"


async def test_refusals_carry_openais_error_shape_and_the_problem(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), api_keys="k1", rate_limit_speech="3/minute") as (
        client,
        _,
    ):
        auth = {"Authorization": "Bearer k1"}
        no_key = await client.post("/v1/audio/speech", json=BODY)
        too_long = await client.post(
            "/v1/audio/speech", json={**BODY, "input": "字" * 4097}, headers=auth
        )
        json_type = {**auth, "content-type": "application/json"}
        malformed = await client.post("/v1/audio/speech", content=b"{nope", headers=json_type)
        await client.post("/v1/audio/speech", json=BODY, headers=auth)
        over_rate = await client.post("/v1/audio/speech", json=BODY, headers=auth)
        elsewhere = await client.post("/v1/articles", json={"text": ""}, headers=auth)
    body = too_long.json()
    assert too_long.status_code == 422 and body["status"] == 422  # the problem stays whole
    assert body["error"] == {
        "message": "input: String should have at most 4096 characters",
        "type": "invalid_request_error",
        "param": "input",
        "code": "string_too_long",
    }
    assert int(too_long.headers["content-length"]) == len(too_long.content)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_json"
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    assert over_rate.status_code == 429 and "Retry-After" in over_rate.headers
    assert over_rate.json()["error"]["type"] == "rate_limit_error"
    assert over_rate.json()["error"]["message"] == over_rate.json()["detail"]
    # The rest of the API answers problem details alone.
    assert elsewhere.status_code == 422 and "error" not in elsewhere.json()


async def test_the_openai_sdk_names_the_reason(tmp_path: Path) -> None:
    import openai

    async with running_app(tmp_path, Fakes()) as (client, _):
        sdk = openai.AsyncOpenAI(
            base_url="http://langdu.test/v1",
            api_key="unused",
            http_client=client,  # type: ignore[arg-type]  # the SDK types it as its httpx2 fork
            max_retries=0,
        )
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            await sdk.audio.speech.create(model="tts-1", voice="alloy", input="字" * 4097)
    assert "at most 4096 characters" in str(refused.value), str(refused.value)
    assert refused.value.param == "input"
    assert refused.value.code == "string_too_long"
