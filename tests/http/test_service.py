"""The HTTP service, tested against a real `langdu serve` (uvicorn) on a loopback port."""

from __future__ import annotations

import concurrent.futures
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import decoded_samples, decoded_seconds
from tests.server import Server, start_server, wait_episode

pytestmark = pytest.mark.server

SHORT = "今天是2024年1月1日。天气晴朗，气温-5℃。"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(
        tmp_path_factory.mktemp("svc") / "data", max_article_bytes="300000", preload_jieba="true"
    )
    yield s
    s.stop()


def metric(server: Server, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    total = 0.0
    for found, value in pattern.findall(text):
        if all(part in found.split(",") for part in want.split(",") if part):
            total += float(value)
    return total


def post(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/articles", json=body)


def wait_ready(client: httpx.Client, article_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: dict[str, Any] = client.get(f"/v1/articles/{article_id}").json()
        if info["status"] in {"ready", "failed"}:
            return info
        time.sleep(0.1)
    raise AssertionError("article never finished")


def test_post_is_content_addressed_and_idempotent(server):
    with server.client() as c:
        first = post(c, text=SHORT)
        again = post(c, text=SHORT)
        faster = post(c, text=SHORT, rate="+20%")
    assert first.status_code == 201 and again.status_code == 200
    a, b = first.json(), again.json()
    assert a["id"] == b["id"] and re.fullmatch(r"[0-9a-f]{32}", a["id"])
    assert faster.json()["id"] != a["id"]
    for key in ("audio_url", "timings_url", "captions_url"):
        assert a[key].startswith(server.url) and a["id"] in a[key]
    assert a["sentences"] == 2 and a["voice"] == "cmn-offline"


def test_audio_streams_before_synthesis_ends(server, sample_html):
    html = sample_html.read_text(encoding="utf-8")
    with server.client() as c:
        started = time.monotonic()
        article = post(c, html=html, rate="-10%").json()
        first_byte = None
        body = bytearray()
        with c.stream("GET", article["audio_url"]) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "audio/mpeg"
            assert r.headers.get("x-langdu-status") == "synthesizing"
            for chunk in r.iter_bytes():
                if first_byte is None and chunk:
                    first_byte = time.monotonic() - started
                body.extend(chunk)
        total = time.monotonic() - started
        assert first_byte is not None and first_byte < total / 3, (first_byte, total)
        info = wait_ready(c, article["id"])
        stored = c.get(article["audio_url"])
    assert info["status"] == "ready" and info["duration_ms"] > 180_000
    assert stored.headers.get("x-langdu-status") is None
    assert bytes(body) == stored.content, "the stream is exactly the stored file"
    samples, rate = decoded_samples(stored.content)
    assert abs(samples * 1000 // rate - info["duration_ms"]) <= 1


def test_finished_audio_serves_ranges_etag_and_304(server):
    with server.client() as c:
        posted = post(c, text="这是用来测试断点续传的文章。它有两句话。").json()
        article = wait_ready(c, posted["id"])
        url = article["audio_url"]  # the rendering's own URL, now that it is stored
        assert f"/renders/{article['rendering']}/audio.mp3" in url
        full = c.get(url)
        size = len(full.content)
        assert full.status_code == 200 and int(full.headers["content-length"]) == size
        assert full.headers["accept-ranges"] == "bytes"
        assert "immutable" in full.headers["cache-control"]
        etag = full.headers["etag"]
        for lo, hi in ((0, 99), (1000, 1999), (size - 10, size - 1)):
            part = c.get(url, headers={"Range": f"bytes={lo}-{hi}"})
            assert part.status_code == 206
            assert part.content == full.content[lo : hi + 1]
            assert part.headers["content-range"] == f"bytes {lo}-{hi}/{size}"
            assert int(part.headers["content-length"]) == hi - lo + 1
        tail = c.get(url, headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == full.content[-100:]
        multi = c.get(url, headers={"Range": "bytes=0-9,20-29"})
        assert multi.status_code == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges")
        assert c.get(url, headers={"If-None-Match": etag}).status_code == 304
        head = c.head(url)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == size
        stale = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
        assert stale.status_code == 200 and len(stale.content) == size
        cross = c.get(url, headers={"Range": "bytes=0-9", "Origin": "https://news.example"})
        assert cross.headers["access-control-allow-origin"] == "*"
        bad = c.get(url, headers={"Range": f"bytes={size + 10}-"})
        assert bad.status_code == 416
        assert bad.headers["content-range"] == f"bytes */{size}"
        assert bad.json()["status"] == 416
        timings = c.get(article["timings_url"])
        captions = c.get(article["captions_url"])
        stable = c.get(f"/v1/articles/{article['id']}/audio.mp3")
        revalidated = c.get(stable.url, headers={"If-None-Match": etag})
    assert stable.content == full.content and stable.headers["etag"] == etag
    assert stable.headers["cache-control"] == "no-cache" and revalidated.status_code == 304
    assert timings.json()["sentences"][1]["text"] == "它有两句话。"
    assert captions.text.startswith("WEBVTT") and "它有两句话。" in captions.text


def test_single_flight_under_20_concurrent_requests(server):
    text = "单次合成测试：二十个听众同时点击朗读按钮。" * 3 + "服务只合成一次。"
    with server.client() as c:
        before = metric(server, "langdu_syntheses_total")
        article = post(c, text=text).json()

    def fetch(_: int) -> bytes:
        with server.client() as c:
            return bytes(c.get(article["audio_url"]).content)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(fetch, range(20)))
    assert len(set(bodies)) == 1 and len(bodies[0]) > 1000
    assert metric(server, "langdu_syntheses_total") - before == 1


def test_edited_article_resynthesizes_only_changed_sentences(server):
    sentences = [f"第{n}段的内容在这里，编辑后只有一句改变。" for n in "一二三四五六"]
    with server.client() as c:
        original = post(c, text="\n".join(sentences)).json()
        wait_ready(c, original["id"])
        misses = metric(server, "langdu_cache_total", kind="sentence", result="miss")
        hits = metric(server, "langdu_cache_total", kind="sentence", result="hit")
        sentences[3] = "第四段被编辑过了。"
        edited = post(c, text="\n".join(sentences)).json()
        wait_ready(c, edited["id"])
    assert edited["id"] != original["id"]
    assert metric(server, "langdu_cache_total", kind="sentence", result="miss") - misses == 1
    assert metric(server, "langdu_cache_total", kind="sentence", result="hit") - hits == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "好", "rate": "fast"}, "rate"),
        ({"text": "好", "html": "<p>好</p>"}, "text or html"),
        ({"title": "只有标题"}, "give text, html, or the url"),
        ({"text": "好", "colour": "red"}, "colour"),
        ({"text": 5}, "text"),
    ],
)
def test_bad_fields_are_422_problems(server, body, field):
    r = httpx.post(f"{server.url}/v1/articles", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "   \n  "}, "empty"),
        ({"text": "……！？“”"}, "speakable"),
        ({"text": "好", "voice": "nobody"}, "unknown voice"),
        ({"html": "<html><body><script>x()</script></body></html>"}, ""),
    ],
)
def test_unreadable_articles_are_422(server, body, message):
    r = httpx.post(f"{server.url}/v1/articles", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]


