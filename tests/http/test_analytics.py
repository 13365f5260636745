"""Listening analytics through the API, in process: events in, figures out (JSON, CSV and
the dashboard), hostile batches refused with a problem and nothing counted from them."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import Fakes, running_app, wait_ready
from tests.procs import named

pytestmark = pytest.mark.anyio

KEY = "newsroom"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXT = "\n\n".join(
    [
        "安宁区召开党建工作会议，总结上半年全区基层党建工作。",
        "会议指出，全区基层党组织覆盖率进一步提高。",
        "下一步，安宁区将继续推进城市基层党建工作。",
        "与会企业表示，银行贷款利率保持稳定。",
    ]
)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _article(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post("/v1/articles", json={"text": TEXT, "title": "党建会议"}, headers=AUTH)
    assert r.status_code == 201, r.text
    return await wait_ready(client, r.json()["id"])


def _batch(article: str, session: str, *events: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"article": article, "session": session, "events": list(events), **more}


def _e(kind: str, **kw: Any) -> dict[str, Any]:
    return {"type": kind, "t": _now_ms(), **kw}


async def _post(client: httpx.AsyncClient, body: object, **kw: Any) -> httpx.Response:
    return await client.post("/v1/events", json=body, **kw)


async def _stats(client: httpx.AsyncClient, article_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/articles/{article_id}/stats", headers=AUTH)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_sessions_of_a_page_become_its_figures(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), api_keys=KEY) as (client, _):
        info = await _article(client)
        aid = str(info["id"])
        one, two = "a1" * 8, "b2" * 8
        batches = [
            _batch(aid, one, _e("play", position_ms=0, voice="fake-a", speed=1)),
            _batch(aid, one, _e("progress", heard=[0, 1, 2], listened_ms=9000, position_ms=9000)),
            _batch(aid, one, _e("speed", speed=1.5), _e("pause", position_ms=9100)),
            _batch(
                aid,
                two,
                _e("play", position_ms=0),
                _e("progress", heard=[0], listened_ms=1500, speed=1.5),
            ),
            _batch(aid, "c3" * 8, _e("download"), client="podcast"),
        ]
        for body in batches:  # public: no key needed
            r = await _post(client, body)
            assert r.status_code == 202, r.text
        stats = await _stats(client, aid)
        again = await _stats(client, aid)
    assert stats == again  # reading rolls up; reading again adds nothing
    assert (stats["plays"], stats["sessions"], stats["downloads"]) == (2, 3, 1)
    assert stats["listened_ms"] == 10_500
    assert stats["speeds"] == {"1": 9000, "1.5": 1500}
    assert stats["voices"] == {"fake-a": 1, "unknown": 1}
    # The title is the first sentence; the last was heard by nobody.
    assert stats["sentence_reach"] == [1.0, 0.5, 0.5, 0.0]
    assert stats["title"] == "党建会议" and stats["voice"] == "fake-a"
    assert stats["days"][-1]["plays"] == 2 and len(stats["days"]) == 30


async def test_the_figures_as_csv_and_the_whole_site(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), api_keys=KEY) as (client, _):
        aid = str((await _article(client))["id"])
        await _post(
            client, _batch(aid, "s" * 16, _e("play"), _e("progress", heard=[0, 1], listened_ms=100))
        )
        per_sentence = await client.get(
            f"/v1/articles/{aid}/stats", headers={**AUTH, "Accept": "text/csv"}
        )
        site = await client.get("/v1/stats?format=csv", headers=AUTH)
        overview = (await client.get("/v1/stats", headers=AUTH)).json()
    assert per_sentence.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(per_sentence.text.lstrip("\ufeff"))))
    assert rows[0] == ["sentence", "paragraph", "text", "heard_sessions", "reach"]
    assert rows[1][2] == "党建会议" and rows[1][3:] == ["1", "1.0"]
    assert rows[3][3:] == ["0", "0.0"]
    site_rows = list(csv.reader(io.StringIO(site.text.lstrip("\ufeff"))))
    assert site_rows[1][:3] == [aid, "党建会议", "1"]
    assert overview["plays"] == 1 and overview["articles"][0]["id"] == aid


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("{not json", 400, "not valid JSON"),
        (
            {"article": "0" * 32, "session": "s" * 16, "events": [{"type": "play", "t": 1}]},
            404,
            "no article",
        ),
        ("FUTURE", 422, "in the future"),
        ("STALE", 422, "more than a day ago"),
        ("BEYOND", 422, "names sentence 99"),
        ("EXTRA", 422, "extra"),
        ("EMPTY", 422, "events"),
        ("HEARD_ON_PLAY", 422, "progress events"),
        ("SHORT_SESSION", 422, "session"),
    ],
)
async def test_hostile_batches_get_a_problem_and_count_nothing(
    tmp_path: Path, body: object, status: int, says: str
) -> None:
    async with running_app(tmp_path, Fakes(), api_keys=KEY) as (client, services):
        aid = str((await _article(client))["id"])
        ok = _batch(aid, "s" * 16, _e("play"))
        built: object = {
            "FUTURE": _batch(aid, "s" * 16, {"type": "play", "t": _now_ms() + 3_600_000}),
            "STALE": _batch(aid, "s" * 16, {"type": "play", "t": _now_ms() - 2 * 86_400_000}),
            "BEYOND": _batch(aid, "s" * 16, _e("progress", heard=[0, 99], listened_ms=5)),
            "EXTRA": {**ok, "ip": "1.2.3.4"},
            "EMPTY": {**ok, "events": []},
            "HEARD_ON_PLAY": _batch(aid, "s" * 16, _e("play", heard=[1])),
            "SHORT_SESSION": {**ok, "session": "x"},
        }.get(body if isinstance(body, str) else "", body)
        content = built if isinstance(built, str) else json.dumps(built)
        r = await client.post(
            "/v1/events", content=content, headers={"Content-Type": "application/json"}
        )
        stats = await _stats(client, aid)
        metrics = services.metrics.render().decode()
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.text
    assert stats["plays"] == stats["sessions"] == 0
    assert "langdu_listening_batches_refused_total{reason=" in metrics


async def test_a_beacon_body_is_text_plain_and_a_huge_one_is_413(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, services):
        aid = str((await _article(client))["id"])
        beacon = json.dumps(_batch(aid, "s" * 16, _e("play")))
        r = await client.post(
            "/v1/events", content=beacon, headers={"Content-Type": "text/plain;charset=UTF-8"}
        )
        assert r.status_code == 202, r.text
        many = [_e("progress", heard=list(range(5)), listened_ms=1) for _ in range(2000)]
        huge = await _post(client, _batch(aid, "s" * 16, *many))
        stats = (await client.get(f"/v1/articles/{aid}/stats")).json()
        metrics = services.metrics.render().decode()
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
    assert stats["plays"] == 1 and stats["listened_ms"] == 0
    assert 'langdu_listening_batches_refused_total{reason="too_large"} 1.0' in metrics
    assert 'langdu_listening_events_total{kind="play"} 1.0' in metrics
    assert aid not in metrics  # no per-article labels


async def test_a_flood_from_one_client_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), rate_limit_events="5/minute") as (client, services):
        aid = str((await _article(client))["id"])
        codes = [
            (await _post(client, _batch(aid, f"{i:016x}", _e("play")))).status_code
            for i in range(8)
        ]
        refused = await _post(client, _batch(aid, "f" * 16, _e("play")))
        stats = (await client.get(f"/v1/articles/{aid}/stats")).json()
        metrics = services.metrics.render().decode()
    assert codes == [202] * 5 + [429] * 3
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.headers["content-type"] == "application/problem+json"
    assert stats["plays"] == 5
    assert 'langdu_listening_batches_refused_total{reason="rate"} 4.0' in metrics


def _events_worker() -> int:
    """The pid of this process's events worker (a child named langdu-events)."""
    found = named(os.getpid(), "langdu-events")
    assert found, "no events worker"
    return found[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_events_are_taken_in_a_worker_process_that_comes_back_when_killed(
    tmp_path: Path,
) -> None:
    async with running_app(tmp_path, Fakes(), parse_workers=1) as (client, _):
        aid = str((await _article(client))["id"])
        ok = await _post(client, _batch(aid, "a" * 16, _e("play")))
        # Refusals come back across the process boundary as they do from a thread.
        bad_json = await client.post(
            "/v1/events", content=b'{"a": 1, "a": 2}', headers={"Content-Type": "text/plain"}
        )
        unknown = await _post(client, _batch("0" * 32, "a" * 16, _e("play")))
        beyond = await _post(client, _batch(aid, "a" * 16, _e("progress", heard=[99])))
        worker = _events_worker()
        os.kill(worker, signal.SIGKILL)
        after = [(await _post(client, _batch(aid, f"{i:016x}", _e("play")))) for i in range(3)]
        stats = await _stats(client, aid)
        again = _events_worker()
    assert ok.status_code == 202, ok.text
    assert (bad_json.status_code, unknown.status_code, beyond.status_code) == (400, 404, 422)
    assert "duplicate key" in bad_json.text and "names sentence 99" in beyond.text
    # The batch the dead worker was given is refused (503: try again), never half kept;
    # a new worker takes the next ones.
    codes = [r.status_code for r in after]
    assert set(codes) <= {202, 503} and codes[-1] == 202, codes
    assert stats["plays"] == 1 + codes.count(202)
    assert again != worker


async def test_stats_survive_a_restart(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        aid = str((await _article(client))["id"])
        await _post(
            client, _batch(aid, "s" * 16, _e("play"), _e("progress", heard=[0], listened_ms=700))
        )
    # No roll-up ran before the stop: the events were kept and are rolled up now.
    async with running_app(tmp_path, Fakes()) as (client, _):
        stats = (await client.get(f"/v1/articles/{aid}/stats")).json()
    assert (stats["plays"], stats["listened_ms"], stats["sentence_reach"][0]) == (1, 700, 1.0)


async def test_the_dashboard_asks_for_the_key_and_shades_what_was_heard(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), api_keys=KEY) as (client, _):
        aid = str((await _article(client))["id"])
        await _post(
            client, _batch(aid, "s" * 16, _e("play"), _e("progress", heard=[0, 1], listened_ms=100))
        )
        anonymous = await client.get("/dashboard")
        stats_anonymous = await client.get(f"/v1/articles/{aid}/stats")
        basic = {"Authorization": "Basic " + base64.b64encode(f"editor:{KEY}".encode()).decode()}
        wrong = {"Authorization": "Basic " + base64.b64encode(b"editor:nope").decode()}
        overview = await client.get("/dashboard", headers=basic)
        denied = await client.get("/dashboard", headers=wrong)
        page = await client.get(f"/dashboard/articles/{aid}", headers=basic)
        bad_range = await client.get("/dashboard?from=2026-12-05&to=2026-12-01", headers=basic)
    assert anonymous.status_code == denied.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert stats_anonymous.status_code == 401
    assert overview.status_code == 200 and "text/html" in overview.headers["content-type"]
    assert "党建会议" in overview.text and "<svg" in overview.text and "<table" in overview.text
    assert "http://" not in overview.text and "https://" not in overview.text  # nothing outside
    assert page.status_code == 200
    assert 'data-sentence="0" data-reach="1.0000"' in page.text
    assert 'data-sentence="2" data-reach="0.0000"' in page.text
    assert "半数听众在第3句之前离开" in page.text
    assert bad_range.status_code == 422
