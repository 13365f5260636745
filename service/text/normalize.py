"""Spoken form of a sentence: numbers, dates, percentages, units, phones read as an announcer would.

WeNet's compiled grammars (wetext) do the bulk; the rules here run first and handle what
they misread in news copy: phone numbers, "1+N" formulas, Latin-digit names, temperatures
below zero, ranges written with a dash, year ranges and full-width characters.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from service.errors import ConfigError
from service.text.chunks import Segmenter
from service.text.lexicon import HOMOPHONES_VERSION, Lexicon, spoken_form, unmark, written_form


def _wetext_version() -> str:
    try:
        return package_version("wetext")
    except PackageNotFoundError:
        return "unknown"


_DIGITS = "零一二三四五六七八九"
_FULLWIDTH = str.maketrans(
    {
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
        **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
        "％": "%",
        "＋": "+",
        "．": ".",
        "／": "/",
        "－": "-",
        "～": "~",
        "＄": "$",
        "￥": "¥",
        "∶": ":",  # the ratio colon of scores and proportions
        # Roman numerals (grades, parts, phases) as the numbers they are read as.
        **dict(
            zip(
                "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ",
                ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"],
                strict=True,
            )
        ),
    }
)
_UNITS_PER = (
    "平方米|平米|平方公里|公顷|亩|千克|公斤|克|吨|米|公里|千米|人|次|天|年|月|小时|分钟|件|台|辆|股"
    "|千瓦时|立方米|升|斤|户|份|张|株|头"
)
# Words after a number that names (a route, a unit, a grade, a type) rather than counts:
# such a 2 is read 二, never 两 (2单元 二单元, 2号楼 二号楼, 2等奖 二等奖).
_NAMING = "单元|号楼|号线|路公交|路车|期|年级|级|型|类|等奖|号|区|组|届|版|栋"
# Letters that start a Chinese train number (G/D/C high-speed, Z/T/K, Y/L/S ...).
_TRAIN = "GDCZTKYLS"


def read_digits(digits: str) -> str:
    """Read a digit string one digit at a time: 0931 -> 零九三一."""
    return "".join(_DIGITS[int(d)] if d.isdigit() else "" for d in digits)


def _digits_of(m: re.Match[str]) -> str:
    return read_digits(m.group(0))


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]


def _decimal_reading(m: re.Match[str]) -> str:
    """3154.03 -> 三千一百五十四点零三, read here: the grammars take 3154.03 for a date."""
    import cn2an

    return f"{cn2an.an2cn(m.group(1))}点{read_digits(m.group(2))}"


_QUANTITY_BEFORE = re.compile(r"(?:约|近|超|逾|占|仅|达|不到|不足|将近|大约)$")
_QUANTITY_AFTER = re.compile(r"^(?:倍|的|以上|以下|左右|多|强|弱)")


def _fraction(m: re.Match[str]) -> str:
    """A proper fraction in lowest terms, 2/3 -> 3分之2, kept whole with the word before it
    (约2/3 is 约三分之二, where the grammars would read 三分之约二). Other slash forms are
    fractions only next to a word of quantity (约2/4的人, 4/3倍: the grammars read them);
    else a month and day is a date (5/20 -> 5月20日), and the rest two numbers (24/7)."""
    numerator, denominator = m.group(1), m.group(2)
    a, b = int(numerator), int(denominator)
    if 0 < a < b and math.gcd(a, b) == 1:
        return f"{denominator}分之{numerator}"
    before, after = m.string[max(0, m.start() - 2) : m.start()], m.string[m.end() :]
    if _QUANTITY_BEFORE.search(before) or _QUANTITY_AFTER.match(after):
        return m.group(0)
    if 1 <= a <= 12 and 1 <= b <= 31:
        return f"{a}月{b}日"
    return f"{numerator} {denominator}"


# Order matters: each rule sees the output of the ones above it.
_RULES: tuple[_Rule, ...] = (
    # Thousands separators: 1,234,567 -> 1234567 (12,345.6 as well).
    (
        re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?=\.\d|[^\d,]|$)"),
        lambda m: m.group(0).replace(",", ""),
    ),
    # Phone numbers: area code + number, mobiles, and digits after a hotline word.
    (
        re.compile(r"(?<![\d.])(?:\+?86[-\s]?)?0\d{2,3}[-—–\s]?\d{7,8}(?:[-—–]\d{1,4})?(?![\d.])"),
        _digits_of,
    ),
    (re.compile(r"(?<![\d.])1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}(?![\d.])"), _digits_of),
    (
        re.compile(r"(?<=电话|热线|手机|拨打|致电|传真|号码|专线)([:：]?\s*)([\d-]{3,})"),
        lambda m: m.group(1) + read_digits(m.group(2)),
    ),
    (re.compile(r"(?<![\d.])(\d{3,5})(?=热线|服务热线|专线)"), _digits_of),
    # Room, flight and similar codes read digit by digit.
    (re.compile(r"(?<![\d.])\d{3,5}(?=室|房间|号房|号楼|号线)"), _digits_of),
    (re.compile(r"(?<=[A-Z]{2})\d{3,5}(?![\d.])"), _digits_of),  # MH370, CA1831
    # No one reads 13+ digits as a cardinal: ID, card and account numbers.
    (re.compile(r"(?<![\d.])\d{13,}"), _digits_of),
    # Train numbers and standards are read digit by digit: D3075次, GB 18030, GB/T 7714-2015.
    (
        re.compile(rf"(?<![A-Za-z])([{_TRAIN}])(\d{{1,4}})(?=次|列车|动车|高铁)"),
        lambda m: m.group(1) + read_digits(m.group(2)),
    ),
    (
        re.compile(
            r"(?<![A-Za-z])(GB(?:/T|/Z)?|ISO|IEC|YY|JT|HJ|QB)\s?(\d+)(?:[-—–](\d{4}))?(?![\d.])"
        ),
        lambda m: (
            f"{m.group(1)} {read_digits(m.group(2))}"
            + (f"-{read_digits(m.group(3))}" if m.group(3) else "")
        ),
    ),
    # Lottery draws and issue numbers (第2023001期), codes after the word that names them
    # (验证码, 邮编, 房间号 ...) are read digit by digit.
    (re.compile(r"(?<=第)\d{5,}(?=期)"), _digits_of),
    (
        re.compile(
            r"(验证码|校验码|动态码|取件码|提取码|邮编|邮政编码|房间号|房号|门牌号|座位号|工号)"
            r"([为是:：]?\s*)(\d{2,8})(?![\d.])"
        ),
        lambda m: m.group(1) + m.group(2) + read_digits(m.group(3)),
    ),
    # Dates written with a middle dot (3·15, 9·11, 8·15) are read digit by digit.
    (
        re.compile(r"(?<![\d.])(\d{1,2})[·•・](\d{1,2})(?![\d.])"),
        lambda m: read_digits(m.group(1)) + read_digits(m.group(2)),
    ),
    # Generations: 80后, 95后, 00后 -> 八零后, 九五后.
    (re.compile(r"(?<![\d.])\d[05](?=后)"), _digits_of),
    # Years read digit by digit wherever they stand: in lists (2013、2014年), before eras
    # (公元前221年) and at the head of report titles (《2018中国城市报告》).
    (
        re.compile(
            r"(?<![\d.])(?:1[5-9]|20)\d{2}(?=(?:\s*[、,，和与及或]\s*(?:1[5-9]|20)\d{2})+\s*年)"
        ),
        _digits_of,
    ),
    (re.compile(r"(?<=公元前)\d{1,4}(?=年)"), _digits_of),
    (re.compile(r"(?<=《)(?:1[5-9]|20)\d{2}(?=[\u4e00-\u9fff])"), _digits_of),
    # A lone 2 that names rather than counts is 二: a day of the month (10月2日), a unit,
    # a building, a grade, a type (2单元, 2号楼, 2等奖). Only the digit: 两级, 两类 stay.
    (re.compile(r"(?<=月)2(?=日|号)"), "二"),
    # ... and so does a lone day of this month in a report (记者2日获悉, 于2日上午): a date
    # unless a word before it counts days (持续2日, 为期2日) or 内 after it bounds them.
    (
        re.compile(
            r"(?<![\d.])(?<!持续)(?<!连续)(?<!为期)(?<!历时)(?<!长达)(?<!用了)(?<!不到)(?<!超过)"
            r"(?<![近约共仅只逾每前后这那])2(?=日(?!内|之内|以内|游))"
        ),
        "二",
    ),
    (re.compile(rf"(?<![\d.])2(?=(?:{_NAMING}))"), "二"),
    # Per mille: 3‰ -> 千分之3 (the grammars read the number).
    (re.compile(r"(\d+(?:\.\d+)?)‰"), r"千分之\1"),
    # Year ranges: 2019-2020年 -> 二零一九年至二零二零年 (not 两千零一十九).
    (
        re.compile(r"(?<!\d)(\d{4})\s*[-—–~至到]\s*(\d{4})\s*年"),
        lambda m: f"{read_digits(m.group(1))}年至{read_digits(m.group(2))}年",
    ),
    # Temperatures below zero: -5℃ -> 零下5℃ (unless the text already says 零下).
    (re.compile(r"(?<![\d.A-Za-z])(?<!零下)[-−](?=\d+(?:\.\d+)?\s*(?:℃|°C|摄氏度|度))"), "零下"),
    (re.compile(r"零下[-−](?=\d)"), "零下"),
    # A negative percentage is 负百分之三, not 百分之负三.
    (re.compile(r"(?<![\d.A-Za-z%])[-−](?=\d+(?:\.\d+)?%)"), "负"),
    # Per-unit prices: 1.2万元/平方米 -> 1.2万元每平方米.
    (re.compile(rf"(?<=[元人次天\d])/(?=(?:{_UNITS_PER}))"), "每"),
    # Dash between a Latin name and a number is a hyphen, not a minus: COVID-19.
    (re.compile(r"(?<=[A-Za-z])-(?=\d)"), " "),
    (re.compile(r"\bNo\.\s?(?=\d)", re.IGNORECASE), "第"),
    # Scores, told from times by the words around them: 比分10:30, 以21:19获胜 -> 比.
    (re.compile(r"(比分为?|战成|最终以|以)(\d{1,3}):(\d{1,3})(?!\d|:\d)"), r"\1\2比\3"),
    (
        re.compile(
            r"(?<![\d:])(\d{1,3}):(\d{1,3})(?=(?:的比分)?(?:获胜|击败|战胜|取胜|力克|险胜|大胜"
            r"|胜出|告负|落败|负于|战平|逆转|结束比赛))"
        ),
        r"\1比\2",
    ),
    # Ranges: 12%-15%, 3-5天 -> 至 (a dash between numbers is never a minus sign).
    (re.compile(r"(?<=\d[%‰]|\d[万亿])\s*[-—–~]\s*(?=\d)"), "至"),
    # An em or en dash or a tilde between two numbers is a range: 6—8个月 -> 6到8个月.
    (re.compile(r"(?<=\d)\s*[—–~～]\s*(?=\d)"), "到"),
    # "1+N", "互联网+": plus reads 加.
    (re.compile(r"(?<=[\dA-Za-z\u4e00-\u9fff])\+"), "加"),
    # Currency sign before a number with a magnitude: ¥5万 -> 5万元 (¥5万元 too).
    (
        re.compile(r"[¥￥](\d+(?:\.\d+)?)([万亿]?)元?"),
        lambda m: f"{m.group(1)}{m.group(2)}元",
    ),
    # Index points with decimals: 沪指收报3154.03点.
    (re.compile(r"(?<![\d.])(\d+)\.(\d+)(?=点)"), _decimal_reading),
    # Blood pressure: 140/90毫米汞柱 -> 140比90 (not a fraction).
    (re.compile(r"(?<![\d./])(\d{2,3})/(\d{2,3})(?=\s*(?:毫米汞柱|mmHg))"), r"\1比\2"),
    # Proper fractions: 约2/3 -> 约3分之2 (the grammars move the word inside).
    (re.compile(r"(?<![\d./])(\d{1,3})/(\d{1,3})(?![\d./])"), _fraction),
    # A multiplication sign between numbers: 50×25米 -> 50乘25米.
    (re.compile(r"(?<=\d)\s*[×✕]\s*(?=\d)"), "乘"),
)
# What wetext leaves that an engine would read badly or as a symbol name.
_POST_RULES: tuple[_Rule, ...] = (
    (re.compile(r"(?<=[\u4e00-\u9fff])/(?=[\u4e00-\u9fff])"), "、"),
    # An ordinal is never 两: 第2名 -> 第二名 (the grammars pick 两 before measure words).
    (re.compile(r"第两"), "第二"),
    # ... and a multiple counts: 2倍 -> 两倍 (二点二倍 and 十二倍 stay).
    (re.compile(r"(?<![一二三四五六七八九十百千万零点第])二(?=倍)"), "两"),
    # ... and a proportion in tenths always is: 2成 -> 两成.
    (re.compile(r"(?<![一二三四五六七八九十百千万零点第])二成"), "两成"),
    # A clock time counts hours: 凌晨2点, 2点30分 -> 两点 (but 2.5 is 二点五, 12点 十二点).
    (
        re.compile(
            r"(?<![一二三四五六七八九十百千万零点第])二"
            r"(?=点(?:[一二三四五六七八九十零]+分|[^一二三四五六七八九十零]|$))"
        ),
        "两",
    ),
)

_DIGIT = re.compile(r"\d")
_SPEAKABLE = re.compile(r"[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff０-９Ａ-Ｚａ-ｚ]")


_CLAUSE_PUNCT = re.compile(r"[，,。！？!?；;：:、…]+")
_DIGIT_RUN = re.compile(r"\d+")
_CONTEXT = 10  # characters of context the grammars see on each side of a number
_ISLAND_MAX = 120


def _islands(clause: str) -> list[tuple[str, bool]]:
    """A long clause as (piece, has_digits) pieces: numbers with their context, and the rest.

    The grammars' cost grows faster than the text they are given; reading a number needs
    only its neighbours (年, 个, %, 比分 ...). Pieces with digits are at most _ISLAND_MAX
    characters, so any input costs time linear in its length.
    """
    spans: list[list[int]] = []
    last_end = 0  # where the last number ends
    for m in _DIGIT_RUN.finditer(clause):
        lo, hi = max(0, m.start() - _CONTEXT), min(len(clause), m.end() + _CONTEXT)
        if spans and lo <= spans[-1][1] and hi - spans[-1][0] <= _ISLAND_MAX:
            spans[-1][1] = hi
        elif spans and lo < spans[-1][1]:
            # a new island, cut from the last one in the gap between two numbers (cutting
            # at the last one's end split 12345 into 123 and 45 when they were close)
            cut = max(lo, last_end)
            spans[-1][1] = cut
            spans.append([cut, hi])
        else:
            spans.append([lo, hi])
        last_end = m.end()
    out: list[tuple[str, bool]] = []
    pos = 0
    for lo, hi in spans:
        while hi - lo > _ISLAND_MAX:  # one huge run of digits and letters: cut it
            cut = lo + _ISLAND_MAX
            while cut > lo + 1 and clause[cut - 1].isdigit() and clause[cut].isdigit():
                cut -= 1  # prefer not to split a number (13+ digits are read singly anyway)
            if cut == lo + 1:
                cut = lo + _ISLAND_MAX
            if lo > pos:
                out.append((clause[pos:lo], False))
            out.append((clause[lo:cut], True))
            pos = lo = cut
        if lo > pos:
            out.append((clause[pos:lo], False))
        out.append((clause[lo:hi], True))
        pos = hi
    if pos < len(clause):
        out.append((clause[pos:], False))
    return out


def _clauses(text: str) -> list[str]:
    """Cut after clause punctuation, except between digits (1,000,000 and 10:30 stay whole)."""
    out: list[str] = []
    start = 0
    for m in _CLAUSE_PUNCT.finditer(text):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before.isdigit() and after.isdigit():
            continue
        out.append(text[start : m.end()])
        start = m.end()
    out.append(text[start:])
    return [c for c in out if c]


def is_speakable(text: str) -> bool:
    """True when `text` has at least one character an engine can pronounce."""
    return bool(_SPEAKABLE.search(text))


def _apply(rules: tuple[_Rule, ...], text: str) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return text


class _DeferredFst:
    """Stands in for a kaldifst.TextNormalizer until it is first called."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fst: Callable[[str], str] | None = None

    def __call__(self, text: str) -> str:
        if self._fst is None:
            import kaldifst

            self._fst = kaldifst.TextNormalizer(self._path)
        return self._fst(text)


