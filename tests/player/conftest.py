"""Fixtures of the browser tests: a real `langdu serve`, Chromium, and a page of the demo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("player") / "data", preload_jieba="true")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from tests.player.chromium import CHROMIUM, FLAGS, playwright

    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server.url + "/")
    yield pg
    context.close()
    assert not errors, errors
