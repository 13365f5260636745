"""Article extraction: raw page (text or HTML) -> title + body paragraphs, without page chrome."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from html import unescape as html_unescape
from typing import cast
from urllib.parse import urljoin, urlsplit

from service.errors import DecodeError, EmptyArticleError, InputError, PayloadTooLargeError
from service.text.clean import clean_text


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One block of the article: body text, or a (sub)heading read as its own sentence."""

    text: str
    heading: bool = False


@dataclass(frozen=True, slots=True)
class Article:
    """What gets read aloud: an optional title, then the body paragraphs in page order."""

    title: str | None
    paragraphs: tuple[Paragraph, ...]

    def blocks(self) -> tuple[Paragraph, ...]:
        """The title (as a heading) followed by the body: the order a listener hears them."""
        if self.title:
            return (Paragraph(self.title, heading=True), *self.paragraphs)
        return self.paragraphs


# --- decoding -----------------------------------------------------------------------------

_GB_ALIASES = {"gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936", "ms936", "euc-cn", "gb18030"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def _codec_for(charset: str) -> str:
    name = charset.strip().lower()
    # gb2312/gbk pages routinely contain characters outside their nominal set; gb18030 is
    # a strict superset, so decoding as gb18030 never loses a character they could hold.
    return "gb18030" if name in _GB_ALIASES else name


_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def canonical_url(html: str, base: str) -> str | None:
    """The page's own name for itself: its `<link rel="canonical">` as an absolute
    http(s) URL (resolved against `base`), or None."""
    for tag in _LINK_TAG.finditer(html[:262144]):  # it belongs in <head>
        attrs = {
            m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
            for m in _ATTR.finditer(tag.group(0))
        }
        if "canonical" not in attrs.get("rel", "").lower().split():
            continue
        href = urljoin(base, html_unescape(attrs.get("href", "").strip()))
        parts = urlsplit(href)
        if (
            parts.scheme in ("http", "https")
            and parts.hostname
            and not any(c.isspace() or ord(c) < 32 for c in href)
        ):
            return href
    return None


def decode(data: bytes, *, charset: str | None = None) -> str:
    """Decode page bytes: a BOM, else the caller's charset (an HTTP Content-Type wins), else
    the first of UTF-8, the page's declared charset, GB18030 and a detector's guess that
    yields sensible text. Declarations are often wrong or missing on Chinese news sites.

    Raises:
        DecodeError: the caller's charset does not fit the bytes, or nothing yields text.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _strict(data, "utf-16")
    if charset:
        return _strict(data, _codec_for(charset))
    declared = _META_CHARSET.search(data[:4096])

    def candidates() -> Iterator[str | None]:
        # Valid UTF-8 first: non-trivial GB bytes are never valid UTF-8, but UTF-8 bytes
        # often decode (as mojibake) under a wrong GB declaration. GB18030 decodes almost
        # any bytes (Big5 too, as nonsense): a Big5 guess of the detector goes first, then
        # GB18030 if it makes mostly Chinese text (the detector doubts short or slightly
        # damaged GB pages, and guesses Korean or Latin for them), then the guess.
        yield "utf-8"
        if declared:
            yield _codec_for(declared.group(1).decode("ascii", "replace"))
        guess = _detect(data)
        if _in_gb2312(data):  # Big5 bytes read as GB18030 fall outside GB2312, mostly
            yield "gb18030"
        if guess in _BIG5:
            yield guess
        if _mostly_chinese(data, "gb18030"):
            yield "gb18030"
        yield guess

    tried: set[str] = set()
    for codec in candidates():
        if codec is None or codec in tried:
            continue
        tried.add(codec)
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if _sensible(text):
            return text
    if _mostly_chinese(data, "gb18030"):
        # Chinese text with a stray control byte (a form feed, an EOF mark): kept without it.
        return _CONTROL.sub("", data.decode("gb18030"))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"input is not valid UTF-8 (bad byte at offset {exc.start}), "
            "nor text in any encoding we could recognise"
        ) from exc
    raise DecodeError("the input does not look like text in any encoding we recognise")


def _strict(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except LookupError as exc:
        raise DecodeError(f"unknown text encoding {codec!r}") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"input is not valid {codec.upper()} (bad byte at offset {exc.start})"
        ) from exc


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
_LATIN_HIGH = re.compile(r"[\u00a0-\u024f]")


_BIG5 = frozenset({"big5", "big5hkscs", "cp950"})
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
_CJK_CHAR = re.compile(_CJK)


def _mostly_chinese(data: bytes, codec: str) -> bool:
    """Whether `data` decodes under `codec` without an error into text whose characters
    beyond ASCII are at least 90% Chinese (Han, CJK punctuation, full-width forms), with
    at most one control character in a thousand."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return False
    high = sum(1 for c in text if ord(c) > 0x7F)
    controls = len(_CONTROL.findall(text))
    return high > 0 and len(_CJK_CHAR.findall(text)) >= 0.9 * high and controls * 1000 <= len(text)


def _in_gb2312(data: bytes) -> bool:
    """Whether `data` is mostly Chinese as GB18030 and every character of it beyond ASCII
    is one of GB2312's (which Big5 or other bytes read as GB18030 rarely are)."""
    if not _mostly_chinese(data, "gb18030"):
        return False
    text = data.decode("gb18030")
    try:
        "".join(c for c in text if ord(c) > 0x7F and not _CONTROL.match(c)).encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _sensible(text: str) -> bool:
    """No control characters or replacement marks: what a page's text can contain."""
    return _CONTROL.search(text) is None


def _detect(data: bytes) -> str | None:
    """A maintained detector's guess of the codec (GB family as GB18030), unless what it
    yields is Latin mojibake (CJK bytes read as Latin-1 turn into accented letters)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None
    text = str(best)
    high = sum(1 for c in text if ord(c) > 0x7F)
    if high and len(_LATIN_HIGH.findall(text)) > high // 2:
        return None
    return _codec_for(best.encoding)


# --- line filters shared by the text and HTML paths ---------------------------------------

_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_SENTENCE_END = re.compile(r"[。！？!?…；;]")
_DATE = r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
_META_LINE = re.compile(
    rf"^(发布时间|发布日期|时间|日期)?[:：]?\s*{_DATE}(\s+\d{{1,2}}:\d{{2}}(:\d{{2}})?)?"
)
_LABELS = (
    "智能朗读",
    "关闭",
    "关闭窗口",
    "打印",
    "打印本页",
    "分享到",
    "分享",
    "收藏",
    "返回顶部",
    "返回",
    "来源",
    "稿源",
    "作者",
    "编辑",
    "责任编辑",
    "责编",
    "审核",
    "校对",
    "点击",
    "浏览",
    "阅读",
    "字号",
    "【字号",
    "上一篇",
    "下一篇",
    "相关新闻",
    "相关阅读",
    "扫一扫",
    "【打印",
    "【关闭",
    "纠错",
    "我要纠错",
    "举报",
    "原标题",
    "摄影",
    "图片来源",
    "新闻热线",
    "展开",
    "收起",
    "展开全文",
    "推荐阅读",
    "延伸阅读",
    "相关链接",
    "关键字",
    "关键词",
    "标签",
    "分享让更多人看到",
    "关注公众号",
)
_LABEL_LINE = re.compile(
    r"^[【\[]?(" + "|".join(re.escape(x) for x in _LABELS) + r")[】\]]?\s*([:：/／︱丨].{0,60})?$"
)
# Production credits ("总监制：邹 明", "监 制：高明勇", "文/栗思") and share widgets.
_CREDIT_LINE = re.compile(
    r"^(?:总?监\s*制|审\s*读|审\s*核|策\s*划|统\s*筹|出\s*品|制\s*作|设\s*计|主\s*编|值班编辑"
    r"|海\s*报|摄\s*像|剪\s*辑|配\s*音|文|图|文字|视频)\s*[:：/／︱丨|]\s*\S.{0,30}$"
    r"|^(?:转播到|分享到|推荐到)\S{0,8}$|^精彩(?:视频|图片)?推荐$"
)
# Notices of their own, however long: "特别声明：以上内容…", "Notice: The content above …".
_NOTICE = re.compile(r"^(?:特别声明|免责声明|Notice)\s*[:：]")
_BREADCRUMB = re.compile(
    r"^(您的位置|你的位置|当前位置|所在位置|您所在的位置|你所在的位置|所在的位置|位置)\s*[:：]"
    r"|^(首页|主页|网站首页)\s*[>＞»›]|.+\s[>＞»›]\s.+"
)
# Site footers: licences, copyright, report lines.
_FOOTER = re.compile(
    r"ICP[备证]|公网安备|版权所有|Copyright|©|\(c\)\s*\d{4}|违法和不良信息举报|互联网新闻信息服务许可"
    r"|未经.{0,8}授权|转载.{0,12}注明出处|^特别声明[:：]|仅提供信息存储服务|^Notice: The content",
    re.IGNORECASE,
)
# Furniture lines of their own: a print edition ("《光明日报》（2024年05月11日 09版）"), a source
# with a time stamp ("TNW中文站2016年10月14日07:17"), a video's length, a photo credit alone
# ("新华社发（刘满仓摄）", "◎ 图：@人民日报微博截图").
_STAMP = re.compile(
    r"^《[^》]{2,12}》\s*[（(]\s*\d{4}年\d{1,2}月\d{1,2}日\s*(第?\s*\d{1,2}\s*版)?\s*[)）]$"
    rf"|^[^\s，。,:：]{{1,20}}\s*{_DATE}\s*\d{{1,2}}:\d{{2}}(:\d{{2}})?$"
    r"|时长[:：]\s*\d{1,2}:\d{2}"
    r"|^[^，。,]{0,12}[（(][^，。,()（）]{1,16}摄[)）]$|^[◎●]?\s*图\s*[:：/]"
)
# A photographer's credit closing a caption: "… 新华社记者 谢环驰 摄".
_CREDIT = re.compile(
    r"\s*[（(]?\s*(?:新华社|中新社|人民日报|人民网|央视网|本报|本网)?\s*(?:特约)?"
    r"(?:摄影)?(?:记者|通讯员)\s*[\u4e00-\u9fff·]{2,8}(?:[\s、][\u4e00-\u9fff·]{2,8}){0,2}\s*摄\s*[)）]?$"
    r"|\s*[（(][\u4e00-\u9fff·、\s]{2,16}摄[)）]$"
    r"|(?<=\S)\s+[\u4e00-\u9fff·]{2,4}(?:[\s、][\u4e00-\u9fff·]{2,4}){0,2}\s*摄$"
    r"|\s*[（(]?(?:资料图片?|网络图片|图源网络|视觉中国)[)）]?$"
)
# A byline of its own: "半月谈记者 史卫燕", "本报记者 张三 李四", "新华社记者：王五".
_BYLINE = re.compile(
    r"^[\u4e00-\u9fff]{0,8}(?:记者|通讯员|评论员|特约撰稿人?|撰稿)\s*[:：]?\s*"
    r"[\u4e00-\u9fff·]{2,4}(?:[\s、，,][\u4e00-\u9fff·]{2,4}){0,4}$"
)
_NAV_SEPARATORS = re.compile(r"[|｜丨]")


def clean_line(line: str) -> str:
    """Collapse runs of whitespace (incl. ideographic and no-break spaces) to one space."""
    return _SPACES.sub(" ", line).strip()


def _is_meta_line(line: str) -> bool:
    """A date (and time) with at most source/author furniture after it; a lead paragraph
    that begins with a date ("2020年11月18日，…") is article text."""
    m = _META_LINE.match(line)
    if m is None:
        return False
    rest = line[m.end() :].strip()
    return not rest or (rest[0] not in "，,、" and "。" not in rest)


def is_junk_line(line: str) -> bool:
    """Page chrome: navigation bars, breadcrumbs, date/meta lines, widget labels, source lines."""
    if len(_NAV_SEPARATORS.findall(line)) >= 3:
        return True
    if len(line) <= 80 and (_BREADCRUMB.match(line) or _is_meta_line(line)):
        return True
    if len(line) <= 160 and (_FOOTER.search(line) or _STAMP.search(line)):
        return True
    if len(line) <= 40 and (_BYLINE.match(line) or _CREDIT_LINE.match(line)):
        return True
    if len(line) <= 400 and _NOTICE.match(line):
        return True
    return bool(_LABEL_LINE.match(line))


def is_body_like(line: str) -> bool:
    """A line that reads as running prose rather than a label, caption or heading."""
    return (bool(_SENTENCE_END.search(line)) and len(line) >= 20) or len(line) >= 60


def _drop_repeated_captions(lines: Sequence[str]) -> list[str]:
    """A short unpunctuated line repeated back to back is an image's alt text plus caption."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j + 1 < len(lines) and lines[j + 1] == lines[i]:
            j += 1
        if j == i or is_body_like(lines[i]):
            out.append(lines[i])
        i = j + 1
    return out


def _paragraphs_from_lines(lines: Iterable[str]) -> list[Paragraph]:
    kept = [x for x in (clean_line(raw) for raw in lines) if x and not is_junk_line(x)]
    return [
        Paragraph(text, heading=not is_body_like(text)) for text in _drop_repeated_captions(kept)
    ]


def _require_body(paragraphs: Sequence[Paragraph]) -> tuple[Paragraph, ...]:
    if not paragraphs:
        raise EmptyArticleError("the input has no text to read")
    return tuple(paragraphs)


# --- plain text ---------------------------------------------------------------------------


def extract_text(text: str) -> Article:
    """Clean a page scraped as plain text: find the title, keep body paragraphs and headings.

    The header (everything before the first prose paragraph) yields only the title: the line
    just above the date line if there is one, else its longest line. Short lines after the
    last prose paragraph are footers (source, editor, "关闭") and are dropped.

    Raises:
        EmptyArticleError: nothing but whitespace or page chrome.
    """
    raw = [clean_line(x) for x in text.splitlines()]
    lines = [x for x in raw if x]
    if not lines:
        raise EmptyArticleError("the input is empty or whitespace only")
    prose = [i for i, x in enumerate(lines) if is_body_like(x) and not is_junk_line(x)]
    if not prose:
        # A short note with no prose: read every line that is not page chrome.
        return Article(None, _require_body(_paragraphs_from_lines(lines)))
    first_body, last_body = prose[0], prose[-1]
    header = lines[:first_body]
    title = _title_from_header(header)
    body = _paragraphs_from_lines(lines[first_body : last_body + 1])
    return Article(title, _require_body(body))


def _title_from_header(header: Sequence[str]) -> str | None:
    for i, line in enumerate(header):
        if _is_meta_line(line) and i > 0:
            candidate = header[i - 1]
            if not is_junk_line(candidate):
                return candidate
    candidates = [x for x in header if not is_junk_line(x)]
    return max(candidates, key=len) if candidates else None


# --- HTML ---------------------------------------------------------------------------------

_HTML_HINT = re.compile(r"<\s*(html|body|p|div|article|h[1-6]|br|span|!doctype)\b", re.I)
_BLOCK_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "dd", "dt", "td", "th"}
)
_CONTAINER_TAGS = frozenset({"div", "section", "article", "main", "body", "center", "font"})
_BR = "\u2028"  # a <br>, until blocks are cut into lines
_SOURCE_NEWLINE = re.compile(rf"(?<={_CJK})[ \t\r]*\n\s*(?={_CJK})")
# "(责编：张三)" at the end of the last paragraph: furniture stuck to article text.
_TRAILING_EDITOR = re.compile(
    r"\s*[（(【\[]\s*(?:(?:责编|责任编辑|编辑|审核|校对|作者|记者|通讯员|评论员)\s*[:：]?"
    r"|(?:本文|文章)?来源\s*[:：]|(?:原)?(?:刊于|载于|原载)《)[^）)】\]]{0,80}[）)】\]]\s*$"
    r"|\s*(?:返回\S{1,4}[，,]\s*)?查看更多\s*$"
)
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "figure",
    "figcaption",
    "img",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "button",
    "select",
    "iframe",
    "video",
    "audio",
    "svg",
)


