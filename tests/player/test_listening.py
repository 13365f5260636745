"""Listening analytics end to end in Chromium against a real langdu serve: play the demo
article for a few seconds, leave the page, and the events the player beaconed show in the
article's figures and on the dashboard (screenshot kept); an opted-out page sends nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.player.chromium import ARTIFACTS, current, serve_page, start_reading, wait_for
from tests.server import Server

pytestmark = pytest.mark.server


def _stats(server: Server, article_id: str, until_plays: int, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        stats = httpx.get(f"{server.url}/v1/articles/{article_id}/stats", timeout=10).json()
        if stats["plays"] >= until_plays or time.monotonic() > deadline:
            return stats
        time.sleep(0.3)


def test_a_listen_then_leaving_the_page_shows_in_the_stats_and_dashboard(page, server, browser):
    start_reading(page)
    wait_for(page, "Number(document.querySelector('.langdu').dataset.sentence) >= 2", 30_000)
    article_id = page.evaluate("window.langdu.article.id")
    heard = current(page)
    assert page.evaluate("window.langdu.analytics") is True
    page.goto("about:blank")  # pagehide: the player beacons what it has

    stats = _stats(server, article_id, 1)
    assert stats["plays"] == 1 and stats["sessions"] == 1, stats
    reach = stats["sentence_reach"]
    assert len(reach) > heard + 3
    assert reach[:heard] == [1.0] * heard  # the first sentences were heard
    assert reach[-1] == 0.0  # the last was not
    assert stats["listened_ms"] > 1000
    assert stats["voices"] and stats["completion"]["100"] == 0

    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    dash = context.new_page()
    try:
        dash.goto(f"{server.url}/dashboard/articles/{article_id}")
        shaded = dash.eval_on_selector_all(
            ".article-text .s",
            "spans => spans.map(s =>"
            " [Number(s.dataset.reach), getComputedStyle(s).backgroundColor])",
        )
        assert shaded[0][0] == 1.0 and shaded[-1][0] == 0.0
        assert shaded[0][1] != shaded[-1][1], "heard sentences are shaded darker"
        assert dash.get_by_role("table", name="每句的收听比例").is_visible()
        assert dash.get_by_role("img").count() >= 2  # the charts, each labelled
        ARTIFACTS.mkdir(exist_ok=True)
        dash.screenshot(path=str(ARTIFACTS / "dashboard-article.png"), full_page=True)
        dash.goto(f"{server.url}/dashboard")
        assert dash.get_by_role("link", name=stats["title"]).is_visible()
        dash.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)
    finally:
        context.close()


def test_a_page_that_opts_out_sends_nothing(browser, server):
    html = (
        '<!doctype html><meta charset="utf-8"><h1>不统计的页面</h1>'
        '<div id="c"><p>这个页面关闭了收听统计。第二句话在这里。</p><p>第三句话也在这里。</p></div>'
        f'<script src="{server.url}/player/player.js" data-langdu-article="#c" '
        'data-langdu-analytics="off" defer></script>'
    )
    news = serve_page(html.encode())
    context = browser.new_context()
    pg = context.new_page()
    try:
        pg.goto(f"http://127.0.0.1:{news.server_address[1]}/")
        pg.get_by_role("button", name="智能朗读：朗读全文").click()
        pg.wait_for_function("window.langdu.audio.currentTime > 0.5", timeout=30_000)
        article_id = pg.evaluate("window.langdu.article.id")
        assert pg.evaluate("window.langdu.analytics") is False
        pg.goto("about:blank")
    finally:
        news.shutdown()
        context.close()
    time.sleep(1.5)
    stats = _stats(server, article_id, 1, timeout=0)
    assert stats["plays"] == stats["sessions"] == 0
