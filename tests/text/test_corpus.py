"""langdu on real public Chinese news pages: headline, body text, charsets, nothing twice.

The figures each test asserts are floors we reached and keep; `python
tests/bench/bench_extract.py` prints them next to trafilatura, gne and readability-lxml.
"""

from __future__ import annotations

from statistics import mean

import pytest

from service.text.extract import decode, extract_html
from tests.text.corpus import Page, char_f1, pages, read_twice, same_headline

PAGES = list(pages())


def test_the_corpus_is_real_and_recorded() -> None:
    assert len(PAGES) >= 30
    sites = {p.slug.split("-")[0] for p in PAGES}
    assert len(sites) >= 15
    assert sum(p.encoding != "utf-8" for p in PAGES) >= 7
    # ... and pages whose bytes contradict their declaration (UTF-8 declared as GB2312).
    assert sum(p.encoding == "utf-8" and b"gb2312" in p.raw[:3000].lower() for p in PAGES) >= 1
    for p in PAGES:
        assert p.source["repository"] and len(p.source["commit"]) == 40 and p.source["path"]
        assert p.title and p.body


def _read(page: Page) -> tuple[str | None, list[str]]:
    article = extract_html(decode(page.raw))
    return article.title, [x.text for x in article.paragraphs]


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[str | None, list[str]]]:
    return {p.slug: _read(p) for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=[p.slug for p in PAGES])
def test_each_page_is_read_well(
    page: Page, results: dict[str, tuple[str | None, list[str]]]
) -> None:
    _, lines = results[page.slug]
    f1 = char_f1("\n".join(lines), "\n".join(page.body))
    assert f1 >= 0.85, f"{page.slug}: body F1 {f1:.3f}"
    assert read_twice(lines, page.body) == [], page.slug


def test_corpus_means(results: dict[str, tuple[str | None, list[str]]]) -> None:
    f1s = [char_f1("\n".join(results[p.slug][1]), "\n".join(p.body)) for p in PAGES]
    headlines = [same_headline(results[p.slug][0], p.title) for p in PAGES]
    assert mean(f1s) >= 0.975, f"mean body F1 {mean(f1s):.4f}"
    assert sum(headlines) / len(PAGES) >= 0.9, [
        (p.slug, results[p.slug][0]) for p, ok in zip(PAGES, headlines, strict=True) if not ok
    ]


def test_no_page_is_refused_for_its_charset() -> None:
    for p in PAGES:
        text = decode(p.raw)
        assert p.title.replace(" ", "")[:4] in text.replace(" ", ""), p.slug