def looks_like_html(text: str) -> bool:
    """True when the text carries HTML markup rather than plain prose."""
    return bool(_HTML_HINT.search(text[:20000]))


MAX_ELEMENTS = 30_000
_ELEMENT = re.compile(r"<[A-Za-z]")


def extract_html(html: str) -> Article:
    """Extract title and body from a page with readability, then drop chrome it let through.

    When readability settles on a block that does not hold the text right under the
    headline (a long "recommended" column beside a short article), the block the headline
    leads into is read instead.

    Raises:
        EmptyArticleError: the page holds no readable text.
        PayloadTooLargeError: more than MAX_ELEMENTS elements.
        InputError: the markup cannot be parsed at all.
    """
    import lxml.etree
    import lxml.html
    from readability import Document

    if not html.strip():
        raise EmptyArticleError("the input is empty or whitespace only")
    # Parsing time grows with the elements, not the bytes: 100,000 empty <p> are 0.7 MB and
    # seconds of work for nothing. Real news pages hold a few thousand.
    for n, _ in enumerate(_ELEMENT.finditer(html), start=1):
        if n > MAX_ELEMENTS:
            raise PayloadTooLargeError(f"the page has more than {MAX_ELEMENTS} elements")
    try:
        page = lxml.html.document_fromstring(html)
        _clean_page(page)
        title = headline(page)
        doc = Document(page)  # drops hidden elements from the page, then reads a copy
        if not title:
            title = clean_line(doc.short_title() or "") or None
        summary = doc.summary(html_partial=True)
        root = lxml.html.fragment_fromstring(summary, create_parent="div")
    except (lxml.etree.ParserError, ValueError) as exc:
        raise InputError(f"cannot parse the HTML page: {exc}") from exc
    chosen = "\n".join(p.text_content() for p in root.iter("p")) or root.text_content()
    anchored = _headline_block(page, title, chosen) if title else None
    if anchored is not None:
        root = anchored
    for bad in root.xpath("|".join(f"//{t}" for t in _DROP_TAGS)):
        bad.drop_tree()
    blocks = list(_html_blocks(root))
    paragraphs = _paragraphs_from_blocks(blocks)
    if title:
        paragraphs = _drop_headline_deck(paragraphs, title)
    if title and (is_junk_line(title) or title in {"[no-title]", "no-title"}):
        title = None
    return Article(title, _require_body(paragraphs))


