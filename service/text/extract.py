"""Article extraction: raw page (text or HTML) -> title + body paragraphs, without page chrome."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from service.errors import DecodeError, EmptyArticleError, InputError


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
        # any bytes (Big5 too, as nonsense): it comes last, after the detector's guess.
        yield "utf-8"
        if declared:
            yield _codec_for(declared.group(1).decode("ascii", "replace"))
        yield _detect(data)
        yield "gb18030"

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
)
_LABEL_LINE = re.compile(
    r"^[【\[]?(" + "|".join(re.escape(x) for x in _LABELS) + r")[】\]]?\s*([:：].{0,60})?$"
)
_BREADCRUMB = re.compile(
    r"^(您的位置|你的位置|当前位置|所在位置|您所在的位置|你所在的位置|所在的位置|位置)\s*[:：]"
    r"|^(首页|主页|网站首页)\s*[>＞»›]|.+\s[>＞»›]\s.+"
)
# Site footers: licences, copyright, report lines.
_FOOTER = re.compile(
    r"ICP[备证]|公网安备|版权所有|Copyright|©|\(c\)\s*\d{4}|违法和不良信息举报|互联网新闻信息服务许可",
    re.IGNORECASE,
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
    if len(line) <= 160 and _FOOTER.search(line):
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
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
_SOURCE_NEWLINE = re.compile(rf"(?<={_CJK})[ \t\r]*\n\s*(?={_CJK})")
# "(责编：张三)" at the end of the last paragraph: furniture stuck to article text.
_TRAILING_EDITOR = re.compile(
    r"\s*[（(【\[]\s*(?:责编|责任编辑|编辑|审核|校对|作者|记者|通讯员)\s*[:：]?"
    r"[^）)】\]]{0,40}[）)】\]]\s*$"
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


def extract_html(html: str) -> Article:
    """Extract title and body from a page with readability, then drop chrome it let through.

    Raises:
        EmptyArticleError: the page holds no readable text.
        InputError: the markup cannot be parsed at all.
    """
    import lxml.etree
    import lxml.html
    from readability import Document

    if not html.strip():
        raise EmptyArticleError("the input is empty or whitespace only")
    try:
        doc = Document(html)
        title = headline(html) or clean_line(doc.short_title() or "") or None
        summary = doc.summary(html_partial=True)
        root = lxml.html.fragment_fromstring(summary, create_parent="div")
    except (lxml.etree.ParserError, ValueError) as exc:
        raise InputError(f"cannot parse the HTML page: {exc}") from exc
    for bad in root.xpath("|".join(f"//{t}" for t in _DROP_TAGS)):
        bad.drop_tree()
    blocks = list(_html_blocks(root))
    paragraphs = _paragraphs_from_blocks(blocks)
    if title and paragraphs and paragraphs[0].text == title:
        paragraphs = paragraphs[1:]
    if title and (is_junk_line(title) or title in {"[no-title]", "no-title"}):
        title = None
    return Article(title, _require_body(paragraphs))


# Separators between a headline and the site's name in <title>: "…_凤凰网资讯_凤凰网",
# "… - 新华网", "…|人民网", with or without spaces.
_TITLE_SEPARATORS = re.compile(
    r"\s*(?:[_|｜]|\s[-–—]\s|--|——|(?<![A-Za-z0-9])[-–—](?=[^-–—]{1,20}$))\s*"
)


def headline(html: str) -> str | None:
    """The page's visible headline, never the site's name that <title> carries with it.

    Like GeneralNewsExtractor: an h1-h3 or og:title/<meta name=title> text that <title>
    contains is the headline (the longest one); else <title> cut at its separators (its
    longest part); else the first h1 or og:title when there is no <title>.
    """
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None
    page_title = clean_line(" ".join(root.xpath("//title//text()")))
    metas = root.xpath(
        "//meta[@property='og:title' or @name='og:title' or @name='title'"
        " or @name='ArticleTitle']/@content"
    )
    headings = [clean_line(h.text_content()) for h in root.xpath("//h1|//h2|//h3")]
    candidates = [c for c in (*(clean_line(m) for m in metas), *headings) if len(c) >= 4]
    if page_title:
        inside = [c for c in candidates if c in page_title]
        if inside:
            return max(inside, key=len)
        parts = [p for p in _TITLE_SEPARATORS.split(page_title) if p.strip()]
        return max(parts, key=len) if parts else None
    h1 = [clean_line(h.text_content()) for h in root.xpath("//h1")]
    return next((c for c in (*h1, *candidates) if c), None)


def _paragraphs_from_blocks(blocks: Sequence[tuple[str, bool]]) -> list[Paragraph]:
    lines: list[tuple[str, bool]] = []
    for text, heading in blocks:
        # Only <br> breaks a line: a newline in the page's source is layout. Between two
        # Chinese characters it is nothing at all; elsewhere it is a space.
        text = _SOURCE_NEWLINE.sub("", text)
        lines.extend((clean_line(_TRAILING_EDITOR.sub("", x)), heading) for x in text.split(_BR))
    kept = [(x, h) for x, h in lines if x and not is_junk_line(x)]
    survivors = set(_drop_repeated_captions([x for x, _ in kept]))
    return [Paragraph(x, heading=h or not is_body_like(x)) for x, h in kept if x in survivors]


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
    is_html = looks_like_html(text) if html is None else html
    return extract_html(text) if is_html else extract_text(text)
