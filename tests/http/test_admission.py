"""Admission and fairness, in process: per-client rate limits, a fair queue, background work
that never takes the last slot, and refusals that do no work and store nothing."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from service.http import admission
from service.http.admission import Identity, RateLimit, rules
from service.services import Services
from tests.fakes import Fakes, running_app, until, wait_ready
from tests.store.sql import run_sql

pytestmark = pytest.mark.anyio

LINE = "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效，部署下一步工作。"


def _article(n: int) -> str:
    return f"第{n}篇。{LINE}"


def _rows(services: Services) -> int:
    [(count,)] = run_sql(services.registry, "SELECT count(*) FROM articles")
    return int(count)


def _key(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


async def test_writes_over_the_rate_are_429_with_ratelimit_headers(tmp_path: Path) -> None:
    async with running_app(
        tmp_path, Fakes(), rate_limit_writes="3/minute", api_keys="alpha,beta"
    ) as (client, services):
        seen = []
        for n in range(3):
            r = await client.post("/v1/articles", json={"text": _article(n)}, headers=_key("alpha"))
            assert r.status_code == 201, r.text
            assert r.headers["ratelimit-policy"] == '"writes";q=3;w=60'
            seen.append(r.headers["ratelimit"])
        assert [h.split(";")[1] for h in seen] == ["r=2", "r=1", "r=0"]
        refused = await client.post(
            "/v1/articles", json={"text": _article(9)}, headers=_key("alpha")
        )
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit"].startswith('"writes";r=0;t=')
        assert _rows(services) == 3  # refused before anything was stored
        # Another client is not held back by the first one's rate.
        other = await client.post("/v1/articles", json={"text": _article(9)}, headers=_key("beta"))
        assert other.status_code == 201
        # Reading is never rate limited.
        assert (await client.get(f"/v1/articles/{other.json()['id']}")).status_code == 200


async def test_the_speech_endpoint_has_its_own_limit(tmp_path: Path) -> None:
    async with running_app(
        tmp_path, Fakes(), rate_limit_speech="2/minute", rate_limit_writes="100/minute"
    ) as (client, _):
        body = {"model": "tts-1", "voice": "alloy", "response_format": "wav"}
        codes = [
            (
                await client.post("/v1/audio/speech", json={**body, "input": f"第{n}句话。"})
            ).status_code
            for n in range(3)
        ]
        assert codes == [200, 200, 429]
        assert (await client.post("/v1/articles", json={"text": LINE})).status_code == 201


@pytest.mark.parametrize("trusted", [True, False])
async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    tmp_path: Path, trusted: bool
) -> None:
    proxies = ["127.0.0.0/8"] if trusted else []
    async with running_app(
        tmp_path, Fakes(), rate_limit_writes="2/minute", trusted_proxies=proxies
    ) as (client, _):

        async def post(n: int, forwarded: str) -> int:
            r = await client.post(
                "/v1/articles",
                json={"text": _article(n)},
                headers={"X-Forwarded-For": f"{forwarded}, 127.0.0.1"},
            )
            return r.status_code

        assert [await post(n, "203.0.113.7") for n in range(3)] == [201, 201, 429]
        # A second reader behind the same proxy: its own budget only if the proxy is trusted.
        assert await post(5, "198.51.100.9") == (201 if trusted else 429)


async def test_a_client_cannot_escape_its_limit_by_forging_forwarded_addresses(
    tmp_path: Path,
) -> None:
    # The proxy appends the address it saw to what the client sent: only the hops from the
    # right up to the first untrusted one are facts; anything left of it the client wrote.
    async with running_app(
        tmp_path, Fakes(), rate_limit_writes="2/minute", trusted_proxies=["127.0.0.0/8"]
    ) as (client, _):
        codes = [
            (
                await client.post(
                    "/v1/articles",
                    json={"text": _article(n)},
                    headers={"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.7"},
                )
            ).status_code
            for n in range(3)
        ]
        assert codes == [201, 201, 429]


async def test_every_limit_of_a_rule_is_enforced(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), rate_limit_writes="3/minute;2/second") as (
        client,
        _,
    ):

        async def post(n: int) -> tuple[int, str]:
            r = await client.post("/v1/articles", json={"text": _article(n)})
            return r.status_code, r.text

        started = time.monotonic()
        first = [await post(n) for n in range(3)]
        assert time.monotonic() - started < 1.0  # (else the second limit's window moved on)
        assert [code for code, _ in first] == [201, 201, 429]
        assert "per 1 s" in first[2][1]  # the per-second limit refused it
        await asyncio.sleep(1.1)
        code, text = await post(3)
        assert code == 429 and "per 60 s" in text  # and then the per-minute one


async def test_one_clients_backlog_does_not_starve_anothers_first_article(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.6
    async with running_app(
        tmp_path,
        fakes,
        max_jobs=2,
        max_queue=6,
        api_keys="flood,reader",
        rate_limit_writes="1000/minute",
    ) as (client, services):
        responses = [
            await client.post("/v1/articles", json={"text": _article(n)}, headers=_key("flood"))
            for n in range(12)
        ]
        codes = [r.status_code for r in responses]
        # A client may hold a quarter of the queue; beyond that it is told to wait (429),
        # without its articles being extracted or stored.
        assert codes[:2] == [201, 201] and set(codes[2:]) == {429}
        assert _rows(services) == 2
        started = time.monotonic()
        mine = await client.post("/v1/articles", json={"text": LINE}, headers=_key("reader"))
        assert mine.status_code == 201
        await wait_ready(client, mine.json()["id"])
        waited = time.monotonic() - started
        second = await client.get(f"/v1/articles/{responses[1].json()['id']}")
    # The reader's article went before the flood's second one.
    assert waited < 1.0, waited
    assert second.json()["status"] in {"queued", "synthesizing"}


async def test_a_full_queue_refuses_new_articles_before_storing_them(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.3
    keys = ",".join(f"k{i}" for i in range(8))
    async with running_app(tmp_path, fakes, max_jobs=1, max_queue=3, api_keys=keys) as (
        client,
        services,
    ):
        codes = [
            (
                await client.post("/v1/articles", json={"text": _article(n)}, headers=_key(f"k{n}"))
            ).status_code
            for n in range(6)
        ]
        assert codes == [201, 201, 201, 201, 503, 503]
        assert _rows(services) == 4


async def test_upgrades_never_take_the_last_slot(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.fail = lambda text: True
    async with running_app(tmp_path, fakes, upgrade_after_s=0.1, max_jobs=2) as (client, _):
        ids = []
        for n in range(4):
            r = await client.post("/v1/articles", json={"text": _article(n)})
            ids.append(r.json()["id"])
        for article_id in ids:
            await wait_ready(client, article_id)
        # The neural voice now hangs before failing: upgrades hold their slot a long time.
        fakes.neural.delay_s = 3.0
        calls = len(fakes.neural.calls)
        await until(lambda: len(fakes.neural.calls) > calls, "no upgrade started")
        await asyncio.sleep(0.3)
        started = time.monotonic()
        fresh = await client.post("/v1/articles", json={"text": LINE, "voice": "offline-a"})
        info = await wait_ready(client, fresh.json()["id"])
        waited = time.monotonic() - started
    assert info["status"] == "ready"
    assert waited < 1.0, waited


async def test_a_page_posted_again_is_not_extracted_again(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.3
    async with running_app(tmp_path, fakes, max_jobs=1, max_queue=0) as (client, _):
        first = await client.post("/v1/articles", json={"text": LINE})
        assert first.status_code == 201
        # The queue is full now, but the same page again is the same article: no refusal.
        again = await client.post("/v1/articles", json={"text": LINE})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        other = await client.post("/v1/articles", json={"text": _article(1)})
        assert other.status_code == 503


# --- the middleware alone ------------------------------------------------------------------


def _scope(
    headers: dict[str, str] | None = None,
    client: tuple[str, int] | None = ("203.0.113.7", 5000),
    method: str = "POST",
    path: str = "/v1/articles",
) -> dict[str, object]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
    }


def _digest(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def test_a_configured_key_is_the_client_and_any_other_is_not() -> None:
    identity = Identity.build(["k-one", "k-two"], [])
    assert identity.client(_scope({"Authorization": "Bearer k-two"})) == _digest("k-two")
    assert identity.client(_scope({"Authorization": "bearer  k-two "})) == _digest("k-two")
    assert identity.client(_scope({"X-API-Key": "k-one"})) == _digest("k-one")
    # A wrong or empty key is not an identity: the address is.
    for headers in ({"Authorization": "Bearer k-three"}, {"Authorization": "Bearer "}, {}):
        assert identity.client(_scope(headers)) == "ip:203.0.113.7"
    assert Identity.build([], []).client(_scope({"X-API-Key": "k-one"})) == "ip:203.0.113.7"


def test_a_peer_without_an_address_is_unknown_and_never_a_trusted_proxy() -> None:
    identity = Identity.build([], ["0.0.0.0/0", "::/0"])
    forged = {"X-Forwarded-For": "198.51.100.1"}
    assert identity.client(_scope(forged, client=None)) == "ip:unknown"
    assert identity.client(_scope(forged, client=("/run/langdu.sock", 0))) == "ip:/run/langdu.sock"
    # not even when the networks trusted leave the forged hop out
    narrow = Identity.build([], ["203.0.113.0/24"])
    assert narrow.client(_scope(forged, client=("/run/langdu.sock", 0))) == "ip:/run/langdu.sock"
    # a real address in a trusted network is a proxy: the hop it forwards is the client
    behind = Identity.build([], ["203.0.113.0/24"])
    assert behind.client(_scope(forged)) == "ip:198.51.100.1"


def test_a_trusted_proxy_network_may_be_written_with_host_bits_and_blanks() -> None:
    identity = Identity.build([], ["10.1.2.3/8", " ", ""])
    behind = _scope({"X-Forwarded-For": "198.51.100.1, 10.9.9.9"}, client=("10.200.0.1", 1))
    assert identity.client(behind) == "ip:198.51.100.1"


@pytest.mark.parametrize(
    ("text", "amounts"),
    [("30/minute;100/hour", [100, 30]), ("2/second;100/minute", [100, 2])],
)
def test_a_rules_limits_are_kept_tightest_first(text: str, amounts: list[int]) -> None:
    (rule,) = rules(writes=text, speech="")
    assert [item.amount for item in rule.limits] == amounts


class _Recorder:
    """A tiny ASGI app: remembers the scope it got and answers 200 in two body parts."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, object]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})


