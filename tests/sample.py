"""What a reader of the sample page should hear, read independently of langdu's extractor."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html

TITLE = "强化党建引领 推动争先进位 安宁区全面加强城市基层党建工作"
JUNK = (
    "手机兰州新闻网",
    "首页",
    "您的位置",
    "网站首页",
    "2019-08-09 00:00:00",
    "智能朗读",
    "活跃在社区的志愿者",
    "来源",
    "关闭",
)


def body_blocks(html_path: Path) -> list[str]:
    """The article body as the page's own markup has it: #content's <p> and <h3> texts."""
    root = lxml.html.fromstring(html_path.read_bytes())
    blocks = root.xpath('//*[@id="content"]/*[self::p or self::h3]')
    return [el.text_content().strip() for el in blocks]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def long_article(html_path: Path, *, size: int = 20_000, run: int = 3_000) -> tuple[str, str]:
    """A 20,000-character article (the sample's body, repeated) holding one 3,000-character
    sentence with no punctuation at all, with numbers and Latin runs mixed in.

    Returns (article text, the long sentence).
    """
    blocks = body_blocks(html_path)
    prose = "".join(b for b in blocks if len(b) > 60)
    bare = re.sub(r"[^\u4e00-\u9fff]", "", prose)
    words = ["COVID19", "2019", "5G", "83", "iPhone15", "12345"]
    pieces: list[str] = []
    i = 0
    while sum(map(len, pieces)) < run:
        pieces.append(bare[i : i + 97])
        pieces.append(words[len(pieces) // 2 % len(words)])
        i = (i + 97) % (len(bare) - 97)
    sentence = "".join(pieces)[:run]
    sentence = sentence.rstrip("0123456789ACDIOPVGhneo") + "完"  # end on a whole word
    paragraphs: list[str] = []
    k = 0
    while sum(map(len, paragraphs)) + len(sentence) < size:
        paragraphs.append(blocks[k % len(blocks)])
        k += 1
    paragraphs.insert(len(paragraphs) // 2, sentence)
    return "\n\n".join(paragraphs), sentence
