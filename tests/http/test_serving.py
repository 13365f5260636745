"""The one policy for answering stored audio: ranges, conditions, 416, multipart."""

from __future__ import annotations

import json

import pytest

from service.http.serving import Conditions, Entity, decide, parse_ranges

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
