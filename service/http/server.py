"""Running the ASGI app under uvicorn, hardened against slow and greedy clients.

uvicorn times out idle keep-alive connections, but not a client that opens a connection
and sends its headers (or its body) a byte at a time: a thousand such connections hold a
thousand descriptors forever. Here every connection must finish its request headers
within `header_timeout_s`, a request body may not stall for more than `body_timeout_s`,
connections beyond `max_connections` are closed on arrival, and the process's descriptor
limit is raised to what the system allows at start-up.

The connection cap never exceeds what the descriptors allow (`connection_cap`: a share of
them is kept for the process's own files, pipes and outbound connections), so accept()
never fails for want of one. One client holds at most `max_per_client` connections (the
address a trusted proxy forwarded, for the proxy's connections): more are closed on
arrival, or, through a proxy, answered 429. Request headers over `MAX_HEADER_BYTES` in all
are answered 431 as soon as they pass it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import resource
import sys
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.http.admission import Identity
from service.http.problems import problem_document

log = logging.getLogger("langdu.serve")

MAX_HEADER_BYTES = 32 * 1024  # the request line and every header, in all


def connection_cap(wanted: int, descriptors: int) -> int:
    """The connections `descriptors` open files allow, at most `wanted`: a quarter of them
    (at least 96) stays free for the process's own files, pipes and outbound connections."""
    if descriptors < 0:  # RLIM_INFINITY
        return wanted
    return max(1, min(wanted, descriptors - max(96, descriptors // 4)))


class _Refused(Exception):
    """A parser callback's refusal of the request: answered in place of uvicorn's 400."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


_REASONS = {429: b"Too Many Requests", 431: b"Request Header Fields Too Large"}


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
    max_per_client = 64
    identity = Identity()
    # Open connections per client address (`run` gives each server a counter of its own).
    held: ClassVar[collections.Counter[str]] = collections.Counter()
    # Connections with no request under way (headers awaited), oldest first.
    waiting: ClassVar[dict[GuardedHttpProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._peer = ""
        self._via_proxy = False
        self._holder: str | None = None  # the client this connection is counted against
        self._awaiting_headers = True
        self._header_bytes = 0  # of this request's headers, as received
        self._refusal: _Refused | None = None

    # -- who holds how many -----------------------------------------------------------------

    def _hold(self, client: str) -> bool:
        """Count this connection against `client`, unless it holds its share already."""
        if self._holder == client:
            return True
        self._release()
        if self.held[client] >= self.max_per_client:
            return False
        self.held[client] += 1
        self._holder = client
        return True

    def _release(self) -> None:
        if self._holder is not None:
            self.held[self._holder] -= 1
            if self.held[self._holder] <= 0:
                del self.held[self._holder]
            self._holder = None

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
        peername = transport.get_extra_info("peername")
        self._peer = str(peername[0]) if peername else ""
        # A proxy's connections carry many clients: counted by the forwarded address.
        self._via_proxy = bool(self.identity.trusted_proxies) and self.identity.behind_proxy(
            self._peer
        )
        if not (self._via_proxy or self._hold(self._peer)) or (
            len(self.connections) >= self.max_connections and not self._make_room()
        ):
            self._refused = True
            transport.abort()
            return
        super().connection_made(transport)
        self._wait()
        self._arm(self.header_timeout_s, "headers")

    def _make_room(self) -> bool:
        """At the cap, the connection that has waited longest for its request's headers
        makes way for a new one (slow clients must not lock everyone else out); when
        every connection has a request under way, there is no room."""
        while self.waiting:
            oldest = next(iter(self.waiting))
            oldest._unwait()
            if not oldest.transport.is_closing():
                oldest.transport.abort()
                return True
        return False

    def _wait(self) -> None:
        self.waiting.pop(self, None)
        self.waiting[self] = None  # the newest

    def _unwait(self) -> None:
        self.waiting.pop(self, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._release()
        self._unwait()
        if self._refused:
            return  # refused on arrival: uvicorn never saw it
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Headers sent slowly, or in one huge field, are refused once they pass the bound.
        if self._awaiting_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._answer(_too_large())

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._answer(self._refusal)

    def _answer(self, refusal: _Refused) -> None:
        """Answer `refusal` as a problem document and close the connection."""
        if self.transport.is_closing():
            return
        body = json.dumps(problem_document(refusal.status, refusal.title, refusal.detail)).encode()
        head = [
            b"HTTP/1.1 %d %s" % (refusal.status, _REASONS[refusal.status]),
            b"content-type: application/problem+json",
            b"content-length: %d" % len(body),
            b"connection: close",
        ]
        if refusal.status == 429:
            head.append(b"retry-after: 5")
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()

    def _refuse(self, refusal: _Refused) -> None:
        """Stop the parser: uvicorn answers its error with `send_400_response`."""
        self._refusal = refusal
        raise refusal

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._unwait()
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > MAX_HEADER_BYTES:
            self._refuse(_too_large())
        if self._via_proxy:
            forwarded = b",".join(v for k, v in self.headers if k == b"x-forwarded-for")
            client = self.identity.address(self._peer, forwarded.decode("latin-1"))
            if not self._hold(client):
                self._refuse(
                    _Refused(
                        429,
                        "Too many connections",
                        f"{client} holds {self.max_per_client} connections already",
                    )
                )
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._awaiting_headers = True  # the next request's, on this connection
        self._header_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._awaiting_headers and not self.transport.is_closing():
            self._wait()  # idle until the next request's headers are in


def _too_large() -> _Refused:
    return _Refused(
        431,
        "Request headers too large",
        f"the request line and headers may take {MAX_HEADER_BYTES} bytes in all",
    )


def run(
    app: Any,
    *,
    host: str,
    port: int,
    access_log: bool,
    header_timeout_s: float,
    body_timeout_s: float,
    max_connections: int,
    max_per_client: int = 64,
    identity: Identity | None = None,
) -> None:
    """Serve `app` until interrupted."""
    import uvicorn

    descriptors = raise_descriptor_limit(max(65536, 2 * max_connections))
    cap = connection_cap(max_connections, descriptors)
    if cap < max_connections:
        log.warning(
            "open-file limit %s allows %d connections, not the %d asked for",
            descriptors,
            cap,
            max_connections,
        )
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
            "max_connections": cap,
            "max_per_client": max_per_client,
            "identity": identity or Identity(),
            "held": collections.Counter(),
            "waiting": {},
        },
    )
    log.info(
        "open-file limit %s; header timeout %.0f s, body timeout %.0f s, at most %d connections"
        " (%d from one client)",
        descriptors,
        header_timeout_s,
        body_timeout_s,
        cap,
        max_per_client,
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
