"""Admission and fairness, in process: per-client rate limits, a fair queue, background work
that never takes the last slot, and refusals that do no work and store nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from service.services import Services
from tests.fakes import Fakes, running_app, until, wait_ready

pytestmark = pytest.mark.anyio

LINE = "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效，部署下一步工作。"


def _article(n: int) -> str:
    return f"第{n}篇。{LINE}"


def _rows(services: Services) -> int:
    db = services.registry._db  # type: ignore[attr-defined]
    (count,) = db.execute("SELECT count(*) FROM articles").fetchone()
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
