"""Clumsy and hostile input, in process: odd JSON, control characters, URLs, oversize work.

Every case answers a clear 4xx problem (never a 500 or a reset connection) and leaves
nothing behind: no registry row, no stored file.
"""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from service.errors import PayloadTooLargeError, WorkerLostError
from service.http.hygiene import PARSED, BadJSON, StrictJSON, check_json
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


async def test_a_page_of_too_many_elements_is_413_at_once(tmp_path: Path) -> None:
    """100,000 empty <p> (0.7 MB, under the byte limit) took seconds to parse for nothing."""
    page = "<html><body>" + "<p>x</p>" * 100_000 + "</body></html>"
    async with running_app(tmp_path, Fakes()) as (client, services):
        loop = asyncio.get_running_loop()
        started = loop.time()
        r = await client.post("/v1/articles", json={"html": page})
        took = loop.time() - started
        real = await client.post("/v1/articles", json={"html": f"<p>{TEXT}</p>" * 40})
    assert r.status_code == 413, r.text
    assert "30000 elements" in r.json()["detail"]
    assert took < 1.0, took
    assert _count(services) == 1 and real.status_code == 201


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


async def test_a_published_at_more_than_a_day_ahead_is_422_and_pins_no_feed(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    async with running_app(tmp_path, Fakes()) as (client, _):
        refused = [
            await client.post(
                "/v1/articles", json={"text": TEXT, "published_at": when, "publish": True}
            )
            for when in ("9999-01-01T00:00:00Z", (now + timedelta(days=2)).isoformat())
        ]
        soon = (now + timedelta(hours=20)).isoformat()  # a time zone's "tomorrow": fine
        ok = await client.post("/v1/articles", json={"text": TEXT, "published_at": soon})
        feed = (await client.get("/feed.xml")).text
    for r in refused:
        assert r.status_code == 422, r.text
        assert "more than a day in the future" in r.text
    assert ok.status_code == 201, ok.text
    assert "<item>" not in feed


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


# --- check_json and StrictJSON on their own (ASGI messages by hand) ---


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"a": 1}'.encode("utf-16"), "UTF-16 or UTF-32"),  # with its byte-order mark
        (b'\xff\xfe{"a": 1}', "UTF-16 or UTF-32"),  # a mark alone is enough
        (b'\xfe\xff{"a": 1}', "UTF-16 or UTF-32"),
        ('{"a": 1}'.encode("utf-16-le"), "UTF-16 or UTF-32"),  # no mark: a NUL early on
        (b'"\x00', "UTF-16 or UTF-32"),  # two bytes are enough to tell
        (b"[1,\x00]", "UTF-16 or UTF-32"),  # a NUL as the fourth byte
        (b"\x00", "not valid JSON"),  # one byte cannot be UTF-16
        (b"[1, \x00]", "not valid JSON"),  # a NUL later is only bad JSON
        (b'{"a": "\xe9"}', "not valid UTF-8 (byte 7)"),
    ],
)
def test_check_json_tells_what_is_wrong_with_the_encoding(body: bytes, detail: str) -> None:
    with pytest.raises(BadJSON, match=re.escape(detail)):
        check_json(body)


def test_check_json_finds_lone_surrogates_in_keys_and_nested_lists() -> None:
    assert check_json(b'{"a": [1, {"b": "\\u4e2d"}]}') == {"a": [1, {"b": "中"}]}
    # A pair is one character; an escaped backslash before "ud800" is no escape at all.
    assert check_json(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]
    for body in (b'{"\\ud800": 1}', b'{"a": [[{"b": ["\\udfff"]}]]}', b'["x\\uDBFF"]'):
        with pytest.raises(BadJSON, match="lone surrogate"):
            check_json(body)


class _App:
    """The app behind StrictJSON: what it was handed, and the body it could read."""

    def __init__(self, reads: int = 1) -> None:
        self.reads = reads
        self.scopes: list[Scope] = []
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        for _ in range(self.reads):
            self.messages.append(await receive())
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


async def _through(
    middleware: StrictJSON,
    scope: dict[str, Any],
    messages: list[Message],
) -> list[Message]:
    queue = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def _http(content_type: str = "application/json", method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/v1/articles",
        "headers": [(b"content-type", content_type.encode())],
    }


