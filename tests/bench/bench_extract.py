"""Benchmark extraction on the real-page corpus: langdu next to trafilatura, gne and
readability-lxml, on the same pages, side by side.

    pip install -e '.[bench]' && python tests/bench/bench_extract.py [--pages]

Every extractor gets the same text (decoded by langdu: the peers' own decoding is not what
is measured here); the "refused" column counts pages langdu's `decode` could not read.
Body: character-level F1 against the hand-checked truth. Headline: exact, up to spaces.
Twice: pages where some line is read more often than the article prints it.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.errors import DecodeError  # noqa: E402
from service.text.extract import decode, extract_html  # noqa: E402
from tests.text.corpus import char_f1, pages, read_twice, same_headline  # noqa: E402

Extractor = Callable[[str], tuple[str | None, list[str]]]


def langdu(html: str) -> tuple[str | None, list[str]]:
    article = extract_html(html)
    return article.title, [p.text for p in article.paragraphs]


def trafilatura_(html: str) -> tuple[str | None, list[str]]:
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True) or ""
    meta = trafilatura.extract_metadata(html)
    return (meta.title if meta else None), text.splitlines()


def gne_(html: str) -> tuple[str | None, list[str]]:
    from gne import GeneralNewsExtractor

    result = GeneralNewsExtractor().extract(html)
    return result.get("title"), str(result.get("content", "")).splitlines()


def readability_(html: str) -> tuple[str | None, list[str]]:
    import lxml.html
    from readability import Document

    doc = Document(html)
    root = lxml.html.fragment_fromstring(doc.summary(html_partial=True), create_parent="div")
    blocks = root.xpath("//p|//h1|//h2|//h3|//h4|//li|//td")
    lines = [b.text_content().strip() for b in blocks] or [root.text_content()]
    return doc.short_title(), [x for x in lines if x]


EXTRACTORS: dict[str, Extractor] = {
    "langdu": langdu,
    "trafilatura": trafilatura_,
    "gne": gne_,
    "readability-lxml": readability_,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", action="store_true", help="print each page's F1 too")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    corpus = list(pages())
    refused = 0
    texts: dict[str, str] = {}
    for p in corpus:
        try:
            texts[p.slug] = decode(p.raw)
        except DecodeError:
            refused += 1
    scores: dict[str, dict[str, float]] = {name: {} for name in EXTRACTORS}
    heads: dict[str, int] = dict.fromkeys(EXTRACTORS, 0)
    twice: dict[str, int] = dict.fromkeys(EXTRACTORS, 0)
    seconds: dict[str, float] = dict.fromkeys(EXTRACTORS, 0.0)
    for p in corpus:
        if p.slug not in texts:
            continue
        for name, fn in EXTRACTORS.items():
            started = time.perf_counter()
            try:
                title, lines = fn(texts[p.slug])
            except Exception:  # a peer that fails on a page scores zero on it
                title, lines = None, []
            seconds[name] += time.perf_counter() - started
            scores[name][p.slug] = char_f1("\n".join(lines), "\n".join(p.body))
            heads[name] += same_headline(title, p.title)
            twice[name] += bool(read_twice(lines, p.body))
    n = len(corpus)
    gb = sum(p.encoding != "utf-8" for p in corpus)
    sites = len({p.slug.split("-")[0] for p in corpus})
    print(f"{n} pages ({gb} served in a GB charset), {sites} sites")
    print(f"langdu decode refused: {refused}")
    header = (
        f"{'extractor':<17} {'body F1 mean':>12} {'min':>6} {'<0.85':>6}"
        f" {'headline':>9} {'twice':>6} {'ms/page':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in EXTRACTORS:
        f1s = list(scores[name].values())
        print(
            f"{name:<17} {mean(f1s):>12.4f} {min(f1s):>6.3f} {sum(f < 0.85 for f in f1s):>6d}"
            f" {heads[name] / n:>8.0%} {twice[name]:>6d} {1000 * seconds[name] / n:>8.1f}"
        )
    if args.pages:
        print()
        print(f"{'page':<28}" + "".join(f"{name[:11]:>12}" for name in EXTRACTORS))
        for p in corpus:
            row = "".join(f"{scores[name].get(p.slug, 0.0):>12.3f}" for name in EXTRACTORS)
            print(f"{p.slug:<28}{row}")


if __name__ == "__main__":
    main()