async def _call(
    middleware: RateLimit, scope: dict[str, object]
) -> tuple[list[dict[str, object]], dict[str, str]]:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)  # type: ignore[arg-type]
    start = sent[0]
    headers = {
        k.decode().lower(): v.decode()
        for k, v in start["headers"]  # type: ignore[attr-defined]
    }
    return sent, headers


def _limited(app: _Recorder, writes: str) -> RateLimit:
    return RateLimit(app, identity=Identity.build([], []), rules=rules(writes=writes, speech=""))


async def test_other_scopes_and_unlimited_paths_pass_through_untouched() -> None:
    app = _Recorder()
    middleware = _limited(app, "1/minute")
    for kind in ("lifespan", "websocket"):
        await middleware({"type": kind}, None, None)  # type: ignore[arg-type]
    assert [s["type"] for s in app.scopes] == ["lifespan", "websocket"]
    assert "langdu.identity" not in app.scopes[0]
    for _ in range(3):  # reading is never counted
        _, headers = await _call(middleware, _scope(method="GET"))
        assert "ratelimit" not in headers


async def test_an_admitted_request_is_told_its_window_and_only_the_start_changes() -> None:
    app = _Recorder()
    middleware = _limited(app, "100/hour;30/minute")
    sent, headers = await _call(middleware, _scope())
    assert headers["ratelimit-policy"] == '"writes";q=100;w=3600'  # the tightest limit
    name, remaining, reset = headers["ratelimit"].split(";")
    assert name == '"writes"' and remaining == "r=99"
    assert 3590 <= int(reset.removeprefix("t=")) <= 3600
    assert sent[1:] == [
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b", "more_body": False},
        {"type": "http.response.trailers", "headers": [], "more_trailers": False},
    ]
    assert app.scopes[0]["langdu.client"] == "ip:203.0.113.7"