@pytest.mark.parametrize("raw", [b"\xff\xfe not json", '{"text": "好"'.encode(), b"{bad"])
def test_malformed_json_is_400(server, raw):
    r = httpx.post(
        f"{server.url}/v1/articles", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["status"] == 400
    assert "JSON" in r.json()["detail"]


def test_oversize_body_is_413(server):
    big = "新闻" * 100_000
    r = httpx.post(f"{server.url}/v1/articles", json={"text": big})
    assert r.status_code == 413 and r.json()["status"] == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"text": "'
        for _ in range(100):
            yield "新闻".encode() * 1000
        yield b'"}'

    r = httpx.post(
        f"{server.url}/v1/articles", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        "/v1/articles/0123456789abcdef0123456789abcdef",
        "/v1/articles/0123456789abcdef0123456789abcdef/audio.mp3",
        "/v1/articles/..%2F..%2Fetc%2Fpasswd/audio.mp3",
        "/v1/articles/%2e%2e/timings.json",
        "/v1/articles/ZZZ/captions.vtt",
        "/nowhere",
    ],
)
def test_unknown_ids_are_404(server, path):
    r = httpx.get(server.url + path)
    assert r.status_code == 404
    assert r.json()["status"] == 404


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_the_openai_client_gets_every_format(server: Server, fmt: str) -> None:
    # The official client, unchanged: only its base URL points here.
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    text = f"你好，欢迎收听今天的新闻。这是{fmt}格式。"
    whole = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=text,
        response_format=fmt,  # type: ignore[arg-type]
    )
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="nova",
        input=text + "流式。",
        response_format=fmt,  # type: ignore[arg-type]
        speed=2.0,
    ) as streamed:
        chunks = list(streamed.iter_bytes())
    assert decoded_seconds(whole.content, fmt) > 1.0
    assert decoded_seconds(b"".join(chunks), fmt) > 0.5
    with pytest.raises(openai.UnprocessableEntityError):
        client.audio.speech.create(model="tts-1", voice="alloy", input=text, speed=9)


