"""Extraction on the real sample page, as text and as HTML, and decoding of page bytes."""

from __future__ import annotations

import pytest

from service.errors import DecodeError, EmptyArticleError
from service.text.extract import Article, decode, extract, extract_html, extract_text
from tests.sample import JUNK, TITLE, body_blocks, squash


def _check_sample(article: Article, blocks: list[str]) -> None:
    assert article.title == TITLE
    assert [p.text for p in article.paragraphs] == blocks
    headings = [p.text for p in article.paragraphs if p.heading]
    assert headings == [
        "科学谋划抓统筹上下联动同发力",
        "做优“三社联动”精细服务再聚力",
        "共驻共建促融合 创新治理激活力",
    ]
    for p in article.paragraphs:
        for junk in JUNK:
            assert junk not in p.text, (junk, p.text)


def test_sample_text_page_keeps_title_body_and_headings_only(sample_txt, sample_html):
    article = extract_text(sample_txt.read_text(encoding="utf-8"))
    _check_sample(article, body_blocks(sample_html))


def test_sample_html_page_keeps_title_body_and_headings_only(sample_html):
    article = extract_html(sample_html.read_text(encoding="utf-8"))
    _check_sample(article, body_blocks(sample_html))


def test_text_and_html_of_one_page_agree(sample_txt, sample_html):
    a = extract(sample_txt.read_text(encoding="utf-8"))
    b = extract(sample_html.read_text(encoding="utf-8"))
    assert a == b


def test_gbk_page_is_decoded_as_gb18030(sample_html):
    html = sample_html.read_text(encoding="utf-8").replace('charset="utf-8"', 'charset="gb2312"')
    # 玥 (in the byline) is outside GB2312: real gb2312 pages carry it as GBK/GB18030 bytes.
    data = html.encode("gb18030")
    text = decode(data)
    assert "田玥" in text
    assert squash(extract(text).paragraphs[-1].text).endswith("田玥文/图")


def test_charset_from_caller_wins_and_bom_is_honoured():
    assert decode("新闻".encode("gbk"), charset="GBK") == "新闻"
    assert decode("\ufeff新闻".encode()) == "新闻"


def test_invalid_utf8_is_a_clear_error():
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode(b"\xe6\x96\xb0\xff\xfe news")


def _page(sample_html, declaration: str | None) -> str:
    html = str(sample_html.read_text(encoding="utf-8"))
    old = 'charset="utf-8"'
    assert old in html
    return html.replace(old, declaration or "")


def test_gbk_page_without_a_declaration_is_read(sample_html):
    data = _page(sample_html, None).encode("gb18030")
    assert "安宁区" in decode(data) and "田玥" in decode(data)


def test_a_declaration_that_contradicts_the_bytes_is_overruled(sample_html):
    utf8_said_gbk = _page(sample_html, 'charset="gbk"').encode("utf-8")
    gbk_said_utf8 = _page(sample_html, 'charset="utf-8"').encode("gb18030")
    assert "安宁区" in decode(utf8_said_gbk)
    assert "安宁区" in decode(gbk_said_utf8)


def test_big5_page_is_recognised():
    text = "臺北市政府今天宣布，將擴大辦理市民健康檢查服務。" * 20
    assert decode(f"<html><body><p>{text}</p></body></html>".encode("big5")).count("臺北市") == 20


def test_a_charset_the_caller_gives_must_fit():
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        decode("新闻".encode("gbk"), charset="utf-8")


@pytest.mark.parametrize("text", ["", "   \n\t\u3000 \n", "<html><body>  </body></html>"])
def test_empty_input_is_an_error(text):
    with pytest.raises(EmptyArticleError):
        extract(text)


def test_short_note_without_prose_is_read_whole():
    article = extract("今天停水\n明天恢复")
    assert [p.text for p in article.paragraphs] == ["今天停水", "明天恢复"]


def test_html_fragment_with_br_and_loose_text():
    article = extract("<div>第一段文字，没有段落标签。<br>第二行也是正文内容，应当保留下来。</div>")
    texts = [p.text for p in article.paragraphs]
    assert texts == ["第一段文字，没有段落标签。", "第二行也是正文内容，应当保留下来。"]


def test_footer_lines_after_the_body_are_dropped():
    page = (
        "标题在这里\n2024-01-02 来源：兰州晚报\n"
        "这是正文的第一段，讲述了一件重要的事情。后来又发生了许多变化。\n"
        "责任编辑：张三\n关闭\n打印本页"
    )
    article = extract(page)
    assert article.title == "标题在这里"
    assert [p.text for p in article.paragraphs] == [
        "这是正文的第一段，讲述了一件重要的事情。后来又发生了许多变化。"
    ]


_SENTENCE = "本报讯 记者从市政府获悉，今年全市新建改建城市道路一百二十公里，惠及群众数十万人。"
_BODY = f"<p>{_SENTENCE * 3}</p>"


