"""The OpenAI-compatible speech endpoint in process (fake engine): every response format
decodes, speed covers OpenAI's whole range, bad values are 422."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import httpx
import pytest

from service.audio.formats import tempo_filter
from service.core.views import Speech
from service.errors import QueueFullError
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


async def test_clients_are_charged_by_the_audio_they_ask_for(tmp_path: Path) -> None:
    fakes = Fakes()
    # 20 minutes of audio per 10 minutes; 1,000 characters at 1x is ~4.3 minutes.
    async with running_app(
        tmp_path, fakes, speech_audio_budget="20/10minutes", api_keys="k1,k2"
    ) as (client, _):

        async def ask(n: int, speed: float = 1.0, key: str = "k1") -> httpx.Response:
            body = {**BODY, "input": f"第{n}条。" + "新闻" * 497, "speed": speed}
            return await client.post(
                "/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {key}"}
            )

        fits = [(await ask(n)).status_code for n in range(4)]
        calls = len(fakes.neural.calls)
        over = await ask(4)
        slow = await ask(5, speed=0.25)  # ~17 minutes: does not fit what is left either
        assert len(fakes.neural.calls) == calls  # refused before anything was read
        other = await ask(6, key="k2")  # another client has its own budget
        slower = await ask(7, speed=0.5, key="k2")  # ~8.7 minutes: fits
        huge = await client.post(
            "/v1/audio/speech",
            json={**BODY, "input": "新" * 4096, "speed": 0.25},
            headers={"Authorization": "Bearer k2"},
        )
    assert fits == [200] * 4
    for refused in (over, slow):
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 600
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "minutes of audio" in refused.json()["detail"]
    assert other.status_code == 200 and slower.status_code == 200
    # More than the whole budget at once can never fit: 413, not "try again".
    assert huge.status_code == 413
    assert "more than the 20 minutes" in huge.json()["detail"]


async def test_conversions_at_once_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.core.listening

    monkeypatch.setattr(service.core.listening, "CONVERSION_WAIT_S", 0.3)
    async with running_app(tmp_path, Fakes(), max_conversions=1) as (_, services):
        speak = services.library.listening.speak

        async def wav(text: str) -> Speech:
            return await speak(text, voice="fake-a", rate="+0%", response_format="wav")

        held = await wav("第一条新闻。")  # its conversion runs until it is read or dropped
        with pytest.raises(QueueFullError, match="every audio conversion is in use"):
            await wav("第二条新闻。")
        # MP3 at a speed the engine reads needs no conversion: never held back.
        mp3 = await speak("第三条新闻。", voice="fake-a", rate="+0%", response_format="mp3")
        assert mp3.media_type == "audio/mpeg"
        assert not isinstance(held.body, bytes)
        audio = b"".join([chunk async for chunk in held.body])
        assert audio[:4] == b"RIFF"
        again = await wav("第二条新闻。")  # the finished one gave its place back
        assert not isinstance(again.body, bytes)
        assert (b"".join([chunk async for chunk in again.body]))[:4] == b"RIFF"
