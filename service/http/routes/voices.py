"""The voice catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.http.routes.deps import services
from service.services import Services

router = APIRouter(tags=["voices"])


@router.get("/v1/voices")
async def list_voices(svc: Annotated[Services, Depends(services)]) -> dict[str, object]:
    """Every voice preset; `default` names the one used when a request names none."""
    return {"default": svc.settings.default_voice, "voices": [v.public() for v in svc.catalog]}