# Page widgets that are never article text, by their class or id: video players, ad slots.
_WIDGET = re.compile(
    r"(?:^|[\s_-])(?:m?player\w*|playerControl|ad|ads|advert\w*|gg|\w+gg|guanggao)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HIDDEN = re.compile(r"visibility\s*:\s*hidden|opacity\s*:\s*0(?![.\d])", re.IGNORECASE)


def _clean_page(page: object) -> None:
    """Drop widgets by name; reveal text a script would reveal (WeChat hides its whole
    article with visibility:hidden until its script runs)."""
    import lxml.html

    assert isinstance(page, lxml.html.HtmlElement)
    for el in list(page.iter()):
        if not isinstance(el.tag, str) or el.tag in {"html", "body"}:
            continue
        names = f"{el.get('class', '')} {el.get('id', '')}"
        if names.strip() and _WIDGET.search(names) and len(el.text_content()) < 3000:
            el.drop_tree()
            continue
        style = el.get("style")
        if style and _HIDDEN.search(style):
            el.set("style", _HIDDEN.sub("", style))


_PROSE_END = re.compile(r"[。！？]")


def _key(text: str) -> str:
    return _SPACES.sub("", text)


def _headline_block(page: object, title: str, chosen: str) -> object | None:
    """The block the headline leads into, when readability chose text that does not hold
    the first prose paragraph after the headline; else None."""
    import copy

    import lxml.html

    assert isinstance(page, lxml.html.HtmlElement)
    want = _key(title)
    order = [el for el in page.iter() if isinstance(el.tag, str)]
    # The element that prints the headline (a few characters more at most: "…播报文章"),
    # a heading before any other element.
    matches = [
        i
        for i, el in enumerate(order)
        if el.tag in {"h1", "h2", "h3", "div", "p", "span", "td"}
        and _key(el.text_content()).startswith(want)
        and len(_key(el.text_content())) <= len(want) + 20
    ]
    if not matches:
        return None
    start = next((i for i in matches if order[i].tag in {"h1", "h2", "h3"}), matches[-1])
    head = order[start]
    lead = None
    for el in order[start + 1 :]:
        if el.tag not in {"p", "div", "td", "section"} or head in el.iterancestors():
            continue
        own = clean_line("".join(t for t in el.xpath("text()") if isinstance(t, str)))
        text = clean_line(el.text_content())
        standalone = el.tag == "p" or (own and len(own) >= 0.8 * len(text))
        if standalone and _PROSE_END.search(text) and not is_junk_line(text) and len(text) >= 30:
            lead = el
            break
    if lead is None:
        return None
    chosen_key = _key(chosen)
    if _key(clean_line(lead.text_content()))[:30] in chosen_key:
        return None
    block = lead.getparent() if lead.tag == "p" and lead.getparent() is not None else lead
    # A summary box above the article readability chose: the article is its sibling.
    around = block.getparent()
    first = next((x for x in chosen.splitlines() if _PROSE_END.search(x)), "")
    if around is not None and _key(first)[:30] in _key(around.text_content()):
        return None
    size = len(_key(block.text_content()))
    parent = block.getparent()
    while parent is not None and parent.tag not in {"body", "html"}:
        grown = len(_key(parent.text_content()))
        if grown > 1.25 * size + 60 or head in parent.iter():
            break
        block, size, parent = parent, grown, parent.getparent()
    wrapper = lxml.html.Element("div")
    wrapper.append(copy.deepcopy(block))
    return cast(object, wrapper)


def _drop_headline_deck(paragraphs: list[Paragraph], title: str) -> list[Paragraph]:
    """The headline again at the top of the body, and the short lines printed with it (a
    Xinhua-style 引题/副题 deck: "…座谈会强调 / 推动… / 李强蔡奇出席")."""
    first = next((i for i, p in enumerate(paragraphs) if is_body_like(p.text)), len(paragraphs))
    want = _key(title)
    if paragraphs and _key(paragraphs[0].text) == want:
        return paragraphs[1:]
    if first and _key(paragraphs[0].text).startswith(want):
        return paragraphs[first:]
    return paragraphs


# Separators between a headline and the site's name in <title>: "…_凤凰网资讯_凤凰网",
# "… - 新华网", "…|人民网", with or without spaces.
_TITLE_SEPARATORS = re.compile(
    r"\s*(?:[_|｜]|\s[-–—]\s|--|——|(?<![A-Za-z0-9])[-–—](?=[^-–—]{1,20}$))\s*"
)


def headline(html: str | object) -> str | None:
    """The page's visible headline, never the site's name that <title> carries with it.

    Like GeneralNewsExtractor: an h1-h3 or og:title/<meta name=title> text that <title>
    contains (up to spaces and dash styles) is the headline, the longest one; else <title>
    cut at its separators, its longest part; else, with no <title>, the first h1, og:title
    or element named as a title.
    """
    import lxml.etree
    import lxml.html

    if isinstance(html, lxml.html.HtmlElement):
        root = html
    else:
        try:
            root = lxml.html.document_fromstring(str(html))
        except (lxml.etree.ParserError, ValueError):
            return None
    page_title = clean_line(" ".join(root.xpath("//title//text()")))
    metas = root.xpath(
        "//meta[@property='og:title' or @name='og:title' or @name='title'"
        " or @name='ArticleTitle']/@content"
    )
    headings = [clean_line(h.text_content()) for h in root.xpath("//h1|//h2|//h3")]
    candidates = [c for c in (*(clean_line(m) for m in metas), *headings) if len(c) >= 4]
    named = [
        clean_line(e.text_content())
        for e in root.xpath(
            "//body//*[not(self::a) and not(self::title)][contains(@class, 'title')"
            " or contains(@id, 'title') or contains(@class, 'Title')]"
        )
    ]
    named = [c for c in named if 6 <= len(c) <= 80]
    if page_title:
        parts = [p for p in _TITLE_SEPARATORS.split(page_title) if p.strip()]
        whole = _title_key(page_title)
        inside = [
            c
            for c in (*candidates, *named)
            if _title_key(c) in whole and (len(parts) == 1 or _title_key(c) != whole)
        ]
        if inside:
            return max(inside, key=len)
        best = max(parts, key=len) if parts else None
        if best is not None and len(best) >= 8:
            return best
        h1 = [clean_line(h.text_content()) for h in root.xpath("//h1")]
        return next((c for c in (*h1, *named) if len(c) >= 6), best)
    h1 = [clean_line(h.text_content()) for h in root.xpath("//h1")]
    return next((c for c in (*h1, *candidates, *named) if c), None)


_DASHES = re.compile(r"[-–—－]+")


def _title_key(text: str) -> str:
    return _DASHES.sub("-", _key(text))


def _paragraphs_from_blocks(blocks: Sequence[tuple[str, bool]]) -> list[Paragraph]:
    lines: list[tuple[str, bool]] = []
    for text, heading in blocks:
        # Only <br> breaks a line: a newline in the page's source is layout. Between two
        # Chinese characters it is nothing at all; elsewhere it is a space.
        text = _SOURCE_NEWLINE.sub("", text)
        lines.extend((clean_line(_TRAILING_EDITOR.sub("", x)), heading) for x in text.split(_BR))
    kept = [(x, h) for x, h in lines if x and not is_junk_line(x)]
    survivors = set(_drop_repeated_captions([x for x, _ in kept]))
    kept = _photo_captions([(x, h) for x, h in kept if x in survivors])
    kept = _drop_summary_box(kept)
    return [Paragraph(x, heading=h or not is_body_like(x)) for x, h in kept]


def _photo_captions(lines: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Captions (lines closed by a photographer's credit) are not read beside an article of
    its own; in a photo story they are the article: read without the credit, each once."""
    captions = {x for x, _ in lines if _CREDIT.search(x)}
    if not captions:
        return lines
    prose = sum(1 for x, _ in lines if x not in captions and is_body_like(x))
    if prose >= 3:
        return [(x, h) for x, h in lines if x not in captions]
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for x, h in lines:
        if x in captions:
            x = _CREDIT.sub("", x).strip()
            if not x or x in seen:
                continue
            seen.add(x)
        out.append((x, h))
    return out


_SUMMARY_LABEL = re.compile(r"^[【\[]?(摘要|内容摘要|导语|导读|核心提示|提要)[】\]]?\s*[:：]?")


def _drop_summary_box(lines: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """A summary box at the top that repeats a paragraph of the article is read once, where
    the article has it."""
    keys = [_key(_SUMMARY_LABEL.sub("", x)) for x, _ in lines]
    drop: set[int] = set()
    for i in range(min(3, len(lines))):
        if len(keys[i]) >= 20 and any(keys[i] in later for later in keys[i + 1 :]):
            drop.add(i)
    return [line for i, line in enumerate(lines) if i not in drop]


def _html_blocks(root: object) -> Iterable[tuple[str, bool]]:
    """Text of each block-level element, and runs of loose text between them, in reading
    order, with <br> kept as a line break.

    Containers (div, section ...) and wrappers (any element with a block or container
    inside it: <span>, CMS tags such as <founder-content>) are walked, never read whole:
    reading a wrapper whole would read its paragraphs twice.
    """
    import lxml.html

    assert isinstance(root, lxml.html.HtmlElement)
    for br in root.iter("br"):
        br.tail = _BR + (br.tail or "")
    structural = _BLOCK_TAGS | _CONTAINER_TAGS
    wrappers: set[object] = set()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in structural:
            for a in el.iterancestors():
                if a in wrappers:
                    break
                wrappers.add(a)

    def walk(el: lxml.html.HtmlElement) -> Iterator[tuple[str, bool]]:
        loose = [el.text or ""]
        for c in el:
            tag = c.tag if isinstance(c.tag, str) else None
            if tag is not None and (tag in structural or c in wrappers):
                text = "".join(loose)
                if text.strip():
                    yield text, False
                loose.clear()
                if tag in _BLOCK_TAGS:
                    yield c.text_content(), tag.startswith("h") and len(tag) == 2
                else:
                    yield from walk(c)
            elif tag is not None:
                loose.append(c.text_content())
            loose.append(c.tail or "")
        text = "".join(loose)
        if text.strip():
            yield text, False

    yield from walk(root)


def extract(text: str, *, html: bool | None = None) -> Article:
    """Extract an article from page text, sniffing HTML unless told which it is.

    Raises:
        EmptyArticleError: nothing to read.
        InputError: unparseable HTML.
    """
    text = clean_text(text)
    is_html = looks_like_html(text) if html is None else html
    return extract_html(text) if is_html else extract_text(text)
