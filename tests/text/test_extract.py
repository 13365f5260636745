"""Extraction on the real sample page, as text and as HTML, and decoding of page bytes."""

from __future__ import annotations

import re

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


def test_a_gb2312_page_without_a_charset_and_with_stray_control_bytes_is_read(sample_html):
    """The detector doubts it (a form feed and an EOF mark in the head): a clean GB18030
    decode of mostly Chinese text wins, the control bytes dropped."""
    page = re.sub(
        r"<meta[^>]*charset[^>]*>", "", sample_html.read_text(encoding="utf-8"), flags=re.I
    )
    data = page.encode("gb18030").replace(b"</head>", b"\x0c\x1a</head>")
    text = decode(data)
    assert "安宁区" in text and "田玥" in text and "\x1a" not in text


@pytest.mark.parametrize("text", ["兰州新区", "今天天气很好", "安宁区召开会议"])
def test_a_short_gb2312_text_is_not_taken_for_big5_or_korean(text):
    assert decode(text.encode("gb2312")) == text


@pytest.mark.parametrize("text", ["臺北市", "台北市政府今天宣布"])
def test_a_short_big5_text_stays_big5(text):
    assert decode(text.encode("big5")) == text


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
        # The h1 writes a dash the <title> writes differently.
        (
            "<title>外贸向好——前4个月进出口增长-今日头条</title>",
            "<h1>外贸向好——前4个月进出口增长</h1>",
            "外贸向好——前4个月进出口增长",
        ),
        # og:title repeats the whole <title>: it is no evidence; the h2 inside it is.
        (
            '<title>全国CPI同比上涨0.3%_数据_宏观频道_财经网</title><meta property="og:title" '
            'content="全国CPI同比上涨0.3%_数据_宏观频道_财经网">',
            "<h2>全国CPI同比上涨0.3%</h2>",
            "全国CPI同比上涨0.3%",
        ),
        # A generic <title> (the site and a section): the element named as the title.
        (
            "<title>科普中国-辟谣文章</title>",
            '<div class="rumor-title">徒手抓子弹真的存在吗？</div>',
            "徒手抓子弹真的存在吗？",
        ),
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
        "文/栗思",
        "编辑/倪家宁",
        "总监制：邹 明",
        "半月谈记者 史卫燕",
        "《光明日报》（2024年05月11日 09版）",
        "TNW中文站2016年10月14日07:17",
        "39健康网(www.39.net)专稿，未经书面授权请勿转载。",
        "特别声明：以上内容(如有图片或视频亦包括在内)为自媒体平台用户上传并发布，本平台仅提供信息存储服务。",
        "关键字： CPI",
        "推荐阅读：绥德交警专项整治电动车违法行为",
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


_LEAD = "2020年11月18日，甘肃省召开全省城市基层党建工作推进会，部署下一步工作。"
_LONG = "市交通部门表示，明年将继续加大投入，重点完善城市路网结构和公交线路，方便群众出行。"


def test_a_short_article_beside_a_long_recommended_column_is_the_article():
    article = "据美国全国广播公司报道，美参议院多数党领袖表示，没有证据表明该事件中存在谋杀行为。"
    recommended = "".join(f"<p>第{i}条。{_LONG}</p>" for i in range(12))
    page = (
        "<html><head><title>美官员否认事故存在谋杀行为_快资讯</title></head><body>"
        '<div class="detail"><div class="normal"><h1>美官员否认事故存在谋杀行为</h1>'
        f'<div class="article__content"><p>{article}</p></div></div>'
        f'<div class="recommend"><h1>猜你喜欢</h1><div class="more">{recommended}</div></div>'
        "</div></body></html>"
    )
    assert [p.text for p in extract(page).paragraphs] == [article]


def test_a_summary_box_above_the_article_does_not_replace_it():
    summary = "核心提示：腊八节要吃腊八粥，但很多年轻人并不知道腊八粥该怎样做？"
    body = "".join(f"<p>{_LONG}{i}</p>" for i in range(4))
    page = (
        "<html><head><title>煮一碗好吃的腊八粥_饮食</title></head><body><div class='left'>"
        f"<h1>煮一碗好吃的腊八粥</h1><div class='art_summary'>{summary}</div>"
        f"<div class='art_body'>{body}</div></div></body></html>"
    )
    texts = [p.text for p in extract(page).paragraphs]
    assert len(texts) >= 4 and all(_LONG in t for t in texts[-4:])