async def test_a_refused_request_waits_for_the_window_and_never_zero_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _Recorder()
    middleware = _limited(app, "1/minute")
    await _call(middleware, _scope())
    sent, headers = await _call(middleware, _scope())
    assert sent[0]["status"] == 429 and len(app.scopes) == 1
    assert 55 <= int(headers["retry-after"]) <= 60
    assert headers["ratelimit"] == f'"writes";r=0;t={headers["retry-after"]}'
    # A clock already past the window's end (the window resets as we answer): the client
    # is still told to wait a second, and an admitted one is told 0, never a negative time.
    later = time.time() + 3600
    monkeypatch.setattr(admission, "time", SimpleNamespace(time=lambda: later))
    sent, headers = await _call(middleware, _scope())
    assert sent[0]["status"] == 429 and headers["retry-after"] == "1"
    other = _limited(_Recorder(), "5/minute")
    _, headers = await _call(other, _scope())
    assert headers["ratelimit"] == '"writes";r=4;t=0'


def test_counts_in_redis_go_through_redis_py_under_the_deployment_s_prefix() -> None:
    """redis:// rate storage (shared by the cluster's replicas) uses the cluster extra's
    client, redis-py, and keys under the deployment's prefix; memory storage takes neither."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    shared = RateLimit(
        app,
        identity=Identity.build([], []),
        rules=rules(writes="10/minute", speech="10/minute"),
        storage="async+redis://127.0.0.1:1/0",  # never connected to: built lazily
        prefix="city",
    )
    storage: Any = shared.limiter.storage
    assert type(storage).__name__ == "RedisStorage"
    assert type(storage.bridge).__name__ == "RedispyBridge"
    assert storage.bridge.key_prefix == "city:limits"
    local: Any = RateLimit(
        app, identity=Identity.build([], []), rules=[], storage="async+memory://"
    ).limiter.storage
    assert type(local).__name__ == "MemoryStorage"


async def test_refusals_are_answered_ahead_of_the_framework(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 5.0  # readings stay in hand
    async with running_app(
        tmp_path, fakes, rate_limit_writes="3/minute", max_jobs=1, max_queue=3
    ) as (client, _):
        origin = {"Origin": "https://news.example"}
        # A client holding its share of the queue (2 of 4) is refused before its body is
        # read: even a body the framework would call malformed.
        for n in range(2):
            r = await client.post("/v1/articles", json={"text": _article(n)}, headers=origin)
            assert r.status_code == 201, r.text
        busy = await client.post(
            "/v1/articles",
            content=b"{not json",
            headers={**origin, "content-type": "application/json"},
        )
        assert busy.status_code == 429, busy.text
        assert busy.json()["detail"].startswith("2 of your articles are being read")
        assert busy.headers["access-control-allow-origin"] == "*"
        # Over the rate (the third post was the refused one): refused again without asking
        # the limiter until the window frees.
        over = [
            await client.post(
                "/v1/articles", content=b"{", headers={"content-type": "application/json"}
            )
            for _ in range(4)
        ]
        assert {r.status_code for r in over} == {429}
        assert all(r.headers["ratelimit"].startswith('"writes";r=0;t=') for r in over)
        assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in over)
        text = (await client.get("/metrics")).text
        assert 'langdu_requests_total{method="POST",route="/v1/articles",status="429"} 5.0' in (
            text
        )