def _body(data: bytes, more: bool | None = None) -> Message:
    message: Message = {"type": "http.request", "body": data}
    if more is not None:
        message["more_body"] = more
    return message


async def test_strict_json_lets_other_scopes_and_methods_pass_unread() -> None:
    app = _App(reads=0)
    lifespan = {"type": "lifespan"}
    await _through(StrictJSON(app), lifespan, [])
    get = _http(method="GET")
    sent = await _through(StrictJSON(app), get, [_body(b'{"a": 1, "a": 2}')])
    assert app.scopes == [lifespan, get] and PARSED not in get
    assert sent[0]["status"] == 204


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/csp-report", "application/x-www-form-urlencoded", "json"],
)
async def test_strict_json_leaves_bodies_that_are_not_json_to_the_route(content_type: str) -> None:
    app = _App()
    scope = _http(content_type)
    sent = await _through(StrictJSON(app), scope, [_body(b"a=1&a=2")])
    assert sent[0]["status"] == 204 and PARSED not in scope
    assert app.messages == [_body(b"a=1&a=2")]  # the app reads the body itself


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/problem+json"],
)
async def test_strict_json_checks_every_json_media_type(content_type: str) -> None:
    sent = await _through(StrictJSON(_App()), _http(content_type), [_body(b'{"a": 1, "a": 2}')])
    assert sent[0]["status"] == 400
    assert b"duplicate key" in sent[1]["body"]


async def test_strict_json_reads_a_body_sent_in_parts_and_replays_it_once() -> None:
    app = _App(reads=2)
    scope = _http()
    parts = [_body(b'{"a": ', more=True), _body(b"[1, ", more=True), _body(b"2]}")]
    sent = await _through(StrictJSON(app), scope, parts)
    assert scope[PARSED] == {"a": [1, 2]} and sent[0]["status"] == 204
    # the route gets the whole body in one message, then what the client sends next
    assert app.messages == [
        {"type": "http.request", "body": b'{"a": [1, 2]}', "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_strict_json_stops_when_the_client_leaves_mid_body() -> None:
    app = _App()
    sent = await _through(StrictJSON(app), _http(), [_body(b'{"a": ', more=True)])
    assert sent == [] and app.scopes == []  # nothing to answer, nobody to answer


async def test_an_empty_json_body_is_left_to_the_route() -> None:
    app = _App()
    scope = _http()
    await _through(StrictJSON(app), scope, [_body(b"")])
    assert PARSED not in scope and app.messages[0]["body"] == b""


class _Pool:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    async def run(self, fn: Callable[[bytes], Any], body: bytes) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return fn(body)


def _with_pool(pool: _Pool, scope: dict[str, Any]) -> dict[str, Any]:
    library = SimpleNamespace(parse_pool=pool)
    scope["app"] = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(library=library)))
    return scope


def _json_of_size(size: int) -> bytes:
    body = json.dumps({"html": "x" * size}).encode()
    return json.dumps({"html": "x" * (2 * size - len(body))}).encode()


@pytest.mark.parametrize(
    ("size", "in_pool"), [(64 * 1024 - 1, 0), (64 * 1024, 1), (64 * 1024 + 1, 1)]
)
async def test_bodies_from_64_kib_are_parsed_in_the_parsing_pool(size: int, in_pool: int) -> None:
    body = _json_of_size(size)
    assert len(body) == size
    pool = _Pool()
    scope = _with_pool(pool, _http())
    await _through(StrictJSON(_App()), scope, [_body(body)])
    assert pool.calls == in_pool and scope[PARSED] == json.loads(body)
    scope = _http()  # no services (the app alone): parsed here, whatever its size
    await _through(StrictJSON(_App()), scope, [_body(body)])
    assert scope[PARSED] == json.loads(body)


@pytest.mark.parametrize(
    ("error", "status"),
    [(WorkerLostError("the parsing worker died"), 503), (PayloadTooLargeError("too much"), 413)],
)
async def test_a_parsing_pool_failure_is_its_problem_document(
    error: Exception, status: int
) -> None:
    app = _App()
    scope = _with_pool(_Pool(error), _http())
    sent = await _through(StrictJSON(app), scope, [_body(_json_of_size(64 * 1024))])
    assert sent[0]["status"] == status and app.scopes == []
    assert json.loads(sent[1]["body"])["detail"] == str(error)
