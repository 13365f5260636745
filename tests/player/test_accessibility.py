"""The player and the demo page as a screen-reader, keyboard-only or dark-mode reader meets
them, in Chromium: axe-core (from npm, pinned, injected from the local copy), focus that
never falls to the top of the page, a floating bar that never hides what has focus, and
the demo's paste box."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.player.chromium import ARTIFACTS, serve_page, wait_for

pytestmark = pytest.mark.server

AXE_VERSION = "4.10.3"  # scripts/dev.py NPM_TOOLS fetches it, checked against its integrity
AXE = Path(
    os.environ.get("LANGDU_AXE_JS")
    or Path(sys.prefix) / "npm" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
)
if not AXE.exists():
    message = f"axe-core {AXE_VERSION} is not at {AXE} (python3 scripts/test.py fetches it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

START = "智能朗读：朗读全文"
ARTICLE = (
    "今天上午，兰州市召开新闻发布会。会议介绍了全年的工作安排。\n"
    "预计全年投资增长百分之六点五。市民可以拨打热线电话咨询。"
)


def _context(browser: Any, scheme: str = "light") -> Any:
    return browser.new_context(
        viewport={"width": 1024, "height": 800}, locale="zh-CN", color_scheme=scheme
    )


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of WCAG 2.2 A/AA and best practice."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa",
            "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}, resultTypes: ["violations"]})"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _focused(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate("""() => { const e = document.activeElement;
        const box = e.getBoundingClientRect();
        return {tag: e.tagName, label: e.getAttribute("aria-label") || e.textContent.trim(),
                visible: box.width > 0 && box.height > 0 && !e.closest("[hidden]"),
                inPlayer: !!e.closest(".langdu")}; }""")
    )


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious_idle_or_reading(browser, server, scheme):
    context = _context(browser, scheme)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.locator(".langdu-voice select option").first.wait_for(state="attached")
        assert _axe(page) == [], f"{scheme}, idle"
        page.get_by_role("button", name=START).click()
        wait_for(page, "window.langdu.audio.currentTime > 0 && window.langdu.sentence >= 0")
        assert _axe(page) == [], f"{scheme}, reading"
        # The player's text against the player's own background, computed by the browser.
        colours = page.evaluate("""() => { const s = getComputedStyle(
            document.querySelector('.langdu-status'));
            const r = getComputedStyle(document.querySelector('.langdu'));
            return [s.color, r.backgroundColor]; }""")
        assert _contrast(*colours) >= 4.5, colours
        _shot(page, f"player-{scheme}-reading")
    finally:
        context.close()


@pytest.mark.parametrize("placement", ["inline", "floating"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_on_a_plain_light_page(browser, server, scheme, placement):
    # A news page that styles nothing stays light in both schemes: the player's colours
    # must hold on it either way, in the page's placeholder or as the floating bar.
    mount = "<div data-langdu-player></div>" if placement == "inline" else ""
    html = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>新闻</title>'
        f"<main><h1>城市新闻</h1>{mount}<p>今天上午，兰州市召开新闻发布会。</p></main>"
        f'<script src="{server.url}/player/player.js" data-langdu-article="main" defer>'
        "</script></html>"
    )
    news = serve_page(html.encode())
    context = _context(browser, scheme)
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{news.server_address[1]}/")
        page.get_by_role("button", name=START).wait_for()
        assert _axe(page) == [], f"{scheme}, {placement}, idle"
        page.get_by_role("button", name=START).click()
        wait_for(page, "window.langdu.audio.currentTime > 0")
        assert _axe(page) == [], f"{scheme}, {placement}, reading"
        _shot(page, f"player-{placement}-{scheme}")
    finally:
        news.shutdown()
        context.close()


def test_keyboard_only_reads_pauses_seeks_and_closes_without_losing_focus(browser, server):
    context = _context(browser)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.keyboard.press("Tab")
        assert _focused(page)["label"] == START
        page.keyboard.press("Enter")
        wait_for(page, "window.langdu.audio.currentTime > 0")
        # Focus moved from the button that went away to the control that replaced it.
        focus = _focused(page)
        assert focus["inPlayer"] and focus["visible"] and focus["label"] == "暂停", focus
        _shot(page, "keyboard-1-reading")

        page.keyboard.press("Space")
        wait_for(page, "document.activeElement.getAttribute('aria-label') === '播放'")
        assert page.evaluate("window.langdu.audio.paused")

        # Seek from the keyboard: Tab to the slider, five seconds on.
        wait_for(page, "Number(document.querySelector('.langdu-seek').max) > 5", 60_000)
        for _ in range(6):
            if _focused(page)["label"] == "播放进度":
                break
            page.keyboard.press("Tab")
        assert _focused(page)["label"] == "播放进度"
        before = page.evaluate("window.langdu.audio.currentTime")
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        wait_for(page, f"window.langdu.audio.currentTime >= {before} + 4")
        assert _focused(page)["visible"]
        _shot(page, "keyboard-2-seeked")

        # Close: focus returns to 智能朗读, which reads again.
        for _ in range(6):
            if _focused(page)["label"] == "关闭朗读":
                break
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        focus = _focused(page)
        assert focus["label"] == START and focus["visible"], focus
        assert page.evaluate("window.langdu.audio.paused")
        assert page.locator(".langdu-controls").is_hidden()
        _shot(page, "keyboard-3-closed")
        page.keyboard.press("Enter")
        wait_for(page, "!window.langdu.audio.paused && window.langdu.audio.currentTime > 0")
        assert _focused(page)["label"] == "暂停"
        page.keyboard.press("Escape")  # Escape closes it too
        assert _focused(page)["label"] == START
    finally:
        context.close()


def test_the_floating_bar_never_hides_the_focused_element(browser, server):
    paragraphs = "".join(f"<p>第{n}段：兰州市召开新闻发布会。</p>" for n in range(60))
    html = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>新闻</title>'
        f"<main><h1>城市新闻</h1>{paragraphs}"
        '<p><a id="last" href="#top">返回顶部</a></p></main>'
        f'<script src="{server.url}/player/player.js" data-langdu-article="main" defer>'
        "</script></html>"
    )
    news = serve_page(html.encode())
    context = browser.new_context(viewport={"width": 800, "height": 600}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{news.server_address[1]}/")
        page.locator(".langdu-floating").wait_for()
        # (Not the End key: Chromium animates keyboard scrolling.)
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        # At the very end of the page the last link is above the bar, not under it.
        link = page.locator("#last").bounding_box()
        bar = page.locator(".langdu-floating").bounding_box()
        assert link and bar and link["y"] + link["height"] <= bar["y"], (link, bar)
        # Reached by Tab from the top (Shift+Tab from the player backwards), it is visible.
        page.evaluate("window.scrollTo(0, 0)")
        page.evaluate("document.querySelector('.langdu-start').focus()")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.id") == "last"
        page.wait_for_timeout(300)
        link = page.locator("#last").bounding_box()
        bar = page.locator(".langdu-floating").bounding_box()
        assert link and bar and link["y"] + link["height"] <= bar["y"], (link, bar)
        _shot(page, "player-floating-end-of-page")
    finally:
        news.shutdown()
        context.close()


def test_a_new_user_pastes_an_article_and_hears_it(page, server):
    voices = httpx.get(f"{server.url}/v1/voices").json()["voices"]
    picker = page.locator(".langdu-voice select")
    picker.locator("option").first.wait_for(state="attached")
    assert picker.locator("option").count() == len(voices), "the installed voices"
    picker.select_option("cmn-offline-female")

    page.get_by_label("粘贴文章的正文，或整个网页的 HTML：").fill(ARTICLE)
    page.get_by_role("button", name="朗读粘贴的文章").click()
    wait_for(page, "window.langdu.audio.currentTime > 0")
    article = page.evaluate("window.langdu.article")
    info = httpx.get(f"{server.url}/v1/articles/{article['id']}").json()
    assert info["voice"] == "cmn-offline-female"
    # The pasted text is shown and the sentence being read is highlighted in it.
    wait_for(page, "document.querySelectorAll('#pasted p').length === 2")
    assert "兰州市召开新闻发布会" in page.locator("#pasted").inner_text()
    wait_for(page, "window.langdu.sentence >= 0")
    highlighted = page.evaluate("[...CSS.highlights.get('langdu-sentence')][0].toString()")
    assert highlighted in page.locator("#pasted").inner_text()
    # The controls came along, and focus is on them.
    assert page.locator("#pasted-player .langdu").count() == 1
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "暂停"
    _shot(page, "demo-pasted")
    page.get_by_role("button", name="关闭朗读").click()
    assert page.locator("[data-langdu-player] .langdu").count() == 1, "back in its place"

    # A page's HTML is read as a page: its menu is left out.
    page.get_by_label("粘贴文章的正文，或整个网页的 HTML：").fill(
        "<html><body><nav><a href='/'>首页</a> <a href='/news'>新闻</a></nav>"
        "<article><h1>天气预报</h1><p>明天多云转晴，最低气温零下五摄氏度。</p>"
        "<p>请市民注意保暖，出行注意安全。</p></article></body></html>"
    )
    page.get_by_role("button", name="朗读粘贴的文章").click()
    wait_for(page, "window.langdu.audio.currentTime > 0")
    wait_for(page, "document.querySelector('#pasted').innerText.includes('注意保暖')")
    assert "首页" not in page.locator("#pasted").inner_text()


def test_an_empty_paste_says_so(page):
    page.get_by_role("button", name="朗读粘贴的文章").click()
    # The browser's own required-field check, or ours: nothing is posted either way.
    assert page.evaluate("window.langdu.article") is None


def _contrast(foreground: str, background: str) -> float:
    def luminance(css: str) -> float:
        parts = [float(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        linear = [
            c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
            for c in (p / 255 for p in parts)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    a, b = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)
