"""Admission: who a request comes from, and whether it may do more work now.

A client is its API key when it gives a configured one, else its address; behind a
trusted proxy, the address the proxy forwarded. Writes (posting and publishing articles)
and the OpenAI speech endpoint are limited per client with the `limits` library; a refused
request is answered 429 with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
headers before its body is even read.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import OverBudgetError, PayloadTooLargeError
from service.http.openai_errors import PREFIX as OPENAI_PREFIX
from service.http.openai_errors import openai_error
from service.http.problems import problem_document

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: Sequence[str]) -> list[_Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


@dataclass(frozen=True)
class Identity:
    """How requests are told apart."""

    api_keys: tuple[str, ...] = ()
    trusted_proxies: tuple[_Network, ...] = ()

    @classmethod
    def build(cls, api_keys: Sequence[str], trusted_proxies: Sequence[str]) -> Identity:
        return cls(tuple(api_keys), tuple(_networks(trusted_proxies)))

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_proxies)

    def client(self, scope: Scope) -> str:
        """`key:<digest>` for a configured API key, else `ip:<address>`."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-api-key", "")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given and any(hmac.compare_digest(given.encode(), k.encode()) for k in self.api_keys):
            return "key:" + hashlib.sha256(given.encode()).hexdigest()[:16]
        peer = (scope.get("client") or ("unknown", 0))[0]
        return "ip:" + self.address(peer, headers.get("x-forwarded-for", ""))

    def address(self, peer: str, forwarded_for: str) -> str:
        """The client's address: `peer`, or behind a trusted proxy the one it forwarded
        (X-Forwarded-For: client, proxy1, proxy2 -- the first hop from the right that is
        not one of our proxies)."""
        if self._trusted(peer):
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            for hop in reversed(hops):
                if not self._trusted(hop):
                    return hop
        return peer

    def behind_proxy(self, peer: str) -> bool:
        """Whether `peer` is one of our proxies (its connections carry many clients)."""
        return self._trusted(peer)


@dataclass(frozen=True)
class Rule:
    """A family of requests and how often one client may make them."""

    name: str
    methods: frozenset[str]
    prefixes: tuple[str, ...]
    limits: tuple[RateLimitItem, ...]
    anonymous: bool = False  # the client is counted by a salted digest, not its address

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and path.startswith(self.prefixes)


def rules(*, writes: str, speech: str, events: str = "") -> list[Rule]:
    """The limits of `langdu serve`: article writes, the speech endpoint apart, and the
    players' listening events (counted without keeping anyone's address)."""
    out = []
    if events.strip():
        out.append(Rule("events", frozenset({"POST"}), ("/v1/events",), _parse(events), True))
    if speech.strip():
        out.append(Rule("speech", frozenset({"POST"}), ("/v1/audio/",), _parse(speech)))
    if writes.strip():
        out.append(Rule("writes", frozenset({"POST"}), ("/v1/articles",), _parse(writes)))
    return out


def _parse(text: str) -> tuple[RateLimitItem, ...]:
    """ "60/minute;10/second", tightest first (the one RateLimit headers report)."""
    items = parse_many(text)
    return tuple(sorted(items, key=lambda i: i.amount / i.get_expiry()))


# Mandarin news read at 1x: about 230 characters a minute.
SECONDS_PER_CHARACTER = 0.26


def audio_seconds(characters: int, speed: float) -> float:
    """The audio `characters` of text make at `speed` (OpenAI's: 0.25 .. 4), estimated."""
    return characters * SECONDS_PER_CHARACTER / speed


class SpeechBudget:
    """Each client's audio on the speech endpoint, charged by what a request will make
    (characters ÷ speed), not by how many requests it sends: a budget of minutes of audio
    per window (`"120/10minutes"`: 120 minutes of audio in any 10 minutes)."""

    def __init__(
        self, budget: str, *, storage: str = "async+memory://", prefix: str = "langdu"
    ) -> None:
        per = parse_many(budget)[0]
        # Counted in seconds of audio: the item's amount is minutes.
        self.item = type(per)(per.amount * 60, per.multiples, per.namespace)
        self.minutes = per.amount
        self.limiter = moving_window(storage, prefix)

    async def charge(self, client: str, seconds: float) -> None:
        """Charge `client` for `seconds` of audio, before any of it is made.

        Raises:
            OverBudgetError: it does not fit in what is left now (retry_after: when the
                oldest charge in the window ends, at the soonest).
            PayloadTooLargeError: it is more than the whole budget.
        """
        cost = max(1, math.ceil(seconds))
        if cost > self.item.amount:
            raise PayloadTooLargeError(
                f"about {cost / 60:.0f} minutes of audio: more than the {self.minutes}"
                f" minutes a client may have per {self.item.get_expiry()} s"
            )
        if await self.limiter.hit(self.item, "speech-audio", client, cost=cost):
            return
        reset, remaining = await self.limiter.get_window_stats(self.item, "speech-audio", client)
        wait = max(1, math.ceil(reset - time.time()))
        raise OverBudgetError(
            f"about {cost / 60:.1f} minutes of audio, and {remaining / 60:.1f} of this"
            f" client's {self.minutes} minutes per {self.item.get_expiry()} s are left;"
            f" try again in {wait} s",
            retry_after=wait,
        )


