"""Normalization: the spoken form of news sentences."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_every_row_of_the_public_case_table(normalizer, cases_tsv):
    failures = []
    rows = _cases(cases_tsv)
    assert len(rows) >= 40
    for source, alternatives in rows:
        got = normalizer.normalize(source)
        if _comparable(got) not in alternatives:
            failures.append(f"{source} -> {got} (want {' | '.join(alternatives)})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("source", "spoken"), [
    ("热线电话：0931-8123456", "热线电话：零九三一八一二三四五六"),
    ("请拨打13912345678咨询", "请拨打一三九一二三四五六七八咨询"),
    ("COVID-19疫情", "COVID 十九疫情"),
    ("互联网+政务服务", "互联网加政务服务"),
    ("2019-2020年度", "二零一九年至二零二零年度"),
    ("气温-12℃", "气温零下十二摄氏度"),
    ("增幅12%-15%", "增幅百分之十二至百分之十五"),
    ("共１２３个", "共一百二十三个"),
    ("获得第2名", "获得第二名"),
    ("记者田玥文/图", "记者田玥文、图"),
])
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


def test_read_digits_and_speakable():
    assert read_digits("0931") == "零九三一"
    assert is_speakable("……“好”")
    assert not is_speakable("……“”！？ \n")
