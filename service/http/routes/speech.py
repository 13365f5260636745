"""OpenAI-compatible text to speech: POST /v1/audio/speech, so existing TTS clients work as-is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from service.engines.base import MAX_RATE, MIN_RATE, rate_from_speed
from service.http.admission import SpeechBudget, audio_seconds
from service.http.hygiene import ParsedRoute, clean_text
from service.http.routes.deps import client_of, require_write_key, services
from service.http.schemas import SpeechIn
from service.services import Services

router = APIRouter(prefix="/v1/audio", tags=["openai"], route_class=ParsedRoute)

MIN_SPEED, MAX_SPEED = 1 + MIN_RATE / 100, 1 + MAX_RATE / 100  # what engines read at

# OpenAI's voice names, mapped by the gender of the voice they describe.
_OPENAI_FEMALE = {"alloy", "nova", "shimmer", "coral", "sage", "ballad"}
_OPENAI_MALE = {"echo", "onyx", "fable", "ash", "verse"}


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


@router.post("/speech", response_model=None, dependencies=[Depends(require_write_key)])
async def speech(
    body: SpeechIn, request: Request, svc: Annotated[Services, Depends(services)]
) -> Response:
    """Speak `input` and return the audio in `response_format`, streamed as it is made.
    The client is charged for the audio first (its characters ÷ speed): over its budget,
    429 before anything is read."""
    engine_speed, tempo = _speeds(body.speed)
    text = clean_text(body.input)
    budget: SpeechBudget | None = request.app.state.speech_budget
    if budget is not None:
        await budget.charge(client_of(request), audio_seconds(len(text), body.speed))
    speech = await svc.library.speak(
        text,
        voice=_voice_id(svc, body.voice),
        rate=rate_from_speed(engine_speed),
        response_format=body.response_format,
        tempo=tempo,
        client=client_of(request),
    )
    if isinstance(speech.body, bytes):
        return Response(speech.body, media_type=speech.media_type)
    return StreamingResponse(speech.body, media_type=speech.media_type)