def _import_wetext() -> Any:
    """Import wetext, loading each of its grammar files only when first used.

    wetext reads all of its ~15 FST files (English, Japanese, inverse normalization ...)
    at import, 0.5-0.8 s; we use two of them. Its constants module binds kaldifst's
    TextNormalizer at import, so it is swapped for a deferring stand-in just for that.
    """
    if "wetext" in sys.modules:
        return sys.modules["wetext"]
    import kaldifst

    real = kaldifst.TextNormalizer
    kaldifst.TextNormalizer = _DeferredFst
    try:
        import wetext
    finally:
        kaldifst.TextNormalizer = real
    return wetext


# Bump with every change to the rules above: it is part of the render version, so finished
# articles are read again (lazily, only the sentences whose spoken form changed).
RULES_VERSION = "2026.12.05.2"


def load_lexicon(path: Path) -> dict[str, str]:
    """A newsroom pronunciation list: one `written<TAB>spoken` pair a line, `#` comments;
    spoken is Chinese text or tone-numbered pinyin (service.text.lexicon).

    Raises:
        ConfigError: unreadable, or a line that is not two such fields.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the lexicon {path}: {exc}") from exc
    lexicon: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        written, sep, spoken = line.partition("\t")
        if not sep or not written.strip() or not spoken.strip():
            raise ConfigError(f"{path.name}:{number}: expected 'written<TAB>spoken'")
        try:
            lexicon[written_form(written)] = spoken_form(spoken)
        except ValueError as exc:
            raise ConfigError(f"{path.name}:{number}: {exc}") from None
    return lexicon


class Normalizer:
    """Text normalization for Mandarin news; the grammars load once, on first use or warm-up.

    A lexicon (service.text.lexicon) given with a sentence applies before every rule,
    longest form first, on word boundaries (cut by `segmenter`, jieba: its own if none).
    """

    def __init__(self, *, segmenter: Segmenter | None = None) -> None:
        self._lock = threading.Lock()
        self._tn: Callable[[str], str] | None = None
        self._segmenter = segmenter
        self.version = (
            f"rules-{RULES_VERSION}/wetext-{_wetext_version()}/homophones-{HOMOPHONES_VERSION}"
        )

    def _words_with(self, text: str, extra: Sequence[str]) -> list[str]:
        if self._segmenter is None:
            self._segmenter = Segmenter()
        return self._segmenter.words_with(text, extra)

    def warm_up(self) -> None:
        """Load the wetext grammars now rather than on the first number."""
        with self._lock:
            if self._tn is None:
                engine = _import_wetext().Normalizer(lang="zh", operator="tn")
                engine.normalize("1")
                self._tn = engine.normalize

    def _clause(self, clause: str) -> str:
        # The grammars only rewrite text with digits (wetext checks the same), and their
        # cost grows with the length of what they are given: so they see only the clauses
        # that hold a digit. Their strip() must not eat the spaces around a clause.
        if not _DIGIT.search(clause):
            return clause
        if len(clause) > 2 * _CONTEXT + 24:
            return "".join(
                self._piece(piece) if digits else piece for piece, digits in _islands(clause)
            )
        return self._piece(clause)

    def _piece(self, text: str) -> str:
        core = text.strip()
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()) :]
        return lead + self._grammars(core) + trail

    def _grammars(self, text: str) -> str:
        if self._tn is None:
            self.warm_up()
        assert self._tn is not None
        try:
            return self._tn(text)
        except Exception:
            # Text the grammars cannot handle is read as written rather than dropped.
            return text.strip()

    def normalize(self, text: str, lexicon: Lexicon | None = None, *, pinyin: bool = False) -> str:
        """The spoken form of one sentence (or line). Never empty for speakable input.

        `lexicon`'s entries are said as they say, in the form the engine reads (`pinyin`:
        its front end reads `{mao4 die2}`; else pinyin comes as a homophone spelling).
        """
        if not text.strip():
            return text
        forms: list[str] = []
        if lexicon:
            text, forms = lexicon.mark(text, self._words_with)
        pre = _apply(_RULES, text.translate(_FULLWIDTH))
        spoken = "".join(self._clause(c) for c in _clauses(pre)).strip()
        spoken = unmark(_apply(_POST_RULES, spoken), forms, pinyin=pinyin)
        if not is_speakable(spoken) and is_speakable(text):
            return unmark(text, forms, pinyin=pinyin)
        return spoken
