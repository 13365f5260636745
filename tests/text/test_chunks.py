"""Chunking: engine budgets respected, cuts only at clause punctuation or jieba word boundaries."""

from __future__ import annotations

import re

import jieba
import pytest

from service.text.chunks import Segmenter, chunk, utf8_len
from tests.sample import long_article

_LATIN_OR_DIGIT = re.compile(r"[0-9A-Za-z]")


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    seg = Segmenter()
    seg.warm_up()
    return seg


def _cuts(chunks: list[str]) -> list[int]:
    out, pos = [], 0
    for c in chunks[:-1]:
        pos += len(c)
        out.append(pos)
    return out


def test_short_text_is_one_chunk(segmenter):
    assert chunk("今天天气很好。", budget=4096, segmenter=segmenter) == ["今天天气很好。"]
    assert chunk("", budget=4096, segmenter=segmenter) == []


def test_cuts_at_clause_punctuation_first(segmenter):
    text = "第一部分说了很多话，第二部分也说了很多话，第三部分还是很多话。"
    chunks = chunk(text, budget=60, segmenter=segmenter)
    assert "".join(chunks) == text
    assert all(c.endswith(("，", "。")) for c in chunks)
    assert all(utf8_len(c) <= 60 for c in chunks)


@pytest.mark.parametrize("budget", [600, 4096])
def test_3000_char_sentence_without_punctuation_in_20000_char_article(
    sample_html, segmenter, budget
):
    article, sentence = long_article(sample_html)
    assert len(article) >= 20_000 and len(sentence) >= 2_990
    assert not re.search(r"[，。！？、,.;；：:]", sentence)
    chunks = chunk(sentence, budget=budget, segmenter=segmenter)
    assert "".join(chunks) == sentence, "nothing lost, nothing added"
    assert len(chunks) >= utf8_len(sentence) // budget
    assert all(0 < utf8_len(c) <= budget for c in chunks)
    words = list(jieba.cut(sentence))
    boundaries = {sum(len(w) for w in words[:i]) for i in range(len(words) + 1)}
    for cut in _cuts(chunks):
        assert cut in boundaries, f"cut inside a word at {sentence[cut - 5 : cut + 5]!r}"
        assert not (
            _LATIN_OR_DIGIT.match(sentence[cut - 1]) and _LATIN_OR_DIGIT.match(sentence[cut])
        ), "cut inside a number or Latin run"


def test_a_single_word_longer_than_the_budget_is_still_kept_whole_in_order(segmenter):
    url = "https://example.org/" + "a" * 200
    chunks = chunk("请访问" + url + "了解详情", budget=64, segmenter=segmenter)
    assert "".join(chunks) == "请访问" + url + "了解详情"
    assert all(utf8_len(c) <= 64 for c in chunks)


def test_budget_too_small_is_refused(segmenter):
    with pytest.raises(ValueError, match="budget"):
        chunk("一二三四五六七八", budget=2, segmenter=segmenter)