def test_a_long_reading_streams_in_a_converted_format(server: Server) -> None:
    # Audio comes out as the sentences are read, not when the reading is done.
    text = "\n".join(f"第{n}段：安宁区召开党建工作会议，总结上半年的工作。" for n in range(30))
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "opus"}
    with server.client() as c:
        started = time.monotonic()
        with c.stream("POST", "/v1/audio/speech", json=body) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "audio/ogg"
            parts = r.iter_bytes()
            first = next(parts)
            first_at = time.monotonic() - started
            data = first + b"".join(parts)
        total = time.monotonic() - started
    assert first_at < total / 2, (first_at, total)
    assert decoded_seconds(data, "opus") > 30


def test_voices_health_and_metrics(server):
    voices = httpx.get(f"{server.url}/v1/voices").json()
    assert voices["default"] == "cmn-offline"
    assert {"cmn-offline", "cmn-offline-female"} <= {v["id"] for v in voices["voices"]}
    remote = {v["id"]: v["remote"] for v in voices["voices"]}
    assert remote["cmn-offline"] is False and remote["xiaoxiao"] is True  # edge needs the network
    health = httpx.get(f"{server.url}/healthz").json()
    from service.engines.neural_model import default_model_dir

    neural = ["neural"] if default_model_dir() is not None else []  # an opt-in model
    engines = ["edge", "espeak", "kokoro", *neural]
    assert health["status"] == "ok" and health["engines"] == engines
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        "langdu_requests_total",
        "langdu_cache_total",
        "langdu_synthesis_seconds",
        "langdu_queue_depth",
        "langdu_engine_errors_total",
    ):
        assert name in text
    demo = httpx.get(f"{server.url}/")
    assert demo.status_code == 200 and 'src="/player/player.js"' in demo.text
    script = httpx.get(f"{server.url}/player/player.js")
    assert script.status_code == 200 and "智能朗读" in script.text


def test_cors_allows_embedding_pages(server):
    r = httpx.options(
        f"{server.url}/v1/articles",
        headers={"Origin": "https://news.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in {"*", "https://news.example"}


def test_kill_during_synthesis_leaves_no_partial_file_and_work_resumes(tmp_path, sample_html):
    data = tmp_path / "data"
    html = sample_html.read_text(encoding="utf-8")
    first = start_server(data)
    try:
        with first.client() as c:
            article = post(c, html=html, publish=True).json()
            with c.stream("GET", f"/v1/articles/{article['id']}/audio.mp3") as r:
                next(r.iter_bytes())
                first.stop(signal.SIGKILL)
    finally:
        first.stop(signal.SIGKILL)
    assert not (data / "blobs" / "renders" / article["id"]).exists()
    second = start_server(data)
    try:
        with second.client() as c:
            # Nobody asks for it again: the interrupted reading resumes on its own, and the
            # published article's episode follows.
            info = wait_ready(c, article["id"])
            wait_episode(c, article["id"])
            audio = c.get(f"/v1/articles/{article['id']}/audio.mp3").content
        samples, rate = decoded_samples(audio)
        assert abs(samples * 1000 // rate - info["duration_ms"]) <= 1
        assert list((data / "blobs" / ".tmp").iterdir()) == []
    finally:
        second.stop()


def test_a_new_pronunciation_rereads_finished_articles_lazily(tmp_path):
    data = tmp_path / "data"
    text = "兰州新区今天召开工作会议。会议由市委书记主持。各区县负责人参加了会议。"
    first = start_server(data)
    try:
        with first.client() as c:
            article = wait_ready(c, post(c, text=text, publish=True).json()["id"])
            wait_episode(c, article["id"])
            old = c.get(article["audio_url"]).content
    finally:
        first.stop()
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("兰州新区\t兰州新地区\n", encoding="utf-8")
    second = start_server(data, lexicon_file=str(lexicon))
    try:
        with second.client() as c:
            url = f"/v1/articles/{article['id']}"
            served = c.get(f"{url}/audio.mp3")  # the old reading, and the new one starts
            assert served.content == old
            deadline = time.monotonic() + 60
            while c.get(url).json()["rendering"] == article["rendering"]:
                assert time.monotonic() < deadline, "never read again"
                time.sleep(0.2)
            new = c.get(url).json()
            audio = c.get(f"{url}/audio.mp3")
            timings = c.get(new["timings_url"]).json()
            still = c.get(article["audio_url"].replace(first.url, second.url))  # old rendering
            feed = c.get("/feed.xml").text
        misses = metric(second, "langdu_cache_total", kind="sentence", result="miss")
        hits = metric(second, "langdu_cache_total", kind="sentence", result="hit")
    finally:
        second.stop()
    assert new["id"] == article["id"] and new["render_version"] == new["rendering"]
    assert audio.content != old and audio.headers["etag"] != served.headers["etag"]
    assert timings["sentences"][0]["spoken"].startswith("兰州新地区")
    assert (misses, hits) == (1, 2), "only the sentence whose reading changed is synthesized"
    assert still.status_code == 200 and still.content == old
    assert f'<guid isPermaLink="false">{article["id"]}</guid>' in feed
