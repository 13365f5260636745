"""Real public Chinese news pages with hand-checked headline and body truth.

Each page is `<slug>.html.gz` (the bytes as the site serves them) beside `<slug>.json`:
`title` (the visible headline), `body` (the lines a listener should hear, in order),
`source` (repository, commit, path, original URL, licence, stored encoding) and `notes`
(what was corrected by hand in the source suite's own truth). See README.md here.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Page:
    slug: str
    raw: bytes
    title: str
    body: tuple[str, ...]
    source: dict[str, str]

    @property
    def encoding(self) -> str:
        return self.source["stored_encoding"]


def pages() -> Iterator[Page]:
    for meta in sorted(CORPUS.glob("*.json")):
        truth = json.loads(meta.read_text(encoding="utf-8"))
        raw = gzip.decompress(meta.with_suffix(".html.gz").read_bytes())
        yield Page(meta.stem, raw, truth["title"], tuple(truth["body"]), truth["source"])


def _chars(text: str) -> Counter[str]:
    return Counter(_SPACE.sub("", text))


def char_f1(predicted: str, truth: str) -> float:
    """Character-level F1: the bags of non-space characters of both texts, overlapped."""
    got, want = _chars(predicted), _chars(truth)
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def same_headline(predicted: str | None, truth: str) -> bool:
    """Exact, up to spacing."""
    return predicted is not None and _SPACE.sub("", predicted) == _SPACE.sub("", truth)


def read_twice(lines: list[str], truth: tuple[str, ...]) -> list[str]:
    """Lines (of at least 12 characters) read more often than the article itself prints
    them: a wrapper read whole and then again by paragraph, or a summary box read as well
    as the lead it repeats."""

    def key(x: str) -> str:
        return _SPACE.sub("", x)

    allowed = Counter(key(x) for x in truth)
    seen = Counter(key(x) for x in lines if len(key(x)) >= 12)
    body = key("".join(truth))
    twice: list[str] = []
    for text, n in seen.items():
        # Once is never twice; more often only as often as the article itself prints it.
        limit = max(1, allowed[text], body.count(text))
        if n > limit:
            twice.append(text)
    return twice
