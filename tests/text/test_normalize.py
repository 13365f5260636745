"""Normalization: the spoken form of news sentences."""

from __future__ import annotations

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