def async_storage(url: str) -> str:
    """A `limits` storage URL for its asyncio API: memory:// -> async+memory://."""
    return url if url.startswith("async+") else f"async+{url}"


def moving_window(storage: str, prefix: str) -> MovingWindowRateLimiter:
    """A moving-window limiter counting in `storage` (an async+ URL)."""
    options: dict[str, str] = {}
    if storage.startswith("async+redis"):
        # Counted in Redis for every replica at once, through redis-py (the cluster
        # extra's client), under the deployment's prefix.
        options = {"implementation": "redispy", "key_prefix": f"{prefix}:limits"}
    return MovingWindowRateLimiter(storage_from_string(storage, **options))


class RateLimit:
    """ASGI, ahead of the framework: count each client's requests per rule; refuse over
    the limit, or a new article from a client holding its share of the queue.

    Refusals are answered here, without the framework's middleware, routing or response
    objects: a flood of refused posts costs the event loop little. A client refused over a
    limit is refused again without asking the limiter until the window frees a request
    (the moving window's oldest entry ends; later hits do not move it).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        identity: Identity,
        rules: Sequence[Rule],
        storage: str = "async+memory://",
        prefix: str = "langdu",
        cors_origins: Sequence[str] = (),
        count: Callable[[str, str, int], None] = lambda route, method, status: None,
        share: Callable[[str], str | None] = lambda client: None,
    ) -> None:
        self.app = app
        self.identity = identity
        self.rules = list(rules)
        self.limiter = moving_window(storage, prefix)
        self._any_origin = "*" in cors_origins
        self._origins = frozenset(o.encode() for o in cors_origins)
        self._count = count
        self._share = share
        # Anonymous rules' clients: a digest under a salt this process made (and forgets).
        self._salt = secrets.token_bytes(16)
        # (rule, client) -> (until when it is refused, the limit it is over)
        self._over: dict[tuple[str, str], tuple[float, RateLimitItem]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["langdu.identity"] = self.identity  # routes that need the client ask it
        rule = next((r for r in self.rules if r.matches(scope["method"], scope["path"])), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        client = self.identity.client(scope)
        scope["langdu.client"] = client
        if rule.anonymous:
            client = "anon:" + hmac.new(self._salt, client.encode(), "sha256").hexdigest()[:20]
        if await self._over_limit(scope, send, rule, client):
            return
        if rule.name == "writes" and scope["path"] == "/v1/articles":
            held = self._share(client)
            if held is not None:
                await self._refuse(scope, send, rule, 429, "ClientBusy", held, [])
                return
        # Tell the client where it stands on the tightest limit.
        item = rule.limits[0]
        reset, remaining = await self.limiter.get_window_stats(item, rule.name, client)
        extra = _headers(rule.name, item, remaining, max(0, math.ceil(reset - time.time())))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _over_limit(self, scope: Scope, send: Send, rule: Rule, client: str) -> bool:
        """Refuse the request if `client` is over one of `rule`'s limits."""
        now = time.time()
        over = self._over.get((rule.name, client))
        if over is None or over[0] <= now:
            over = None
            for item in rule.limits:
                if not await self.limiter.hit(item, rule.name, client):
                    reset, _ = await self.limiter.get_window_stats(item, rule.name, client)
                    over = (reset, item)
                    if len(self._over) > 100_000:
                        self._over = {k: v for k, v in self._over.items() if v[0] > now}
                    self._over[(rule.name, client)] = over
                    break
        if over is None:
            return False
        until, item = over
        wait = max(1, math.ceil(until - now))
        detail = (
            f"over {item.amount} per {item.get_expiry()} s for {rule.name}; try again in {wait} s"
        )
        headers = [*_headers(rule.name, item, 0, wait), (b"retry-after", str(wait).encode())]
        await self._refuse(scope, send, rule, 429, "Too many requests", detail, headers)
        return True

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        rule: Rule,
        status: int,
        title: str,
        detail: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """A problem document, sent as it is (under /v1/audio/ with OpenAI's `error`)."""
        doc = problem_document(status, title, detail)
        if scope["path"].startswith(OPENAI_PREFIX):
            doc["error"] = openai_error(doc)
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        if not any(name == b"retry-after" for name, _ in headers):
            headers.append((b"retry-after", b"5"))
        origin = next((v for k, v in scope["headers"] if k == b"origin"), b"")
        if origin and (self._any_origin or origin in self._origins):
            headers.append((b"access-control-allow-origin", b"*" if self._any_origin else origin))
            headers.append((b"access-control-expose-headers", _EXPOSED))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self._count(rule.prefixes[0], scope["method"], status)


_EXPOSED = b"Retry-After, RateLimit, RateLimit-Policy"


def _headers(
    name: str, item: RateLimitItem, remaining: int, reset: int
) -> list[tuple[bytes, bytes]]:
    """draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it."""
    return [
        (b"ratelimit-policy", f'"{name}";q={item.amount};w={item.get_expiry()}'.encode()),
        (b"ratelimit", f'"{name}";r={remaining};t={reset}'.encode()),
    ]
