"""Neural voices through `langdu serve` and the stand-in: complete audio, fallback, upgrade."""

from __future__ import annotations

import time
from collections.abc import Iterator

import feedparser
import httpx
import pytest

from tests.conftest import decoded_samples
from tests.edge_standin import EdgeStandIn
from tests.http.test_service import metric, wait_ready
from tests.server import Server, start_server, wait_episode

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def standin() -> Iterator[EdgeStandIn]:
    with EdgeStandIn() as s:
        yield s


@pytest.fixture(scope="module")
def server(standin, tmp_path_factory) -> Iterator[Server]:
    s = start_server(
        tmp_path_factory.mktemp("edge") / "data",
        default_voice="xiaoxiao",
        edge_resolve=standin.resolve,
        edge_ca_file=str(standin.ca_file),
        edge_timeout_s="2",
        edge_attempts="3",
        upgrade_after_s="1",
    )
    yield s
    s.stop()


def test_neural_voice_with_retries_visible_in_metrics(server, standin):
    standin.faults[:] = ["429", "drop"]
    with server.client() as c:
        article = c.post("/v1/articles", json={"text": "今天兰州晴。气温二十度。"}).json()
        audio = c.get(article["audio_url"]).content
        info = wait_ready(c, article["id"])
        timings = c.get(article["timings_url"]).json()
    assert info["voice"] == "xiaoxiao" and info["degraded"] is None
    assert timings["voice"] == "xiaoxiao"
    samples, rate = decoded_samples(audio)
    assert rate == 24000 and abs(samples * 1000 // rate - info["duration_ms"]) <= 1
    assert metric(server, "langdu_engine_retries", engine="edge") >= 2


def test_failing_service_falls_back_then_upgrades(server, standin):
    standin.faults[:] = ["503"] * 30
    with server.client() as c:
        article = c.post("/v1/articles", json={"text": "服务故障时，文章仍然完整朗读。"}).json()
        info = wait_ready(c, article["id"])
        assert info["degraded"] == "cmn-offline" and info["status"] == "ready"
        timings = c.get(article["timings_url"]).json()
        assert timings["voice"] == "cmn-offline"  # the whole article, one voice
        r = c.get(f"/v1/articles/{article['id']}/audio.mp3")
        assert r.headers["cache-control"] == "no-cache" and "cmn-offline" in r.headers["etag"]
        assert decoded_samples(r.content)[1] == 22050
        assert metric(server, "langdu_degraded_total", engine="edge") >= 1
        assert metric(server, "langdu_engine_errors_total", engine="edge") >= 1
        standin.faults[:] = []  # the service recovers; the article is read again
        deadline = time.monotonic() + 60
        while c.get(f"/v1/articles/{article['id']}").json()["degraded"] is not None:
            assert time.monotonic() < deadline, "never upgraded"
            time.sleep(0.3)
        upgraded = c.get(f"/v1/articles/{article['id']}/audio.mp3")
        now = c.get(f"/v1/articles/{article['id']}").json()
    assert upgraded.headers["etag"] == f'"{article["id"]}.{now["rendering"]}"' != r.headers["etag"]
    assert decoded_samples(upgraded.content)[1] == 24000
    assert httpx.get(now["timings_url"]).json()["voice"] == "xiaoxiao"


def _until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_published_fallback_episode_is_replaced_when_upgraded(server, standin):
    standin.faults[:] = ["503"] * 30
    with server.client() as c:
        article = c.post(
            "/v1/articles",
            json={
                "title": "服务恢复以后",
                "text": "播客里的这一期先用离线语音，之后换成神经语音。",
                "publish": True,
            },
        ).json()
        assert wait_ready(c, article["id"])["degraded"] == "cmn-offline"
        wait_episode(c, article["id"])
        url = f"/v1/articles/{article['id']}/episode.mp3"
        fallback = c.get(url)
        assert fallback.headers["cache-control"] == "no-cache"  # it will be replaced
        assert decoded_samples(fallback.content)[1] == 22050
        standin.faults[:] = []
        _until(lambda: decoded_samples(c.get(url).content)[1] == 24000, "episode not replaced")
        neural = c.get(url)
        assert neural.headers["cache-control"] == "public, max-age=3600"
        assert neural.headers["etag"] != fallback.headers["etag"]
        assert c.get(url, headers={"If-None-Match": neural.headers["etag"]}).status_code == 304
        feed = feedparser.parse(c.get("/feed.xml").content)
    [entry] = [e for e in feed.entries if e.id == article["id"]]
    assert int(entry.enclosures[0].length) == len(neural.content)


def test_restart_resumes_the_upgrade(standin, tmp_path):
    data = tmp_path / "data"
    edge = {
        "default_voice": "xiaoxiao",
        "edge_resolve": standin.resolve,
        "edge_ca_file": str(standin.ca_file),
        "edge_timeout_s": "2",
        "edge_attempts": "2",
    }
    standin.faults[:] = ["503"] * 1000
    first = start_server(data, upgrade_after_s="5", **edge)
    try:
        with first.client() as c:
            body = {"text": "重启以后，降级的文章还要换回神经语音。"}
            article = c.post("/v1/articles", json=body).json()
            assert wait_ready(c, article["id"])["degraded"] == "cmn-offline"
    finally:
        first.stop()
    standin.faults[:] = []
    # The upgrade is due 5 s after the fallback reading, whatever the new process is told.
    second = start_server(data, upgrade_after_s="3600", **edge)
    try:
        with second.client() as c:
            _until(
                lambda: c.get(f"/v1/articles/{article['id']}").json()["degraded"] is None,
                "the upgrade was forgotten across the restart",
            )
            timings = c.get(f"/v1/articles/{article['id']}/timings.json").json()
        assert timings["voice"] == "xiaoxiao"
    finally:
        second.stop()