def test_a_summary_box_that_repeats_a_paragraph_is_read_once():
    repeated = "新片讲述了一个普通女孩成长为拳击手的故事，她在拳击中找到了人生方向与自信。"
    page = (
        "<html><body><div>"
        f"<p>{repeated}</p><p>{_SENTENCE}</p><h3>01 比起拳击更重要的是</h3>"
        f"<p>{repeated}</p><p>{_LONG}</p></div></body></html>"
    )
    texts = [p.text for p in extract(page).paragraphs]
    assert texts.count(repeated) == 1
    assert texts.index(repeated) > texts.index(_SENTENCE)


def test_wechat_articles_hidden_until_a_script_runs_are_read():
    page = (
        '<html><head><meta property="og:title" content="绥德：退役军人被表彰"></head><body>'
        '<h1 class="rich_media_title">绥德：退役军人被表彰</h1>'
        f'<div id="js_content" style="visibility: hidden;"><p>{_SENTENCE}</p><p>{_LONG}</p>'
        "</div></body></html>"
    )
    article = extract(page)
    assert article.title == "绥德：退役军人被表彰"
    assert [p.text for p in article.paragraphs] == [_SENTENCE, _LONG]


def test_video_players_and_ad_slots_are_not_read():
    page = (
        "<html><body><div>"
        '<div class="mplayer"><span>倍速</span>'
        "<div>很抱歉，当前视频播放失败。错误代码：QVS.4100</div></div>"
        f"<p>{_SENTENCE}</p>"
        '<a class="article__content__textgg"><span>广告</span>英国的大学排名全知晓。</a>'
        f'<div class="top-ad">广告：魔兽世界公益服今日新开，万人在线！</div><p>{_LONG}</p>'
        "</div></body></html>"
    )
    assert [p.text for p in extract(page).paragraphs] == [_SENTENCE, _LONG]


def test_photo_captions_beside_an_article_are_not_read():
    caption = "11月30日上午，座谈会在上海召开。新华社记者 谢环驰 摄"
    page = (
        f"<html><body><div><p>{_SENTENCE}</p><p>{caption}</p><p>{_LONG}</p>"
        f"<p>{caption}</p><p>{_LEAD}</p><p>图为停车场道闸 资料图</p></div></body></html>"
    )
    assert [p.text for p in extract(page).paragraphs] == [_SENTENCE, _LONG, _LEAD]


def test_in_a_photo_story_the_captions_are_read_once_without_credits():
    lead = "多米尼加现任总统19日晚在竞选总部宣布，他在总统选举首轮投票中获胜，成功连任。"
    caption = "5月19日，在多米尼加首都圣多明各，阿比纳德尔在竞选总部发表胜选演讲。"
    page = (
        f"<html><body><div><p>{lead}</p><p>{caption} 新华社记者 李梦馨 摄</p>"
        f"<p>{caption} 新华社记者 李梦馨 摄</p><p>新华社发（刘满仓摄）</p></div></body></html>"
    )
    assert [p.text for p in extract(page).paragraphs] == [lead, caption]


def test_a_headline_deck_printed_above_the_body_is_not_read_again():
    page = (
        "<html><head><title>习近平主持召开座谈会-中国科普网</title></head><body>"
        "<h1>习近平主持召开座谈会</h1><div class='content'>"
        "<p><strong>习近平主持召开座谈会强调</strong></p><p><strong>推动一体化发展取得新的重大突破</strong></p>"
        f"<p><strong>李强蔡奇出席</strong></p><p>{_SENTENCE}</p><p>{_LONG}</p></div></body></html>"
    )
    article = extract(page)
    assert article.title == "习近平主持召开座谈会"
    assert [p.text for p in article.paragraphs] == [_SENTENCE, _LONG]


def test_source_and_byline_brackets_at_the_end_are_cut_off():
    for tail in (
        "（本文来源：经济日报 作者：研究员徐占忱）",
        "（评论员 罗博 萧海川）",
        "（刊于《半月谈》2020年第1期）",
    ):
        page = f"<html><body><p>{_LONG}</p><p>{_SENTENCE}{tail}</p></body></html>"
        assert [p.text for p in extract(page).paragraphs] == [_LONG, _SENTENCE], tail
