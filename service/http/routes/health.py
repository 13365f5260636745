"""Liveness, metrics and the demo page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from service import __version__
from service.http.routes.deps import services
from service.services import Services

router = APIRouter(tags=["service"])
PLAYER_DIR = Path(__file__).resolve().parents[2] / "player"  # service/player/


@router.get("/healthz")
async def healthz(svc: Annotated[Services, Depends(services)]) -> dict[str, object]:
    """The service is up; which engines are running and how full the cache is."""
    return {
        "status": "ok",
        "version": __version__,
        "engines": sorted(svc.engines),
        "queued": svc.library.queued,
        "cache_bytes": svc.store.size,
        "cache_max_bytes": svc.store.max_bytes,
    }


@router.get("/metrics", response_class=Response)
async def metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    """Prometheus metrics."""
    for name, engine in svc.engines.items():
        retries = getattr(engine, "retries", None)
        if isinstance(retries, int):
            svc.metrics.engine_retries.labels(name).set(retries)
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/", response_class=FileResponse, include_in_schema=False)
async def demo() -> FileResponse:
    """The demo page: the sample article with the read-aloud button."""
    return FileResponse(PLAYER_DIR / "demo.html", media_type="text/html; charset=utf-8")
