"""The one policy for answering stored audio: ranges, conditions, 416, multipart."""

from __future__ import annotations

import json

import pytest

from service.http.serving import IMMUTABLE, Conditions, Entity, decide, parse_ranges, respond, send

DATA = bytes(range(256)) * 4  # 1024 bytes
ENTITY = Entity.of(DATA, etag='"a.r1"', cache_control="no-cache")


def _headers(answer) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in answer.headers}


def _body(answer) -> bytes:
    return b"".join(s if isinstance(s, bytes) else DATA[s[0] : s[1]] for s in answer.body)


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("bytes=0-99", [(0, 100)]),
        ("bytes=1000-", [(1000, 1024)]),
        ("bytes=-24", [(1000, 1024)]),
        ("bytes=-5000", [(0, 1024)]),
        ("bytes=1000-5000", [(1000, 1024)]),
        ("bytes=0-0,10-19", [(0, 1), (10, 20)]),
        ("bytes=2000-", []),
        ("bytes=1024-", []),  # starts just past the last byte: nothing to send (416)
        ("bytes=1023-", [(1023, 1024)]),
        ("bytes=-0", []),
        ("bytes=5-1", None),
        ("bytes=abc", None),
        ("items=0-1", None),
        ("bytes=", None),
        ("bytes=" + ",".join(["0-1"] * 17), None),
    ],
)
def test_parse_ranges(header, ranges):
    assert parse_ranges(header, len(DATA)) == ranges


def test_whole_entity_and_single_range():
    whole = decide(ENTITY, Conditions())
    assert whole.status == 200 and _body(whole) == DATA
    assert _headers(whole)["content-length"] == "1024"
    part = decide(ENTITY, Conditions(range="bytes=100-199"))
    h = _headers(part)
    assert part.status == 206 and _body(part) == DATA[100:200]
    assert h["content-range"] == "bytes 100-199/1024" and h["content-length"] == "100"
    assert h["etag"] == '"a.r1"' and h["accept-ranges"] == "bytes"


def test_if_range_with_another_etag_sends_everything():
    stale = decide(ENTITY, Conditions(range="bytes=0-9", if_range='"a.r0"'))
    fresh = decide(ENTITY, Conditions(range="bytes=0-9", if_range='"a.r1"'))
    assert stale.status == 200 and fresh.status == 206
    # RFC 9110 13.1.5: If-Range compares strongly; a weak validator never matches
    weak = decide(ENTITY, Conditions(range="bytes=0-9", if_range='W/"a.r1"'))
    assert weak.status == 200 and _body(weak) == DATA


def test_a_range_from_the_size_of_the_entity_is_a_416():
    answer = decide(ENTITY, Conditions(range=f"bytes={len(DATA)}-"))
    assert answer.status == 416 and _headers(answer)["content-range"] == "bytes */1024"


@pytest.mark.parametrize("value", ['"a.r1"', '"x", "a.r1"', 'W/"a.r1"', "*"])
def test_if_none_match_is_304_without_a_body(value):
    answer = decide(ENTITY, Conditions(if_none_match=value))
    assert answer.status == 304 and answer.body == ()
    assert _headers(answer)["etag"] == '"a.r1"' and "content-length" not in _headers(answer)


def test_unsatisfiable_range_is_a_416_problem():
    answer = decide(ENTITY, Conditions(range="bytes=5000-"))
    h = _headers(answer)
    assert answer.status == 416 and h["content-range"] == "bytes */1024"
    assert h["content-type"] == "application/problem+json"
    assert json.loads(_body(answer))["status"] == 416


def test_several_ranges_are_multipart():
    answer = decide(ENTITY, Conditions(range="bytes=0-9,1000-"))
    h = _headers(answer)
    boundary = h["content-type"].split("boundary=")[1]
    body = _body(answer)
    assert answer.status == 206 and int(h["content-length"]) == len(body)
    parts = body.split(f"--{boundary}".encode())
    assert parts[-1] == b"--\r\n" and len(parts) == 4
    assert b"Content-Range: bytes 0-9/1024\r\n\r\n" + DATA[:10] + b"\r\n" in parts[1]
    assert parts[2].endswith(b"Content-Range: bytes 1000-1023/1024\r\n\r\n" + DATA[1000:] + b"\r\n")


def test_conditions_read_from_asgi_headers():
    raw = [(b"host", b"x"), (b"range", b"bytes=0-1"), (b"origin", b"https://news.example")]
    request = Conditions.from_asgi(raw)
    assert request.range == "bytes=0-1" and request.origin == "https://news.example"
    assert request.if_none_match is None and Conditions.from_asgi([]) == Conditions()


def test_conditions_read_every_header_they_use():
    raw = [(b"if-range", b'"a.r1"'), (b"if-none-match", b'"b"'), (b"range", b"bytes=1-2")]
    assert Conditions.from_asgi(raw) == Conditions("bytes=1-2", '"a.r1"', '"b"', None)
    mapping = {"range": "bytes=3-4", "if-range": '"x"', "if-none-match": "*", "origin": "o"}
    assert Conditions.from_mapping(mapping) == Conditions("bytes=3-4", '"x"', "*", "o")
    assert Conditions.from_mapping({}) == Conditions()


