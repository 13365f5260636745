"""Neural voices through `langdu serve` and the stand-in: complete audio, fallback, upgrade."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import decoded_samples
from tests.edge_standin import EdgeStandIn
from tests.server import Server, start_server
from tests.test_service import metric, wait_ready


@pytest.fixture(scope="module")
def standin() -> Iterator[EdgeStandIn]:
    with EdgeStandIn() as s:
        yield s


@pytest.fixture(scope="module")
def server(standin, tmp_path_factory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("edge") / "data", default_voice="xiaoxiao",
                     edge_resolve=standin.resolve, edge_ca_file=str(standin.ca_file),
                     edge_timeout_s="2", edge_attempts="3", upgrade_after_s="1")
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
        r = c.get(article["audio_url"])
        assert r.headers["cache-control"] == "no-cache" and "cmn-offline" in r.headers["etag"]
        assert decoded_samples(r.content)[1] == 22050
        assert metric(server, "langdu_degraded_total", engine="edge") >= 1
        assert metric(server, "langdu_engine_errors_total", engine="edge") >= 1
        standin.faults[:] = []  # the service recovers; the article is read again
        deadline = time.monotonic() + 60
        while c.get(f"/v1/articles/{article['id']}").json()["degraded"] is not None:
            assert time.monotonic() < deadline, "never upgraded"
            time.sleep(0.3)
        upgraded = c.get(article["audio_url"])
    assert upgraded.headers["etag"] == f'"{article["id"]}"'
    assert decoded_samples(upgraded.content)[1] == 24000
    assert httpx.get(article["timings_url"]).json()["voice"] == "xiaoxiao"
