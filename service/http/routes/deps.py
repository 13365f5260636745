"""What the routes share: the lifespan's services, the library, the write-key check."""

from __future__ import annotations

import hmac
import re

from fastapi import Request

from service.core.library import Library
from service.errors import NotFoundError, UnauthorizedError
from service.http.admission import Identity
from service.services import Services
from service.store import RENDERING_NAME

_ID = re.compile(r"^[0-9a-f]{32}$")
_RENDERING = re.compile(f"^{RENDERING_NAME}$")


def services(request: Request) -> Services:
    """The services the lifespan built."""
    found: Services = request.app.state.services
    return found


def library(request: Request) -> Library:
    """The application layer."""
    return services(request).library


def client_of(request: Request) -> str:
    """Who asked (admission.Identity: an API key's digest or an address), as the rate
    limiter named it; the address when the app runs without it (in-process tests)."""
    named = request.scope.get("langdu.client")
    if isinstance(named, str):
        return named
    identity = request.scope.get("langdu.identity")
    if isinstance(identity, Identity):
        named = request.scope["langdu.client"] = identity.client(request.scope)
        return named
    return f"ip:{request.client.host}" if request.client else "ip:unknown"


def check_id(article_id: str) -> str:
    """An article id as given in a URL, validated (nothing but 32 hex digits).

    Raises:
        NotFoundError: not an id langdu could have issued.
    """
    return _issued(_ID, article_id, "article")


def check_source_id(source_id: str) -> str:
    """A source id as given in a URL (32 hex digits). Raises NotFoundError."""
    return _issued(_ID, source_id, "source")


def check_rendering(rendering: str) -> str:
    """A rendering name as given in a URL.

    Raises:
        NotFoundError: not a name langdu could have issued.
    """
    return _issued(_RENDERING, rendering, "rendering")


def _issued(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise NotFoundError(f"no {what} {value[:80]!r}")
    return value


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