def test_if_none_match_with_other_tags_only_is_not_304():
    answer = decide(ENTITY, Conditions(if_none_match='"a.r0", W/"b"'))
    assert answer.status == 200 and _body(answer) == DATA
    h = _headers(answer)
    assert h["content-type"] == "audio/mpeg" and h["cache-control"] == "no-cache"
    assert decide(ENTITY, Conditions(if_none_match=' "a.r1" ')).status == 304
    assert _headers(decide(ENTITY, Conditions(if_none_match="*")))["cache-control"] == "no-cache"


def test_the_entity_media_type_is_sent_on_every_part():
    episode = Entity.of(DATA, etag='"e"', cache_control="x", media_type="audio/ogg")
    whole = decide(episode, Conditions())
    assert _headers(whole)["content-type"] == "audio/ogg"
    assert _headers(decide(episode, Conditions(range="bytes=0-1")))["content-type"] == "audio/ogg"
    multi = decide(episode, Conditions(range="bytes=0-1,5-6"))
    assert _body(multi).count(b"Content-Type: audio/ogg\r\n") == 2


async def _sent(answer, method="GET", extra=()):
    messages: list[dict[str, object]] = []

    async def collect(message):
        messages.append(message)

    await send(collect, method, answer, DATA, extra)
    return messages


@pytest.mark.anyio
async def test_send_writes_the_answer_over_asgi_in_segments():
    answer = decide(ENTITY, Conditions(range="bytes=0-9,1000-"))
    messages = await _sent(answer, extra=((b"x-extra", b"1"),))
    start, *bodies = messages
    assert start["type"] == "http.response.start" and start["status"] == 206
    assert start["headers"][-1] == (b"x-extra", b"1")
    assert list(start["headers"][:-1]) == list(answer.headers)
    assert [m["type"] for m in bodies] == ["http.response.body"] * len(answer.body)
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert b"".join(bytes(m["body"]) for m in bodies) == _body(answer)
    assert bytes(bodies[1]["body"]) == DATA[:10] and isinstance(bodies[1]["body"], memoryview)


@pytest.mark.anyio
async def test_send_for_head_and_304_has_an_empty_body():
    head = await _sent(decide(ENTITY, Conditions()), method="HEAD")
    assert head[0]["status"] == 200 and head[1:] == [{"type": "http.response.body", "body": b""}]
    assert dict(head[0]["headers"])[b"content-length"] == b"1024"
    unchanged = await _sent(decide(ENTITY, Conditions(if_none_match='"a.r1"')))
    assert unchanged[0]["status"] == 304
    assert unchanged[1:] == [{"type": "http.response.body", "body": b""}]


@pytest.mark.anyio
async def test_respond_answers_a_route_by_the_same_policy_with_middleware_headers():
    import httpx
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import Request
    from starlette.routing import Route

    async def audio(request: Request):
        return respond(request, DATA, etag='"a.r1"', cache_control=IMMUTABLE, media_type="audio/x")

    app = Starlette(
        routes=[Route("/a", audio, methods=["GET", "HEAD"])],
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"])],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        part = await client.get(
            "/a", headers={"range": "bytes=10-19", "origin": "https://n.example"}
        )
        assert part.status_code == 206 and part.content == DATA[10:20]
        assert part.headers["content-type"] == "audio/x"
        assert part.headers["cache-control"] == IMMUTABLE
        assert part.headers["access-control-allow-origin"] == "*"  # added by the middleware
        head = await client.head("/a")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "1024"
        same = await client.get("/a", headers={"if-none-match": '"a.r1"'})
        assert same.status_code == 304 and same.content == b""
        stale = await client.get("/a", headers={"range": "bytes=0-1", "if-range": '"old"'})
        assert stale.status_code == 200 and stale.content == DATA


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("bytes=-1", [(1023, 1024)]),  # the last byte
        ("bytes=-", None),  # neither end: not a range
        ("abc=0-1", None),  # a unit sorted before "bytes" is still not bytes
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(16)), [(i, i + 1) for i in range(16)]),
    ],
)
def test_parse_ranges_edges(header: str, ranges: list[tuple[int, int]] | None) -> None:
    assert parse_ranges(header, len(DATA)) == ranges


def test_a_weak_tag_for_another_entity_is_not_304() -> None:
    assert decide(ENTITY, Conditions(if_none_match='W/"b"')).status == 200


def test_a_416_problem_says_its_own_length() -> None:
    answer = decide(ENTITY, Conditions(range="bytes=5000-"))
    assert int(_headers(answer)["content-length"]) == len(_body(answer))


@pytest.mark.anyio
async def test_send_ends_every_multipart_body_whatever_the_number_of_ranges() -> None:
    for count in (2, 3, 4):
        header = "bytes=" + ",".join(f"{10 * i}-{10 * i + 4}" for i in range(count))
        answer = decide(ENTITY, Conditions(range=header))
        bodies = (await _sent(answer))[1:]
        assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]


@pytest.mark.anyio
async def test_send_knows_head_from_a_method_string_the_server_made() -> None:
    method = "".join(["HE", "AD"])  # as a server decodes it: not the literal's object
    head = await _sent(decide(ENTITY, Conditions()), method=method)
    assert head[1:] == [{"type": "http.response.body", "body": b""}]
