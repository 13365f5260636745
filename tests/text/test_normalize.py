"""Normalization: the spoken form of news sentences."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.text.normalize import Normalizer, is_speakable, read_digits

_IGNORED = re.compile(r"[\s\W_]+")


def _comparable(text: str) -> str:
    return _IGNORED.sub("", text)


def _cases(path: Path) -> list[tuple[str, list[str]]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        source, expected = line.split("\t")
        rows.append((source, [_comparable(x) for x in expected.split(" | ")]))
    return rows


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    n = Normalizer()
    n.warm_up()
    return n


def _check_table(normalizer: Normalizer, path: Path, minimum: int) -> None:
    failures = []
    rows = _cases(path)
    assert len(rows) >= minimum
    for source, alternatives in rows:
        got = normalizer.normalize(source)
        if _comparable(got) not in alternatives:
            failures.append(f"{source} -> {got} (want {' | '.join(alternatives)})")
    assert not failures, "\n".join(failures)


def test_every_row_of_the_public_case_table(normalizer, cases_tsv):
    _check_table(normalizer, cases_tsv, 40)


@pytest.mark.parametrize(
    ("source", "spoken"),
    [
        ("热线电话：0931-8123456", "热线电话：零九三一八一二三四五六"),
        # an area code and number are read digit by digit with no word before them
        ("可向中心0931-8123456反映", "可向中心零九三一八一二三四五六反映"),
        ("拨09318123456即可", "拨零九三一八一二三四五六即可"),
        ("请拨打13912345678咨询", "请拨打一三九一二三四五六七八咨询"),
        ("COVID-19疫情", "COVID 十九疫情"),
        ("互联网+政务服务", "互联网加政务服务"),
        ("2019-2020年度", "二零一九年至二零二零年度"),
        ("气温-12℃", "气温零下十二摄氏度"),
        ("增幅12%-15%", "增幅百分之十二至百分之十五"),
        ("共１２３个", "共一百二十三个"),
        ("获得第2名", "获得第二名"),
        ("记者田玥文/图", "记者田玥文、图"),
        ("同比增长-3%", "同比增长负百分之三"),
        ("最低零下-5℃", "最低零下五摄氏度"),
        ("均价1.2万元/平方米", "均价一点二万元每平方米"),
        ("MH370航班", "MH三七零航班"),
        ("CA1831次航班", "CA一八三一次航班"),
        ("G20峰会", "G二十峰会"),
        ("5G网络", "五G网络"),
        ("下降了2成", "下降了两成"),
        ("身份证号620102199001011234", "身份证号六二零一零二一九九零零一零一一二三四"),
        ("以3:1战胜对手", "以三比一战胜对手"),
        ("比分10:30", "比分十比三十"),
        ("最终以21:19获胜", "最终以二十一比十九获胜"),
        ("湖人队108:102击败对手", "湖人队一百零八比一百零二击败对手"),
        ("会议于14:00举行", "会议于十四点举行"),
        ("18:30开始", "十八点三十分开始"),
        ("１２：３０", "十二点三十分"),
        ("2021-2022赛季", "二零二一到二零二二赛季"),
        ("5~10人", "五到十人"),
        ("1/4决赛", "四分之一决赛"),
        ("2019/08/09", "二零一九年八月九日"),
        ("房间号1203室", "房间号一二零三室"),
    ],
)
def test_rules_for_what_the_grammars_misread(normalizer, source, spoken):
    assert normalizer.normalize(source) == spoken


def test_text_without_digits_is_untouched(normalizer):
    text = "  站在新时代，着眼新起点。  "
    assert normalizer.normalize(text) == text.strip()


def test_original_text_is_never_modified(normalizer):
    text = "分别达到83.19%和81.51%。"
    before = str(text)
    normalizer.normalize(text)
    assert text == before


def test_numbers_in_a_long_clause_keep_their_context(normalizer):
    text = (
        "由兰州爱颐社会工作服务中心张彦龙等4名社工负责执行的兰州市三社联动费家营社区试点项目"
        "从2017年7月最初进驻社区走访居民精挖需求设计服务的破冰工作到目前共有12345人参加"
    )
    spoken = normalizer.normalize(text)
    assert "四名社工" in spoken and "二零一七年七月" in spoken
    assert "一万二千三百四十五人" in spoken or "一万两千三百四十五人" in spoken


def _seconds(normalizer: Normalizer, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        normalizer.normalize(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("unit", ["1", "今年有8个人和", "a1b2“3”c", "第3.5%至-2℃，"])
def test_time_grows_linearly_with_input(normalizer, unit):
    # 8x the text: linear time is ~8x, quadratic ~64x; allow 2x for noise.
    small = _seconds(normalizer, unit * (500 // len(unit)))
    large = _seconds(normalizer, unit * (4000 // len(unit)))
    assert large < 8 * small * 2 + 0.05, (small, large)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_unicode(text):
    n = _shared_normalizer()
    spoken = n.normalize(text)
    assert isinstance(spoken, str)
    if is_speakable(text):
        assert is_speakable(spoken), (text, spoken)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "“",
                "”",
                "‘",
                "’",
                "「",
                "」",
                "（",
                "）",
                "《",
                "》",
                '"',
                "3",
                "12.5%",
                "-",
                "~",
                "2019-08-09",
                "10:30",
                "第",
                "个",
                "新闻",
                "0931-8888888",
                "1+N",
                " ",
                "\n",
                "。",
                "，",
            ]
        ),
        max_size=60,
    )
)
def test_fuzz_news_fragments_and_nested_quotes(parts):
    text = "".join(parts)
    spoken = _shared_normalizer().normalize(text)
    if is_speakable(text):
        assert is_speakable(spoken), (text, spoken)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=30_000))
def test_fuzz_huge_digit_runs(n):
    started = time.perf_counter()
    spoken = _shared_normalizer().normalize("编号" + "7" * n + "号")
    assert spoken.startswith("编号") and spoken.endswith("号") and len(spoken) >= 3
    assert time.perf_counter() - started < 2.0


_NORMALIZER: list[Normalizer] = []


def _shared_normalizer() -> Normalizer:
    if not _NORMALIZER:
        _NORMALIZER.append(Normalizer())
    return _NORMALIZER[0]


def test_read_digits_and_speakable():
    assert read_digits("0931") == "零九三一"
    assert is_speakable("……“好”")
    assert not is_speakable("……“”！？ \n")


def test_every_row_of_our_news_case_table(normalizer):
    _check_table(normalizer, Path(__file__).with_name("news_cases.tsv"), 150)


# --- rules one by one (what mutation testing found unguarded) ---


def test_fullwidth_letters_and_digits_read_as_their_ascii_twins(normalizer):
    wide = "".join(chr(0xFF21 + i) for i in range(26)) + " "
    wide += "".join(chr(0xFF41 + i) for i in range(26))
    assert normalizer.normalize(wide) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz"
    # the marks just past each range stay what they are
    assert normalizer.normalize("地点：北京；代号［Ａ］｛ｚ｝") == "地点：北京；代号［A］｛z｝"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("约2/3的人", "约三分之二的人"),
        ("约1/7的人", "约七分之一的人"),
        ("约997/998的人", "约九百九十八分之九百九十七的人"),
    ],
)
def test_a_proper_fraction_in_lowest_terms_keeps_the_word_before_it(normalizer, text, spoken):
    assert normalizer.normalize(text) == spoken


@pytest.mark.parametrize("text", ["约3/3的人", "约4/3倍", "约2/4的人", "约0/5的人", "约6/9的人"])
def test_what_is_not_a_proper_fraction_in_lowest_terms_is_left_to_the_grammars(normalizer, text):
    # the grammars read it (as 4/3 -> 三分之四, or a date): our rule never makes it 约X分之Y
    spoken = normalizer.normalize(text)
    assert not re.match(r"约[零一二三四五六七八九十百]+分之", spoken), spoken
    assert "分之" in spoken  # the whole of it reached them


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("5/20是网络情人节", "五月二十日是网络情人节"),  # a month and day: a date
        ("全天候24/7服务", "全天候二十四 七服务"),  # two numbers, never 七分之二十四
        ("10/10开幕", "十月十日开幕"),
        ("1/1开幕", "一月一日开幕"),
        ("12/30开幕", "十二月三十日开幕"),
        ("编号0/5。", "编号零 五。"),  # no month 0
        ("编号13/26。", "编号十三 二十六。"),  # no month 13
        ("编号12/32。", "编号十二 三十二。"),  # no day 32
        ("编号5/0。", "编号五 零。"),  # no day 0
    ],
)
def test_a_slash_form_that_is_no_fraction_is_a_date_or_two_numbers(normalizer, text, spoken):
    assert normalizer.normalize(text) == spoken


@pytest.mark.parametrize("text", ["不足4/8。", "将近6/8。", "达6/8。", "增长4/8倍。", "是2/4的人"])
def test_a_slash_form_next_to_a_word_of_quantity_is_left_to_the_grammars(normalizer, text):
    assert "分之" in normalizer.normalize(text)


def _island_pieces(clause: str) -> list[tuple[str, bool]]:
    from service.text.normalize import _islands

    pieces = _islands(clause)
    assert "".join(p for p, _ in pieces) == clause  # nothing lost, nothing doubled
    assert all(p for p, _ in pieces)
    assert all(digits == bool(re.search(r"\d", p)) or digits for p, digits in pieces)
    assert all(len(p) <= 120 for p, digits in pieces if digits)
    return pieces


def test_a_number_is_read_with_ten_characters_either_side():
    clause = "甲" * 20 + "12" + "乙" * 20
    assert _island_pieces(clause) == [
        ("甲" * 10, False),
        ("甲" * 10 + "12" + "乙" * 10, True),
        ("乙" * 10, False),
    ]


def test_numbers_whose_contexts_touch_share_one_island():
    clause = "甲" * 15 + "1" + "乙" * 5 + "2" + "丙" * 15
    assert _island_pieces(clause) == [
        ("甲" * 5, False),
        ("甲" * 10 + "1" + "乙" * 5 + "2" + "丙" * 10, True),
        ("丙" * 5, False),
    ]
    touching = "甲" * 15 + "1" + "乙" * 20 + "2" + "丙" * 15  # contexts meet: one island
    assert _island_pieces(touching) == [
        ("甲" * 5, False),
        ("甲" * 10 + "1" + "乙" * 20 + "2" + "丙" * 10, True),
        ("丙" * 5, False),
    ]
    near = "甲" * 15 + "1" + "乙" * 21 + "2" + "丙" * 15  # one apart: a one-character gap
    assert [p for p, digits in _island_pieces(near)] == [
        "甲" * 5,
        "甲" * 10 + "1" + "乙" * 10,
        "乙",
        "乙" * 10 + "2" + "丙" * 10,
        "丙" * 5,
    ]


def test_an_island_grows_to_120_characters_then_a_new_one_starts():
    clause = "1a" * 100  # a digit every other character
    # the digit at 110 would make it 121: the next island starts after the digit at 108
    assert [(len(p), d) for p, d in _island_pieces(clause)] == [(109, True), (91, True)]


def test_one_huge_run_of_digits_is_cut_every_120_characters():
    assert [(len(p), d) for p, d in _island_pieces("7" * 300)] == [
        (120, True),
        (120, True),
        (60, True),
    ]
    # with words around it: cuts fall between numbers, never inside one
    clause = "甲" * 30 + "12345 " * 40 + "乙" * 30
    pieces = _island_pieces(clause)
    assert pieces[0] == ("甲" * 20, False) and pieces[-1][1] is False
    for (left, _), (right, _) in itertools.pairwise(pieces):
        assert not (left[-1].isdigit() and right[0].isdigit()), (left, right)
    assert len(pieces) == 5  # 240 characters of numbers with context: three islands


def test_a_clause_over_44_characters_is_read_in_islands(normalizer, monkeypatch):
    seen: list[str] = []
    piece = Normalizer._piece

    def spy(self: Normalizer, text: str) -> str:
        seen.append(text)
        return piece(self, text)

    monkeypatch.setattr(Normalizer, "_piece", spy)
    short = "甲" * 21 + "1" + "乙" * 22  # 44 characters: read whole
    normalizer.normalize(short)
    assert seen == [short]
    seen.clear()
    normalizer.normalize(short + "丙")  # 45: only the number and its context
    assert seen == ["甲" * 10 + "1" + "乙" * 10]


def test_spaces_around_a_piece_survive_the_grammars(normalizer):
    assert normalizer.normalize("甲 3个 乙") == "甲 三个 乙"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("安宁区 安宁地区\n", "lexicon.tsv:1: expected"),  # no tab
        ("# pronunciations\n\n安宁区\t\n", "lexicon.tsv:3: expected"),
        ("  \t安宁地区\n", "lexicon.tsv:1: expected"),
    ],
)
def test_a_lexicon_line_without_two_fields_names_its_line(tmp_path, text, problem):
    from service.errors import ConfigError
    from service.text.normalize import load_lexicon

    path = tmp_path / "lexicon.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_lexicon(path)


def test_a_lexicon_skips_blank_lines_and_comments_and_trims_fields(tmp_path):
    from service.text.normalize import load_lexicon

    path = tmp_path / "lexicon.tsv"
    path.write_text(
        "# comment\n\n   \n  # indented comment\n 安宁区 \t 安宁地区 \n", encoding="utf-8"
    )
    assert load_lexicon(path) == {"安宁区": "安宁地区"}


@pytest.mark.parametrize("raw", [None, b"\xff\xfe bad"])
def test_an_unreadable_lexicon_is_a_config_error_naming_the_file(tmp_path, raw):
    from service.errors import ConfigError
    from service.text.normalize import load_lexicon

    path = tmp_path / "lexicon.tsv"
    if raw is not None:
        path.write_bytes(raw)  # not UTF-8
    with pytest.raises(ConfigError, match=r"cannot read the lexicon .*lexicon\.tsv"):
        load_lexicon(path)


def test_the_longest_lexicon_form_wins_everywhere_in_the_text(normalizer):
    from service.text.lexicon import Lexicon

    lexicon = Lexicon({"安宁": "安宁镇", "安宁区": "安宁地区"})
    assert normalizer.normalize("安宁区和安宁，安宁区", lexicon) == "安宁地区和安宁镇，安宁地区"


def test_a_lexicon_line_with_a_spoken_form_that_is_neither_chinese_nor_pinyin_names_it(
    tmp_path,
):
    from service.errors import ConfigError
    from service.text.normalize import load_lexicon

    path = tmp_path / "lexicon.tsv"
    path.write_text("茂蝶\tmao4 die2\n冒顿\tmo du\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lexicon\.tsv:2: the spoken form must be"):
        load_lexicon(path)
    path.write_text("茂蝶\tMao4  Die2\n", encoding="utf-8")
    assert load_lexicon(path) == {"茂蝶": "mao4 die2"}


def test_every_fullwidth_digit_reads_as_its_ascii_twin(normalizer):
    assert normalizer.normalize("编号１２３４５６７８９") == normalizer.normalize("编号123456789")


@pytest.mark.parametrize("text", ["约1/1的人", "约0/1的人"])
def test_one_over_one_and_zero_over_one_are_not_proper_fractions(normalizer, text):
    assert not re.match(r"约[零一]分之", normalizer.normalize(text))
