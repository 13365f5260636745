"""What the routes share: the lifespan's services, the library, the write-key check."""

from __future__ import annotations

import base64
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


# The dependencies are coroutines: FastAPI runs a plain function dependency on a thread of
# its pool, a hop (and a turn for the interpreter lock) on every request for nothing.


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    """The services the lifespan built."""
    return _services(request)


async def library(request: Request) -> Library:
    """The application layer."""
    return _services(request).library


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


def _given_key(request: Request, *, basic: bool) -> str:
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    elif basic and auth.lower().startswith("basic "):
        try:  # a browser's login box: any user name, the key as the password
            given = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            given = ""
    return given


def _check_key(request: Request, *, basic: bool) -> bool:
    keys = _services(request).settings.api_keys
    given = _given_key(request, basic=basic).encode()
    return not keys or any(hmac.compare_digest(given, k.encode()) for k in keys)


async def require_write_key(request: Request) -> None:
    """When API keys are configured, write endpoints need one (Bearer or X-API-Key).

    Raises:
        UnauthorizedError: no key, or a wrong one.
    """
    if not _check_key(request, basic=False):
        raise UnauthorizedError("a valid API key is required (Authorization: Bearer <key>)")


async def require_dashboard_key(request: Request) -> None:
    """The dashboard, for a browser: the write key as a Basic password (the browser asks
    for it), or as for the API.

    Raises:
        UnauthorizedError: no key, or a wrong one (with a Basic challenge).
    """
    if not _check_key(request, basic=True):
        raise UnauthorizedError(
            "the dashboard needs the write key (as the password; any user name)",
            challenge='Basic realm="langdu dashboard", charset="UTF-8"',
        )
