"""The podcast feed as a directory (Apple Podcasts, Podcast Index) checks it: every tag they
require, artwork they accept, categories they list. In process, with a fake engine."""

from __future__ import annotations

import asyncio
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import feedparser
import pytest

from service.cli import main
from service.config import itunes_categories
from service.core.artwork import MAX_PX, MIN_PX, generated, measure
from service.errors import OptionError
from service.services import channel_artwork
from tests.fakes import Fakes, running_app, settings

pytestmark = pytest.mark.anyio

ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
PODCAST = "{https://podcastindex.org/namespace/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"

# What Apple Podcasts requires of a show (and Podcast Index of a Podcasting 2.0 feed), as far
# as a feed can be checked without the directory: tag -> what its value must satisfy.
CHANNEL_REQUIRED = (
    "title",
    "link",
    "description",
    "language",
    f"{ITUNES}image",
    f"{ITUNES}category",
    f"{ITUNES}explicit",
    f"{ITUNES}author",
    f"{ITUNES}owner",
    f"{ITUNES}type",
    f"{ATOM}link",
    f"{PODCAST}guid",
    f"{PODCAST}locked",
)
ITEM_REQUIRED = (
    "title",
    "description",
    "enclosure",
    "guid",
    "pubDate",
    f"{ITUNES}duration",
    f"{ITUNES}explicit",
)


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _jpeg_header(width: int, height: int) -> bytes:
    """The start of a JPEG: SOI, an APP0 segment, then a baseline frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


async def test_the_feed_has_every_tag_a_directory_requires(tmp_path: Path) -> None:
    async with running_app(
        tmp_path,
        Fakes(),
        feed_owner_email="podcast@news.example",
        feed_owner_name="兰州晚报新媒体部",
        feed_categories="News/Daily News,Technology",
    ) as (client, _):
        r = await client.post(
            "/v1/articles",
            json={"title": "头条", "text": "今天上午，兰州市召开新闻发布会。", "publish": True},
        )
        assert r.status_code == 201, r.text
        episode = f"/v1/articles/{r.json()['id']}/episode.mp3"
        for _ in range(300):
            if (await client.head(episode)).status_code == 200:
                break
            await asyncio.sleep(0.05)
        feed = await client.get("/feed.xml")
        channel = ET.fromstring(feed.content).find("channel")
        assert channel is not None
        missing = [tag for tag in CHANNEL_REQUIRED if channel.find(tag) is None]
        assert not missing, f"channel lacks {missing}"
        items = channel.findall("item")
        assert items, "the published article is an episode"
        for item in items:
            assert not [tag for tag in ITEM_REQUIRED if item.find(tag) is None]
            enclosure = item.find("enclosure")
            assert enclosure is not None and int(enclosure.get("length", "0")) > 0
            assert enclosure.get("type") == "audio/mpeg"
        assert channel.findtext(f"{ITUNES}explicit") in ("true", "false")
        assert channel.findtext(f"{ITUNES}type") == "episodic"
        owner = channel.find(f"{ITUNES}owner")
        assert owner is not None and owner.findtext(f"{ITUNES}email") == "podcast@news.example"
        assert owner.findtext(f"{ITUNES}name") == "兰州晚报新媒体部"
        locked = channel.find(f"{PODCAST}locked")
        assert locked is not None and locked.text == "no"
        assert locked.get("owner") == "podcast@news.example"
        # Categories nest as Apple lists them.
        tops = channel.findall(f"{ITUNES}category")
        assert [c.get("text") for c in tops] == ["News", "Technology"]
        assert [c.get("text") for c in tops[0].findall(f"{ITUNES}category")] == ["Daily News"]

        # The artwork: a URL ending .png that answers a square PNG of 1400-3000 px.
        image = channel.find(f"{ITUNES}image")
        assert image is not None
        href = image.get("href", "")
        assert href.endswith("/feed/artwork.png"), href
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo, parsed.bozo_exception
        assert parsed.feed.image.href == href, "feedparser reads the artwork"
        art = await client.get(href)
        assert art.status_code == 200 and art.headers["content-type"] == "image/png"
        kind, width, height = measure(art.content)
        assert kind == "image/png" and width == height and MIN_PX <= width <= MAX_PX
        again = await client.get(href, headers={"If-None-Match": art.headers["etag"]})
        assert again.status_code == 304
        assert (await client.get("/feed/artwork.jpg")).status_code == 404
        assert (await client.get("/feed/artwork.gif")).status_code in (404, 422)


async def test_the_operators_artwork_replaces_langdus(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    cover.write_bytes(_png(1500, 1500))
    async with running_app(tmp_path / "data", Fakes(), feed_image_file=str(cover)) as (client, _):
        feed = feedparser.parse((await client.get("/feed.xml")).content)
        assert feed.feed.image.href.endswith("/feed/artwork.png")
        art = await client.get(feed.feed.image.href)
    assert art.content == cover.read_bytes()
    # A URL elsewhere wins over both.
    async with running_app(
        tmp_path / "data2", Fakes(), feed_image_url="https://cdn.news.example/show.jpg"
    ) as (client, _):
        feed = feedparser.parse((await client.get("/feed.xml")).content)
    assert feed.feed.image.href == "https://cdn.news.example/show.jpg"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_png(1400, 1000), "square"),
        (_png(1000, 1000), "1400-3000 px"),
        (_jpeg_header(3200, 3200), "1400-3000 px"),
        (b"GIF89a" + b"\x00" * 20, "not a PNG or JPEG"),
    ],
)
def test_artwork_a_directory_would_refuse_is_refused_at_start(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    cover = tmp_path / "cover"
    cover.write_bytes(data)
    with pytest.raises(OptionError, match=reason):
        channel_artwork(settings(tmp_path, feed_image_file=str(cover)))


def test_a_jpeg_is_measured_by_its_frame_header(tmp_path: Path) -> None:
    assert measure(_jpeg_header(2000, 2000)) == ("image/jpeg", 2000, 2000)
    cover = tmp_path / "cover.jpg"
    cover.write_bytes(_jpeg_header(2000, 2000))
    art = channel_artwork(settings(tmp_path, feed_image_file=str(cover)))
    assert (art.media_type, art.extension) == ("image/jpeg", "jpg")


def test_langdus_artwork_is_a_valid_square_png() -> None:
    art = generated()
    assert measure(art.body) == ("image/png", 1400, 1400)
    # Decodes: every row is filter byte + RGB, and both colours are there.
    data = art.body[8:]
    idat = b""
    while data:
        (length,) = struct.unpack(">I", data[:4])
        kind, body, data = data[4:8], data[8 : 8 + length], data[12 + length :]
        if kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    assert len(raw) == 1400 * (1 + 1400 * 3)
    middle = raw[700 * 4201 : 701 * 4201]
    assert b"\xff\xff\xff" in middle and b"\xb3\x26\x1e" in middle


def test_categories_are_apples() -> None:
    assert itunes_categories(["News", "Daily News", "News/Tech News"]) == (
        ("News", ("Daily News", "Tech News")),
    )
    with pytest.raises(ValueError, match="not an Apple Podcasts category"):
        itunes_categories(["Newz"])
    with pytest.raises(ValueError, match="not an Apple Podcasts category"):
        itunes_categories(["Technology/Daily News"])


def test_a_bad_feed_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LANGDU_FEED_CATEGORIES", "Newz")
    assert main(["voices"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LANGDU_FEED_CATEGORIES" in err and "Newz" in err
    monkeypatch.setenv("LANGDU_FEED_CATEGORIES", "News")
    monkeypatch.setenv("LANGDU_FEED_OWNER_EMAIL", "not an address")
    assert main(["voices"]) == 2
    assert "LANGDU_FEED_OWNER_EMAIL" in capsys.readouterr().err
