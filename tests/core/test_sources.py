"""Sources: a newsroom's RSS/Atom feed on a loopback server, followed by the service in
process (fake engine). Items are read and published without any other request, an unchanged
feed costs one 304 per poll, an item comes once across polls, removals and restarts, and a
failing source backs off, shows its error and recovers."""

from __future__ import annotations

import asyncio
import html
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from tests.fakes import Fakes, running_app
from tests.pagesite import Answer, Site, feed_answer, rss, serve_site

pytestmark = pytest.mark.anyio

KEY = "newsroom"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _app(data_dir: Path) -> Any:
    """The service in process, polling every 0.3 s, allowed to fetch from loopback."""
    return running_app(data_dir, Fakes(), fetch_allow="127.0.0.1", source_poll_s=0.3, api_keys=KEY)


LONG = "".join(
    f"<p>第{n}段：兰州市今天召开新闻发布会，介绍了全年城市建设和民生工作的安排。</p>"
    for n in range(8)
)


def _item(guid: str, title: str, *, content: str | None = None, link: str = "") -> str:
    body = f"<content:encoded>{html.escape(content)}</content:encoded>" if content else ""
    return (
        f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
        f"<link>{link}</link><pubDate>Sat, 05 Dec 2026 08:00:00 +0800</pubDate>"
        f"<description>{html.escape(title)}</description>{body}</item>"
    )


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        s.answers["/page-b.html"] = Answer(
            headers={"Content-Type": "text/html; charset=utf-8"},
            body=(
                "<html><head><title>城市交通 - 兰州晚报</title></head><body>"
                "<nav>首页 新闻</nav><article><h1>城市交通</h1>"
                "<p>兰州市新开通三条公交线路，方便市民出行。</p>"
                "<p>新线路覆盖安宁区和七里河区的主要居民区。</p></article></body></html>"
            ).encode(),
        )
        yield s


