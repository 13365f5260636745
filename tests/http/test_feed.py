"""The podcast feed, against a real `langdu serve`: parsed as podcast apps parse it."""

from __future__ import annotations

import array
import io
import math
import struct
import wave
import zlib
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from mutagen.id3 import ID3

from tests.conftest import decoded_pcm, decoded_samples, ebur128
from tests.server import Server, start_server, wait_episode

pytestmark = pytest.mark.server

KEY = "feed-secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
TRICKY = "市民说“好” & <新> 规 🎉"
FIRST = "今天上午，兰州市召开新闻发布会。会议介绍了2024年的工作安排。预计全年投资增长6.5%。"


def _png() -> bytes:
    raw = b"\x00\xff\x00\x00"  # one red pixel

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _tone(path: Path, seconds: float = 1.0) -> None:
    rate = 22050
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            array.array(
                "h",
                (
                    int(8000 * math.sin(2 * math.pi * 660 * i / rate))
                    for i in range(int(rate * seconds))
                ),
            ).tobytes()
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("feed")
    (root / "cover.png").write_bytes(_png())
    _tone(root / "intro.wav")
    s = start_server(
        root / "data",
        api_keys=KEY,
        feed_title="兰州晚报 · 朗读",
        feed_author="兰州晚报",
        feed_image_url="https://news.example/cover.png",
        feed_cover_file=str(root / "cover.png"),
        feed_intro=str(root / "intro.wav"),
        feed_categories="News,Daily News",
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def published(server) -> list[dict[str, Any]]:
    bodies = [
        {
            "title": "第一篇：城市新闻",
            "text": FIRST,
            "category": "city",
            "published_at": "2024-01-02T08:00:00+08:00",
        },
        {
            "title": TRICKY,
            "published_at": "2024-01-03T09:30:00+08:00",
            "text": "这是一篇标题很特别的文章。它的标题里有各种符号。读者应该能正常收听。",
        },
        {
            "title": "第三篇：天气",
            "text": "明天多云转晴，最低气温-5℃。请注意保暖。",
            "category": "city",
            "published_at": "2024-01-04T07:00:00+08:00",
        },
    ]
    out = []
    with server.client(headers=AUTH) as c:
        for body in bodies:
            r = c.post("/v1/articles", json={**body, "publish": True})
            assert r.status_code == 201, r.text
            out.append(r.json())
        for a in out:
            wait_episode(c, a["id"])
    return out


def test_publishing_needs_the_write_key(server):
    r = httpx.post(f"{server.url}/v1/articles", json={"text": "未授权的发布。", "publish": True})
    assert r.status_code == 401
    with server.client(headers=AUTH) as c:
        article = c.post("/v1/articles", json={"text": "先创建，后发布。"}).json()
    r = httpx.post(f"{server.url}/v1/articles/{article['id']}/publish", json={})
    assert r.status_code == 401
    r = httpx.post(
        f"{server.url}/v1/articles/{article['id']}/publish", json={"category": "a/b"}, headers=AUTH
    )
    assert r.status_code == 422


def test_feed_parses_cleanly_newest_first(server, published):
    r = httpx.get(f"{server.url}/feed.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/rss+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "兰州晚报 · 朗读"
    assert feed.feed.language == "zh-cn"
    assert feed.feed.author_detail.name == "兰州晚报" or feed.feed.author == "兰州晚报"
    assert feed.feed.image.href == "https://news.example/cover.png"
    assert {t.term for t in feed.feed.tags} >= {"News", "Daily News"}
    assert feed.feed.itunes_explicit in (False, None)
    assert "podcast:guid" in r.text or "podcast_guid" in feed.feed
    titles = [e.title for e in feed.entries]
    assert titles[:3] == ["第三篇：天气", TRICKY, "第一篇：城市新闻"], "newest first, intact"
    dates = [parsedate_to_datetime(e.published) for e in feed.entries]
    assert dates == sorted(dates, reverse=True)
    assert all(e.published.endswith("+0800") for e in feed.entries), "Asia/Shanghai"
    assert feed.entries[2].summary == FIRST
    assert len({e.id for e in feed.entries}) == len(feed.entries)


def test_enclosures_durations_and_transcripts_match_what_is_served(server, published):
    feed = feedparser.parse(httpx.get(f"{server.url}/feed.xml").content)
    for entry in feed.entries:
        enclosure = entry.enclosures[0]
        assert enclosure.type == "audio/mpeg"
        audio = httpx.get(enclosure.href)
        assert audio.status_code == 200
        assert int(enclosure.length) == len(audio.content), "exact byte length"
        id3_size = _id3_size(audio.content)
        samples, rate = decoded_samples(audio.content[id3_size:])
        h, m, s = (int(x) for x in entry.itunes_duration.split(":"))
        assert abs(h * 3600 + m * 60 + s - samples / rate) <= 1
        transcript = next(
            link
            for link in _transcripts(httpx.get(f"{server.url}/feed.xml").text)
            if entry.id in link
        )
        vtt = httpx.get(transcript)
        assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")


def test_episode_is_loudness_normalized_and_tagged(server, published):
    with server.client() as c:
        audio = c.get(f"/v1/articles/{published[0]['id']}/episode.mp3").content
    tags = ID3(io.BytesIO(audio))
    assert str(tags["TIT2"]) == "第一篇：城市新闻"
    assert str(tags["TPE1"]) == "兰州晚报" and str(tags["TALB"]) == "兰州晚报 · 朗读"
    assert str(tags["TDRC"]) == "2024-01-02"
    assert tags.getall("APIC")[0].data.startswith(b"\x89PNG")
    pcm = decoded_pcm(audio[_id3_size(audio) :])
    lufs, peak = ebur128(audio)  # an independent meter, not the one that set the level
    assert abs(lufs - (-16.0)) <= 1.0 and peak < 0.0  # and never clipped
    # The 1 s intro sting comes first: a steady tone, before any speech.
    first = array.array("h")
    first.frombytes(pcm[2 * 2205 : 2 * 17640])
    assert max(abs(x) for x in first) > 3000


def test_category_feed_and_conditional_get(server, published):
    city = feedparser.parse(httpx.get(f"{server.url}/feeds/city.xml").content)
    assert not city.bozo
    assert [e.title for e in city.entries] == ["第三篇：天气", "第一篇：城市新闻"]
    assert httpx.get(f"{server.url}/feeds/nothing-here.xml").status_code == 200
    assert httpx.get(f"{server.url}/feeds/bad%20name.xml").status_code in (404, 422)
    first = httpx.get(f"{server.url}/feed.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert httpx.get(f"{server.url}/feed.xml", headers={"If-None-Match": etag}).status_code == 304
    assert (
        httpx.get(f"{server.url}/feed.xml", headers={"If-Modified-Since": modified}).status_code
        == 304
    )
    assert (
        httpx.get(f"{server.url}/feed.xml", headers={"If-None-Match": '"other"'}).status_code == 200
    )


def test_unpublished_or_missing_episodes_are_404(server):
    assert httpx.get(f"{server.url}/v1/articles/{'0' * 32}/episode.mp3").status_code == 404
    assert httpx.get(f"{server.url}/v1/articles/zz/episode.mp3").status_code == 404


def _id3_size(data: bytes) -> int:
    if data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = size << 7 | b
    return 10 + size


def _transcripts(xml: str) -> list[str]:
    import re

    return re.findall(r'<podcast:transcript url="([^"]+)"', xml)
