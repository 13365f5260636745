"""The voice catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.http.routes.deps import services
from service.services import Services

router = APIRouter(tags=["voices"])


@router.get("/v1/voices")
async def list_voices(svc: Annotated[Services, Depends(services)]) -> dict[str, object]:
    """Every voice preset installed here; `default` names the one used when a request names
    none; `remote` marks a voice spoken by a service elsewhere (it needs the network)."""
    voices = [
        {**v.public(), "remote": bool(getattr(svc.engines.get(v.engine), "remote", False))}
        for v in svc.catalog
    ]
    return {"default": svc.settings.default_voice, "voices": voices}