@pytest.mark.parametrize(
    ("head", "body", "headline"),
    [
        # <title> with the site's suffix, the headline in an h1.
        (
            "<title>兰州新区今年建成十条道路_凤凰网资讯_凤凰网</title>",
            "<h1>兰州新区今年建成十条道路</h1>",
            "兰州新区今年建成十条道路",
        ),
        (
            "<title>兰州新区今年建成十条道路 - 新华网</title>",
            "<h1>兰州新区今年建成十条道路</h1>",
            "兰州新区今年建成十条道路",
        ),
        (
            "<title>兰州新区今年建成十条道路|人民网</title>",
            "<h2>兰州新区今年建成十条道路</h2>",
            "兰州新区今年建成十条道路",
        ),
        # No heading inside <title>: cut at the separators, with or without spaces.
        ("<title>兰州新区今年建成十条道路-中国甘肃网</title>", "", "兰州新区今年建成十条道路"),
        ("<title>兰州新区今年建成十条道路｜澎湃新闻</title>", "", "兰州新区今年建成十条道路"),
        # og:title inside <title> beats a shorter h1 (a section name).
        (
            '<title>新冠COVID-19疫苗接种进展_新闻中心</title><meta property="og:title" '
            'content="新冠COVID-19疫苗接种进展">',
            "<h1>新闻中心</h1>",
            "新冠COVID-19疫苗接种进展",
        ),
        # No <title>: the first h1.
        ("", "<h1>全市新建改建城市道路</h1>", "全市新建改建城市道路"),
    ],
)
def test_the_headline_is_the_pages_not_the_sites(head, body, headline):
    page = f"<html><head>{head}</head><body>{body}{_BODY}</body></html>"
    assert extract(page).title == headline


def test_a_lead_paragraph_that_begins_with_a_date_is_read():
    lead = "2020年11月18日，甘肃省召开全省城市基层党建工作推进会，总结经验，部署下一步工作。"
    page = (
        "<html><head><title>全省城市基层党建工作推进会召开_每日甘肃</title></head><body>"
        "<h1>全省城市基层党建工作推进会召开</h1><p>2020-11-18 10:20 来源：每日甘肃</p>"
        f"<p>{lead}</p><p>{_SENTENCE * 2}</p></body></html>"
    )
    article = extract(page)
    assert article.paragraphs[0].text == lead
    assert all("来源" not in p.text for p in article.paragraphs)


@pytest.mark.parametrize("wrapper", ["span", "founder-content", "font"])
def test_text_inside_a_wrapper_is_read_once(wrapper):
    first = "兰州市今年新建改建城市道路一百二十公里，惠及群众数十万人，交通更加便利。"
    second = "市交通部门表示，明年将继续加大投入，重点完善城市路网结构和公交线路。"
    page = (
        "<html><head><title>兰州城市道路建设_新闻</title></head><body><div>"
        f"<{wrapper}><p>{first}</p><p>{second}</p>记者 王明</{wrapper}>"
        f"<p>{_SENTENCE}</p></div></body></html>"
    )
    texts = [p.text for p in extract(page).paragraphs]
    joined = "".join(texts)
    assert joined.count(first) == 1 and joined.count(second) == 1, texts
    assert texts[:2] == [first, second]


@pytest.mark.parametrize(
    "furniture",
    [
        "（责任编辑：张三）",
        "(责编：李四)",
        "【纠错】",
        "[我要纠错]",
        "您所在的位置：首页 > 新闻中心 > 本地新闻",
        "首页>新闻>正文",
        "原标题：兰州城市道路建设提速",
        "Copyright © 2005-2023 兰州新闻网 版权所有",
        "陇ICP备05000000号 甘公网安备62010202000000号",
        "摄影：王明",
    ],
)
def test_page_furniture_is_dropped(furniture):
    page = (
        "<html><head><title>兰州城市道路建设_新闻</title></head><body><div>"
        f"<p>{furniture}</p><p>{_SENTENCE}</p><p>{furniture}</p></div></body></html>"
    )
    assert [p.text for p in extract(page).paragraphs] == [_SENTENCE]


def test_an_editor_line_stuck_to_the_last_paragraph_is_cut_off():
    page = f"<html><body><p>{_SENTENCE}（责任编辑：张三）</p></body></html>"
    assert [p.text for p in extract(page).paragraphs] == [_SENTENCE]


def test_an_interview_question_is_article_text():
    question = "记者：今年的城市道路建设有哪些新变化？"
    page = f"<html><body><p>{_SENTENCE}</p><p>{question}</p><p>{_SENTENCE}</p></body></html>"
    assert question in [p.text for p in extract(page).paragraphs]


def test_newlines_in_the_source_are_not_paragraph_breaks():
    page = (
        "<html><body><p>兰州市今年新建改建城市道路一百二十公里，\n    惠及群众数十万人，\n"
        "交通更加便利。<br>第二行是新的一段，记者从市交通部门获悉了这一消息。</p></body></html>"
    )
    texts = [p.text for p in extract(page).paragraphs]
    assert texts == [
        "兰州市今年新建改建城市道路一百二十公里，惠及群众数十万人，交通更加便利。",
        "第二行是新的一段，记者从市交通部门获悉了这一消息。",
    ]
