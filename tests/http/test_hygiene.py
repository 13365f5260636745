"""Clumsy and hostile input, in process: odd JSON, control characters, URLs, oversize work.

Every case answers a clear 4xx problem (never a 500 or a reset connection) and leaves
nothing behind: no registry row, no stored file.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from service.services import Services
from tests.fakes import Fakes, running_app, wait_ready

pytestmark = pytest.mark.anyio

TEXT = "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效。"


async def _raw(
    client: httpx.AsyncClient, body: bytes, path: str = "/v1/articles"
) -> httpx.Response:
    return await client.post(path, content=body, headers={"Content-Type": "application/json"})


def _count(services: Services) -> int:
    return len(services.registry.feed(category=None, limit=1000)) + len(
        list(services.registry.unfinished())
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"text": "\\ud800\\u5b89"}', "surrogate"),
        (b'{"text": "abc", "title": "\\udfff"}', "surrogate"),
        (b'{"text": "abc", "rate": NaN}', "NaN"),
        (b'{"text": "abc", "rate": Infinity}', "Infinity"),
        (b'{"text": "abc", "text": "def"}', "duplicate"),
        ('{"text": "安宁区"}'.encode("utf-16"), "UTF-8"),
        ('{"text": "安宁区"}'.encode("utf-16-le"), "UTF-8"),
        (b'{"text": "\xff\xfe"}', "UTF-8"),
        (b'{"text": "abc"', "JSON"),
    ],
)
async def test_odd_json_is_a_400_problem(tmp_path: Path, body: bytes, detail: str) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        for path in ("/v1/articles", "/v1/audio/speech"):
            r = await _raw(client, body, path)
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert detail.lower() in r.json()["detail"].lower()
        assert (await client.get("/healthz")).status_code == 200


async def test_nan_in_a_number_field_of_the_speech_endpoint_is_400(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        body = b'{"model": "tts-1", "input": "abc", "voice": "alloy", "speed": NaN}'
        r = await _raw(client, body, "/v1/audio/speech")
        assert r.status_code == 400 and "NaN" in r.json()["detail"]


async def test_control_characters_are_cleaned_where_text_enters(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, services):
        r = await client.post(
            "/v1/articles",
            json={
                "title": "安宁区\x00召开\x1b[31m会议\x7f\x85",
                "text": TEXT + "\x08\x0b",
                "publish": True,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["title"] == "安宁区召开[31m会议"
        await wait_ready(client, r.json()["id"])
        await services.library.wait_episode(r.json()["id"])
        feed = await client.get("/feed.xml")
        root = ET.fromstring(feed.content)  # well-formed for every subscriber
        titles = [t.text for t in root.iter("title")]
        assert "安宁区召开[31m会议" in titles


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,hi",
        "ftp://x.cn/a",
        "//x.cn/a",
        "http://",
        # a space or a control character would reach the feed's <link> and the page's href
        "https://news.cn/a b.html",
        "https://news.cn/a\tb.html",
        "https://news.cn/a\nb.html",
        "https://news.cn/a\x00.html",
        "https://news.cn/a\x7f.html",
        "https://news.cn/a\x85.html",
        "https://news.cn/a\u3000b.html",
    ],
)
async def test_article_urls_are_http_or_https_only(tmp_path: Path, url: str) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        r = await client.post("/v1/articles", json={"text": TEXT, "url": url})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][-1] == "url"
        ok = await client.post("/v1/articles", json={"text": TEXT, "url": "https://news.cn/a.html"})
        assert ok.status_code == 201


async def test_speech_input_is_bounded_like_openais(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        body = {"model": "tts-1", "voice": "alloy", "input": "安" * 4097}
        r = await client.post("/v1/audio/speech", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "input"


async def test_an_article_over_the_character_limit_is_413_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path, Fakes(), max_article_chars=2000) as (client, services):
        r = await client.post("/v1/articles", json={"text": TEXT * 80})
        assert r.status_code == 413, r.text
        assert "2000" in r.json()["detail"]
        assert _count(services) == 0


async def test_a_number_too_long_to_read_is_422(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, services):
        r = await client.post("/v1/articles", json={"text": "账号" + "1" * 20000 + "。"})
        assert r.status_code == 422, r.text
        assert "digits" in r.json()["detail"]
        r = await client.post(
            "/v1/audio/speech", json={"model": "m", "voice": "alloy", "input": "9" * 4000}
        )
        assert r.status_code == 422
        assert _count(services) == 0


async def test_long_sentences_are_read_in_bounded_pieces(tmp_path: Path) -> None:
    fakes = Fakes()
    run_on = "，".join(["全区基层党组织覆盖率持续提高"] * 60) + "。"
    async with running_app(tmp_path, fakes) as (client, _):
        r = await client.post("/v1/articles", json={"text": run_on})
        info = await wait_ready(client, r.json()["id"])
        assert info["status"] == "ready"
        assert int(str(info["sentences"])) >= 4
        assert max(len(t) for t in fakes.neural.calls) <= 200


async def test_many_numbers_in_a_list_are_not_one_long_number(tmp_path: Path) -> None:
    years = ",".join(str(y) for y in range(1990, 2024))  # 136 digits, none over four long
    async with running_app(tmp_path, Fakes()) as (client, _):
        r = await client.post("/v1/articles", json={"text": f"统计年份：{years}。"})
        assert r.status_code == 201, r.text
        r = await client.post("/v1/articles", json={"text": "存款12,345,678,901.25元。"})
        assert r.status_code == 201, r.text


async def test_a_number_for_published_at_is_422_as_the_schema_says(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        r = await client.post("/v1/articles", json={"text": TEXT, "published_at": 2.5e-313})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "published_at"
        ok = await client.post(
            "/v1/articles", json={"text": TEXT, "published_at": "2024-05-20T08:00:00+08:00"}
        )
        assert ok.status_code == 201


@pytest.mark.parametrize("when", ["0001-01-01T08:29:36+11:49", "9999-12-31T23:59:59-05:00"])
async def test_a_published_at_outside_what_a_clock_can_hold_is_422(
    tmp_path: Path, when: str
) -> None:
    # Found by schemathesis: year 1 at +11:49 is year 0 in UTC, and reading it back was a 500.
    async with running_app(tmp_path, Fakes()) as (client, _):
        r = await client.post("/v1/articles", json={"text": TEXT, "published_at": when})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"][-1] == "published_at"


async def test_an_old_but_real_published_at_is_kept(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, services):
        for when, utc in [
            ("1949-10-01T15:00:00+08:00", datetime(1949, 10, 1, 7, tzinfo=UTC)),
            ("0001-01-01T12:00:00+08:00", datetime(1, 1, 1, 4, tzinfo=UTC)),
        ]:
            r = await client.post("/v1/articles", json={"text": when + TEXT, "published_at": when})
            assert r.status_code == 201, r.text
            record = services.registry.get(r.json()["id"])
            assert record is not None and record.published_at == utc


async def test_a_large_body_is_checked_and_parsed_once_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.requests import Request

    async def second_parse(self: Request) -> object:
        raise AssertionError("the route parsed the body again")

    monkeypatch.setattr(Request, "json", second_parse)
    big = ("<p>" + TEXT * 20 + "</p>\n") * 60  # ~200 KB: a parsing worker's job
    async with running_app(tmp_path, Fakes()) as (client, _):
        ok = await client.post("/v1/articles", json={"html": big})
        bad = await _raw(client, b'{"html": ' + json.dumps(big).encode() + b', "html": "x"}')
        info = await wait_ready(client, str(ok.json()["id"]))
    assert ok.status_code == 201 and info["status"] == "ready"
    assert bad.status_code == 400 and "duplicate key" in bad.json()["detail"]
