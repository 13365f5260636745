"""Sentence splitting: Chinese and ASCII punctuation, quotes, decimals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.text.extract import extract_html
from service.text.sentences import split_sentences
from tests.sample import squash


def test_splits_on_chinese_and_ascii_terminators():
    assert split_sentences("今天下雨。明天晴!后天呢?大后天;再说……好吧！") == [
        "今天下雨。",
        "明天晴!",
        "后天呢?",
        "大后天;",
        "再说……",
        "好吧！",
    ]


def test_ascii_commas_inside_chinese_do_not_split():
    assert split_sentences("每天清晨,在干净整洁的小区,队伍行进。") == [
        "每天清晨,在干净整洁的小区,队伍行进。"
    ]


def test_never_splits_on_a_decimal_point_or_abbreviation():
    assert split_sentences("分别达到83.19%和81.51%。今年No.1选手来了。") == [
        "分别达到83.19%和81.51%。",
        "今年No.1选手来了。",
    ]


def test_closing_quotes_and_brackets_stay_with_their_sentence():
    assert split_sentences("他说：“我们到了。”随后离开（见图。）最后。") == [
        "他说：“我们到了。”",
        "随后离开（见图。）",
        "最后。",
    ]


def test_terminator_inside_a_short_quotation_does_not_split():
    assert split_sentences("他说：“我很好。你呢？”她笑了。") == [
        "他说：“我很好。你呢？”",
        "她笑了。",
    ]


def test_unclosed_quote_does_not_swallow_the_paragraph():
    text = "紧紧围绕“突出问题、聚力一线,找问题、查根源。研究部署全区工作。"
    assert split_sentences(text) == [
        "紧紧围绕“突出问题、聚力一线,找问题、查根源。",
        "研究部署全区工作。",
    ]


def test_sample_page_sentences_reassemble_to_the_paragraphs(sample_html):
    article = extract_html(sample_html.read_text(encoding="utf-8"))
    total = 0
    for p in article.paragraphs:
        parts = split_sentences(p.text)
        total += len(parts)
        assert "".join(parts) == p.text.strip()
        for s in parts:
            assert len(s) < 300
    assert total > 40


@given(st.text(alphabet=st.sampled_from(list("好的。！？;.…”“（）1.2 aZ,")), max_size=300))
def test_nothing_is_lost_on_any_input(text):
    assert squash("".join(split_sentences(text))) == squash(text)
