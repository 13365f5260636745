"""Liveness, metrics and the demo page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response

from service import __version__
from service.errors import LangduError
from service.http.problems import problem
from service.http.routes.deps import services
from service.services import Services

router = APIRouter(tags=["service"])
PLAYER_DIR = Path(__file__).resolve().parents[2] / "player"  # service/player/


_PING_S = 2.0  # a backend that takes longer to answer counts as down


async def _reach(check: Awaitable[None]) -> str | None:
    """None if the backend answered in time, else why not."""
    try:
        async with asyncio.timeout(_PING_S):
            await check
    except TimeoutError:
        return f"no answer in {_PING_S:.0f} s"
    except LangduError as exc:
        return str(exc)
    return None


@router.get("/healthz", response_model=None)
async def healthz(svc: Annotated[Services, Depends(services)]) -> dict[str, object] | JSONResponse:
    """The service is up, and each backend it uses answers; which engines are running
    and how full the cache is. 503 (with Retry-After) while a backend is down."""
    checks = {
        "database": (svc.settings.database_kind, _reach(asyncio.to_thread(svc.registry.ping))),
        "storage": (svc.settings.storage_kind, _reach(asyncio.to_thread(svc.store.blobs.ping))),
    }
    if svc.work is not None:
        checks["queue"] = ("redis", _reach(svc.work.ping()))
    found = await asyncio.gather(*(check for _, check in checks.values()))
    backends = {
        name: {"kind": kind, "ok": why is None}
        for (name, (kind, _)), why in zip(checks.items(), found, strict=True)
    }
    down = [f"{name}: {why}" for name, why in zip(checks, found, strict=True) if why]
    if down:
        return problem(503, "Backend unavailable", "; ".join(down), backends=backends)
    return {
        "status": "ok",
        "version": __version__,
        "engines": sorted(svc.engines),
        "backends": backends,
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
