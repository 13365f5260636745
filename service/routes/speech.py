"""OpenAI-compatible text to speech: POST /v1/audio/speech, so existing TTS clients work as-is."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.articles import plain_article
from service.audio import clip_from_mp3
from service.engines.base import rate_from_speed
from service.errors import LangduError
from service.hygiene import clean_text
from service.library import Library, Live, Stored
from service.routes.deps import client_of, require_write_key, services
from service.services import Services

router = APIRouter(prefix="/v1/audio", tags=["openai"])

# OpenAI's voice names, mapped by the gender of the voice they describe.
_OPENAI_FEMALE = {"alloy", "nova", "shimmer", "coral", "sage", "ballad"}
_OPENAI_MALE = {"echo", "onyx", "fable", "ash", "verse"}


class SpeechIn(BaseModel):
    """OpenAI's request body; `model` is accepted whatever it names."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., max_length=100)
    input: str = Field(..., min_length=1, max_length=4096)  # OpenAI's own limit
    voice: str = Field(..., max_length=100)
    response_format: Literal["mp3", "wav"] = "mp3"
    speed: float = Field(1.0, ge=0.5, le=3.0)


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


def _wav(mp3: bytes) -> bytes:
    clip = clip_from_mp3(mp3)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(clip.sample_rate)
        w.writeframes(clip.pcm)
    return out.getvalue()


@router.post("/speech", response_model=None, dependencies=[Depends(require_write_key)])
async def speech(
    body: SpeechIn, request: Request, svc: Annotated[Services, Depends(services)]
) -> Response:
    """Speak `input` and return the audio (MP3 streamed as it is made, or WAV when done)."""
    lib: Library = svc.library
    client = client_of(request)
    view, _ = await lib.register(
        voice=_voice_id(svc, body.voice),
        article=plain_article(clean_text(body.input)),
        rate=rate_from_speed(body.speed),
        client=client,
    )
    found: Stored | Live = await lib.listen(view.record.id, client)
    if isinstance(found, Live):
        if body.response_format == "mp3":
            return StreamingResponse(found.job.stream(), media_type="audio/mpeg")
        await found.job.wait()
        if found.job.error is not None:
            raise found.job.error
        found = await lib.listen(view.record.id, client)
    if not isinstance(found, Stored):
        raise LangduError("the audio was not kept; try again")
    mp3 = await lib.stored_audio(found.article_id, found.rendering)
    if mp3 is None:
        raise LangduError("the audio was not kept; try again")
    if body.response_format == "mp3":
        return Response(mp3, media_type="audio/mpeg")
    return Response(await asyncio.to_thread(_wav, mp3), media_type="audio/wav")