async def _until(check: Any, timeout: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def _source(client: httpx.AsyncClient, source_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/sources/{source_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def test_new_items_are_read_and_published_without_another_request(
    tmp_path: Path, site: Site
) -> None:
    site.answers["/rss.xml"] = feed_answer(
        rss(
            _item("b", "城市交通", link=f"{site.url}/page-b.html"),  # a teaser: read its page
            _item("a", "发布会", content=LONG, link="https://news.example/a.html"),
        ),
        '"v1"',
    )
    async with _app(tmp_path) as (client, _):
        r = await client.post(
            "/v1/sources", json={"feed_url": f"{site.url}/rss.xml", "publish": True}, headers=AUTH
        )
        assert r.status_code == 201, r.text
        source = r.json()

        async def two_episodes() -> Any:
            feed = feedparser.parse((await client.get("/feed.xml")).content)
            return feed if len(feed.entries) == 2 else None

        feed = await _until(two_episodes, 60)
        titles = {e.title for e in feed.entries}
        assert titles == {"发布会", "城市交通"}, titles
        links = {e.link for e in feed.entries}
        assert {"https://news.example/a.html", f"{site.url}/page-b.html"} == links
        listed = (await client.get("/v1/sources")).json()["sources"]
        assert [s["id"] for s in listed] == [source["id"]]
        assert listed[0]["items"] == 2 and listed[0]["last_error"] is None
        assert listed[0]["last_poll_at"] is not None

        # Unchanged: each later poll is one conditional GET answered 304.
        polls = len([s for p, s in site.statuses if p == "/rss.xml"])
        await asyncio.sleep(1.5)
        later = [s for p, s in site.statuses if p == "/rss.xml"][polls:]
        assert later and set(later) == {304}, later
        assert 2 <= len(later) <= 7, f"about one poll per 0.3 s period: {len(later)}"
        assert [p for p, _ in site.statuses].count("/page-b.html") == 1


async def test_an_item_is_read_once_across_removals_edits_and_restarts(
    tmp_path: Path, site: Site
) -> None:
    a = _item("a", "发布会", content=LONG, link="https://news.example/a.html")
    b = _item("b", "城市建设", content=LONG.replace("兰州市", "安宁区"), link="")
    site.answers["/rss.xml"] = feed_answer(rss(b, a), '"v1"')
    async with _app(tmp_path) as (client, _):
        source = (
            await client.post("/v1/sources", json={"feed_url": f"{site.url}/rss.xml"}, headers=AUTH)
        ).json()

        async def taken(n: int) -> Any:
            return (await _source(client, source["id"]))["items"] == n

        await _until(lambda: taken(2))
        assert _articles(tmp_path) == 2
        site.answers["/rss.xml"] = feed_answer(rss(a), '"v2"')  # b removed ...
        await asyncio.sleep(0.8)
        edited = b.replace("安宁区", "七里河区")  # ... and back, edited: same GUID
        site.answers["/rss.xml"] = feed_answer(rss(edited, a), '"v3"')
        await asyncio.sleep(0.8)
        assert (await _source(client, source["id"]))["items"] == 2
        assert _articles(tmp_path) == 2, "the edited item was not read again"
    # A restart (same data dir) takes nothing again either.
    site.answers["/rss.xml"] = feed_answer(rss(edited, a), '"v4"')
    async with _app(tmp_path) as (client, _):
        await asyncio.sleep(1.0)
        got = await _source(client, source["id"])
        assert got["items"] == 2 and got["last_error"] is None
    assert _articles(tmp_path) == 2
    fed = [p for p, s in site.statuses if p == "/rss.xml" and s == 200]
    assert len(fed) >= 4, "every version of the feed was read"


def _articles(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "langdu.db") as db:
        return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])


async def test_a_failing_source_backs_off_shows_its_error_and_recovers(
    tmp_path: Path, site: Site
) -> None:
    site.answers["/rss.xml"] = Answer(500, {"Content-Type": "text/plain"}, b"down")
    async with _app(tmp_path) as (client, _):
        source = (
            await client.post("/v1/sources", json={"feed_url": f"{site.url}/rss.xml"}, headers=AUTH)
        ).json()

        async def failed_twice() -> Any:
            got = await _source(client, source["id"])
            return got if got["failures"] >= 2 else None

        got = await _until(failed_twice)
        assert "answered 500" in got["last_error"] and got["items"] == 0
        # Backing off: two failures wait 4 periods, not one.
        hits = [p for p, _ in site.statuses].count("/rss.xml")
        await asyncio.sleep(0.6)
        assert [p for p, _ in site.statuses].count("/rss.xml") <= hits + 1
        site.answers["/rss.xml"] = feed_answer(rss(_item("a", "发布会", content=LONG)), '"ok"')

        async def recovered() -> Any:
            got = await _source(client, source["id"])
            return got if got["failures"] == 0 and got["items"] == 1 else None

        got = await _until(recovered)
        assert got["last_error"] is None


async def test_sources_are_written_with_the_key_and_checked(tmp_path: Path, site: Site) -> None:
    site.answers["/rss.xml"] = feed_answer(rss(), '"e"')
    async with _app(tmp_path) as (client, _):
        body = {"feed_url": f"{site.url}/rss.xml"}
        assert (await client.post("/v1/sources", json=body)).status_code == 401
        assert (await client.get("/v1/sources")).json()["sources"] == []
        first = await client.post("/v1/sources", json=body, headers=AUTH)
        again = await client.post("/v1/sources", json=body, headers=AUTH)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"], "one source per feed"
        for bad in (
            {"feed_url": "ftp://news.example/rss"},
            {"feed_url": "http://169.254.169.254/latest/meta-data/"},  # refused at once
            {"feed_url": "http://0x0a.1:8080/rss.xml"},  # 10.0.0.1: private
            {"feed_url": f"{site.url}/x", "voice": "no-such-voice"},
            {"feed_url": f"{site.url}/x", "category": "a/b"},
            {},
        ):
            r = await client.post("/v1/sources", json=bad, headers=AUTH)
            assert r.status_code == 422, (bad, r.text)
        sid = first.json()["id"]
        assert (await client.delete(f"/v1/sources/{sid}")).status_code == 401
        assert (await client.delete(f"/v1/sources/{sid}", headers=AUTH)).status_code == 204
        assert (await client.delete(f"/v1/sources/{sid}", headers=AUTH)).status_code == 404
        assert (await client.get(f"/v1/sources/{sid}")).status_code == 404
        assert (await client.get("/v1/sources/nope")).status_code == 404
        # Two routes of one resource: 405 names both methods.
        other = await client.request("PUT", f"/v1/sources/{sid}")
        assert other.status_code == 405 and other.headers["allow"] == "DELETE, GET"
        # Not a feed: shown as the source's error.
        site.answers["/page.html"] = Answer()
        r = await client.post(
            "/v1/sources", json={"feed_url": f"{site.url}/page.html"}, headers=AUTH
        )
        got = await _until(lambda: _with_error(client, r.json()["id"]))
        assert "not a feed" in got["last_error"]


async def _with_error(client: httpx.AsyncClient, source_id: str) -> Any:
    got = await _source(client, source_id)
    return got if got["last_error"] else None


async def test_two_processes_of_one_deployment_poll_once_per_period(
    tmp_path: Path, site: Site
) -> None:
    site.answers["/rss.xml"] = feed_answer(rss(), '"e"')
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    async with (
        running_app(
            tmp_path / "a", Fakes(), fetch_allow="127.0.0.1", source_poll_s=0.5, database_url=shared
        ) as (one, _),
        running_app(
            tmp_path / "b", Fakes(), fetch_allow="127.0.0.1", source_poll_s=0.5, database_url=shared
        ) as (two, _),
    ):
        r = await one.post("/v1/sources", json={"feed_url": f"{site.url}/rss.xml"})
        assert r.status_code == 201
        await asyncio.sleep(3.2)
        assert (await two.get("/v1/sources")).json()["sources"][0]["id"] == r.json()["id"]
    polls = [p for p, _ in site.statuses].count("/rss.xml")
    # 3.2 s at one poll per 0.5 s: about 7 for the deployment (each alone would make as many).
    assert 4 <= polls <= 8, polls


async def test_a_short_item_with_a_guid_for_a_link_is_read_from_thefeed_answer(
    tmp_path: Path, site: Site
) -> None:
    # RSS takes a GUID for a permalink unless told otherwise: "city-7" is no URL to fetch.
    item = (
        "<item><title>公交</title><guid>city-7</guid>"
        "<description>兰州市新开通三条公交线路，方便市民出行。</description></item>"
    )
    site.answers["/rss.xml"] = feed_answer(rss(item), '"s"')
    async with _app(tmp_path) as (client, _):
        r = await client.post(
            "/v1/sources", json={"feed_url": f"{site.url}/rss.xml", "publish": True}, headers=AUTH
        )

        async def listed() -> Any:
            feed = feedparser.parse((await client.get("/feed.xml")).content)
            return feed if feed.entries else None

        feed = await _until(listed)
        assert feed.entries[0].title == "公交"
        got = await _source(client, r.json()["id"])
        assert got["items"] == 1 and got["last_error"] is None
