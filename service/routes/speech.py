"""OpenAI-compatible text to speech: POST /v1/audio/speech, so existing TTS clients work as-is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.articles import plain_article
from service.engines.base import MAX_RATE, MIN_RATE, rate_from_speed
from service.errors import LangduError
from service.formats import OUTPUTS, Format, convert, needs_conversion, once
from service.hygiene import ParsedRoute, clean_text
from service.library import Library, Live, Stored
from service.routes.deps import client_of, require_write_key, services
from service.services import Services

router = APIRouter(prefix="/v1/audio", tags=["openai"], route_class=ParsedRoute)

MIN_SPEED, MAX_SPEED = 1 + MIN_RATE / 100, 1 + MAX_RATE / 100  # what engines read at

# OpenAI's voice names, mapped by the gender of the voice they describe.
_OPENAI_FEMALE = {"alloy", "nova", "shimmer", "coral", "sage", "ballad"}
_OPENAI_MALE = {"echo", "onyx", "fable", "ash", "verse"}


class SpeechIn(BaseModel):
    """OpenAI's request body; `model` is accepted whatever it names."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., max_length=100)
    input: str = Field(..., min_length=1, max_length=4096)  # OpenAI's own limit
    voice: str = Field(..., max_length=100)
    response_format: Format = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)  # OpenAI's range
    # OpenAI's server-sent events are for its gpt-4o models only; raw audio is the default.
    stream_format: Literal["audio"] = "audio"


def _voice_id(svc: Services, name: str) -> str:
    if name in {v.id for v in svc.catalog}:
        return name
    gender = "female" if name in _OPENAI_FEMALE else "male" if name in _OPENAI_MALE else None
    default = svc.catalog.get(svc.settings.default_voice)
    if gender is None or default.gender == gender:
        return default.id if gender else name  # unknown names fail in catalog.get
    same_language = [
        v
        for v in svc.catalog
        if v.gender == gender and v.language == default.language and v.engine == default.engine
    ]
    return same_language[0].id if same_language else default.id


def _speeds(speed: float) -> tuple[float, float]:
    """(the engine's speed, the tempo applied after it) for OpenAI's `speed`: engines read
    at 0.5x .. 3x themselves; beyond that the audio is time-stretched (pitch kept)."""
    engine = min(max(speed, MIN_SPEED), MAX_SPEED)
    engine = 1 + round((engine - 1) * 100) / 100  # what rate_from_speed can express
    return engine, speed / engine


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already made: a conversion that cannot start is an
    error answer, not an empty 200."""
    first = await anext(chunks, b"")

    async def replay() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return replay()


@router.post("/speech", response_model=None, dependencies=[Depends(require_write_key)])
async def speech(
    body: SpeechIn, request: Request, svc: Annotated[Services, Depends(services)]
) -> Response:
    """Speak `input` and return the audio in `response_format`, streamed as it is made."""
    lib: Library = svc.library
    client = client_of(request)
    engine_speed, tempo = _speeds(body.speed)
    view, _ = await lib.register(
        voice=_voice_id(svc, body.voice),
        article=plain_article(clean_text(body.input)),
        rate=rate_from_speed(engine_speed),
        client=client,
    )
    found: Stored | Live = await lib.listen(view.record.id, client)
    source: AsyncIterator[bytes]
    if isinstance(found, Live):
        source = found.job.stream()
    else:
        mp3 = await lib.stored_audio(found.article_id, found.rendering)
        if mp3 is None:
            raise LangduError("the audio was not kept; try again")
        if not needs_conversion(body.response_format, tempo):
            return Response(mp3, media_type="audio/mpeg")
        source = once(mp3)
    output = OUTPUTS[body.response_format]
    if needs_conversion(body.response_format, tempo):
        source = await _primed(convert(source, body.response_format, tempo))
    return StreamingResponse(source, media_type=output.media_type)
