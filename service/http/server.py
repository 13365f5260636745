"""Running the ASGI app under uvicorn, hardened against slow and greedy clients.

uvicorn times out idle keep-alive connections, but not a client that opens a connection
and sends its headers (or its body) a byte at a time: a thousand such connections hold a
thousand descriptors forever. Here every connection must finish its request headers
within `header_timeout_s`, a request body may not stall for more than `body_timeout_s`,
connections beyond `max_connections` are closed on arrival, and the process's descriptor
limit is raised to what the system allows at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("langdu.serve")


def raise_descriptor_limit(wanted: int = 65536) -> int:
    """Raise the soft limit on open files towards `wanted` (never above the hard limit).
    Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read timeouts and a connection cap
    (`run` sets them on a subclass)."""

    header_timeout_s = 10.0
    body_timeout_s = 20.0
    max_connections = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._expired, reason, seconds)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self, reason: str, seconds: float) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if reason == "body" and self.flow.read_paused:
            self._arm(seconds, reason)  # we stopped reading (the app is busy): not the client
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    # -- uvicorn's hooks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refused = True
            transport.abort()
            return
        super().connection_made(transport)
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return  # refused on arrival: uvicorn never saw it
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()


def run(
    app: Any,
    *,
    host: str,
    port: int,
    access_log: bool,
    header_timeout_s: float,
    body_timeout_s: float,
    max_connections: int,
) -> None:
    """Serve `app` until interrupted."""
    import uvicorn

    descriptors = raise_descriptor_limit(max(65536, 2 * max_connections))
    # Synthesis threads (text front-end, MP3 encoding) share the interpreter lock with the
    # event loop: hand it over every millisecond, not every five, so that a request waiting
    # behind a busy reading waits less.
    sys.setswitchinterval(0.001)
    protocol = type(
        "Guarded",
        (GuardedHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "max_connections": max_connections,
        },
    )
    log.info(
        "open-file limit %s; header timeout %.0f s, body timeout %.0f s, at most %d connections",
        descriptors,
        header_timeout_s,
        body_timeout_s,
        max_connections,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )
