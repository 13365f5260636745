"""What the routes share: the lifespan's services and the write-key check."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.app import Services
from service.errors import UnauthorizedError
from service.jobs import JobRunner


def services(request: Request) -> Services:
    """The services the lifespan built."""
    found: Services = request.app.state.services
    return found


def jobs(request: Request) -> JobRunner:
    """The synthesis job runner."""
    runner = services(request).jobs
    assert runner is not None
    return runner


def require_write_key(request: Request) -> None:
    """When API keys are configured, write endpoints need one (Bearer or X-API-Key).

    Raises:
        UnauthorizedError: no key, or a wrong one.
    """
    keys = services(request).settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise UnauthorizedError("a valid API key is required (Authorization: Bearer <key>)")
