"""Articles by URL: `POST /v1/articles {url}` and `langdu synth https://…` fetch the page and
read it as if its HTML had been posted, under the fetching rules (tests/runtime/test_fetch.py):
without LANGDU_FETCH_ALLOW a page server on loopback is refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import Fakes, running_app, wait_ready
from tests.pagesite import Answer, Site, serve_site

pytestmark = pytest.mark.anyio

CANONICAL = "https://m.lzbs.com.cn/2019/0809/anning.html"
ALLOW = "127.0.0.1"


@pytest.fixture
def site(sample_html: Path) -> Iterator[Site]:
    html = sample_html.read_text(encoding="utf-8").replace(
        "</head>", f'<link rel="canonical" href="{CANONICAL}">\n</head>', 1
    )
    with serve_site() as s:
        # GB18030 bytes whose HTTP charset tells the truth and whose <meta> does not.
        s.answers["/anning.html"] = Answer(
            headers={"Content-Type": "text/html; charset=GB18030"}, body=html.encode("gb18030")
        )
        s.answers["/moved"] = Answer(301, {"Location": "/anning.html"}, b"")
        s.answers["/inside"] = Answer(302, {"Location": "http://169.254.169.254/"}, b"")
        s.answers["/logo.png"] = Answer(headers={"Content-Type": "image/png"}, body=b"\x89PNG")
        yield s


async def test_a_url_alone_is_fetched_and_read_as_its_page(tmp_path: Path, site: Site) -> None:
    async with running_app(tmp_path, Fakes(), fetch_allow=ALLOW) as (client, _):
        r = await client.post("/v1/articles", json={"url": f"{site.url}/moved"})
        assert r.status_code == 201, r.text
        article = r.json()
        assert article["url"] == CANONICAL
        assert article["title"] == "强化党建引领 推动争先进位 安宁区全面加强城市基层党建工作"
        info = await wait_ready(client, article["id"])
        assert info["status"] == "ready"
        timings = (await client.get(f"/v1/articles/{article['id']}/timings.json")).json()
        text = "".join(s["text"] for s in timings["sentences"])
        assert "耄耋老者身轻如燕" in text and "首页" not in text  # the menu is not read
        again = await client.post("/v1/articles", json={"url": f"{site.url}/anning.html"})
        assert again.status_code == 200 and again.json()["id"] == article["id"]


async def test_refusals_and_failures_are_problems(tmp_path: Path, site: Site) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        refused = await client.post("/v1/articles", json={"url": f"{site.url}/anning.html"})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "127.0.0.1 is a loopback address" in refused.json()["detail"]
    assert site.seen == [], "without LANGDU_FETCH_ALLOW loopback is never contacted"
    async with running_app(tmp_path / "b", Fakes(), fetch_allow=ALLOW) as (client, _):
        cases = {
            "/inside": 422,  # a redirect to the cloud metadata address
            "/logo.png": 422,  # not HTML
            "/missing": 502,  # the site answers 404
        }
        for path, status in cases.items():
            r = await client.post("/v1/articles", json={"url": site.url + path})
            assert r.status_code == status, (path, r.text)
            assert r.json()["detail"]
        r = await client.post("/v1/articles", json={"url": "http://127.0.0.1:1/"})
        assert r.status_code == 502, r.text  # nothing listens there
        r = await client.post("/v1/articles", json={"url": "file:///etc/passwd"})
        assert r.status_code == 422
        r = await client.post("/v1/articles", json={})
        assert r.status_code == 422 and "url" in r.json()["detail"]
        # A URL beside the text is the page's name only: nothing is fetched.
        seen = len(site.seen)
        r = await client.post(
            "/v1/articles", json={"text": "今天天气很好。", "url": f"{site.url}/anning.html"}
        )
        assert r.status_code == 201 and len(site.seen) == seen


def _langdu(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        timeout=600,
        env={**os.environ, "LANGDU_DEFAULT_VOICE": "cmn-offline", **env},
    )


def test_synth_reads_a_url(tmp_path: Path, site: Site) -> None:
    out = tmp_path / "a.mp3"
    proc = _langdu("synth", f"{site.url}/anning.html", "-o", str(out), "-q")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode().count("\n") == 1 and b"loopback" in proc.stderr
    assert not out.exists()
    proc = _langdu(
        "synth",
        f"{site.url}/anning.html",
        "-o",
        str(out),
        "-q",
        "--vtt",
        str(tmp_path / "a.vtt"),
        LANGDU_FETCH_ALLOW="127.0.0.1",
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000
    assert "耄耋老者身轻如燕" in (tmp_path / "a.vtt").read_text(encoding="utf-8")
    proc = _langdu("synth", f"{site.url}/missing", "-o", str(out), LANGDU_FETCH_ALLOW="127.0.0.1")
    assert proc.returncode == 1 and b"404" in proc.stderr


async def test_fetching_can_be_turned_off(tmp_path: Path, site: Site) -> None:
    async with running_app(tmp_path, Fakes(), fetch_allow=ALLOW, fetch_pages=False) as (
        client,
        _,
    ):
        r = await client.post("/v1/articles", json={"url": f"{site.url}/anning.html"})
    assert r.status_code == 422 and "LANGDU_FETCH_PAGES" in r.json()["detail"]
    assert site.seen == []
