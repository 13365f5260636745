"""The newsroom's pronunciations: checked forms, word boundaries, and each engine's form."""

from __future__ import annotations

import pytest

from service.engines.kokoro_text import phonemize, syllable_ipa
from service.engines.mandarin import plain, read
from service.text.align import place_words
from service.text.chunks import Segmenter, chunk
from service.text.homophones import TABLE
from service.text.lexicon import Lexicon, engine_form, homophone_spelling, spoken_form, written_form
from service.text.normalize import Normalizer

_SEGMENTER = Segmenter()


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    n = Normalizer(segmenter=_SEGMENTER)
    n.warm_up()
    return n


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("墨独", "墨独"),
        ("  阿卜杜拉·阿齐兹 ", "阿卜杜拉·阿齐兹"),
        ("Mao4  Die2", "mao4 die2"),
        ("lü4 shi1", "lv4 shi1"),
        ("nve4", "nve4"),
        ("de5", "de5"),
    ],
)
def test_a_spoken_form_is_chinese_or_pinyin_with_tones_kept_in_one_spelling(given, kept):
    assert spoken_form(given) == kept


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "empty"),
        ("mao die", "must be Chinese characters or pinyin"),
        ("mao6", "must be Chinese characters or pinyin"),
        ("mao4 茂", "must be Chinese characters or pinyin"),
        ("GDP", "must be Chinese characters or pinyin"),
        ("3个", "must be Chinese characters or pinyin"),
        ("xyz1", "not a Mandarin syllable: xyz1"),
        ("ma1 " * 20, "longer than"),
    ],
)
def test_a_spoken_form_that_is_neither_is_refused_with_why(given, problem):
    with pytest.raises(ValueError, match=problem):
        spoken_form(given)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("  ", "empty"),
        ("，。", "no letter"),
        ("a{b", "brace"),
        ("甲\n乙", "control"),
        ("长" * 33, "longer"),
    ],
)
def test_a_written_form_that_cannot_be_matched_is_refused(given, problem):
    with pytest.raises(ValueError, match=problem):
        written_form(given)


def test_every_homophone_is_read_as_its_syllable_first():
    """The table the engines without pinyin get: each character's first reading is the
    syllable (most have no other reading)."""
    from pypinyin import Style, pinyin

    table = [line.split(" ") for line in TABLE.strip().splitlines()]
    assert len(table) > 1300
    wrong = [
        (syllable, ch)
        for syllable, ch in table
        if pinyin(ch, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0][0]
        != syllable
    ]
    assert wrong == []
    assert homophone_spelling("mao4 die2") == "帽叠"
    # A tone no character has: the nearest one that has it (the neutral tone first).
    assert homophone_spelling("den1") == homophone_spelling("den4")


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("行长说", "航掌说"),  # a word of its own
        ("银行长期贷款", "银行长期贷款"),  # 行长 inside 银行 / 长期: never
        ("记者茂蝶报道", "记者帽叠报道"),  # a name jieba does not know
        ("GDP增长了5%", "国内生产总值增长了百分之五"),
        ("GDPR生效", "GDPR生效"),  # Latin letters around: another word
        ("新GDP", "新国内生产总值"),
    ],
)
def test_entries_apply_on_word_boundaries_only(normalizer, text, spoken):
    lexicon = Lexicon({"行长": "hang2 zhang3", "茂蝶": "mao4 die2", "GDP": "国内生产总值"})
    assert normalizer.normalize(text, lexicon) == spoken


def test_pinyin_reaches_a_pinyin_engine_marked_up_and_others_as_homophones(normalizer):
    lexicon = Lexicon({"茂蝶": "mao4 die2"})
    text = "记者茂蝶报道3个"
    assert normalizer.normalize(text, lexicon, pinyin=True) == "记者{mao4 die2}报道三个"
    assert normalizer.normalize(text, lexicon, pinyin=False) == "记者帽叠报道三个"
    assert engine_form("墨独", pinyin=True) == "墨独"


def test_numbers_next_to_an_entry_are_still_read(normalizer):
    lexicon = Lexicon({"茂蝶": "mao4 die2"})
    assert normalizer.normalize("2024年茂蝶增长3.5%", lexicon) == "二零二四年帽叠增长百分之三点五"


def test_an_entry_moves_the_printed_words_nowhere():
    """Captions and highlighting keep the text as printed: a word heard in the marked
    spoken form is placed on the written form it stands for."""
    original, spoken = "记者茂蝶报道", "记者{mao4 die2}报道"
    phones = phonemize(spoken)
    marks = [(o, n, float(i), float(i + 1)) for i, (o, n) in enumerate(phones.words)]
    placed = [
        (original[w.offset : w.offset + w.length]) for w in place_words(original, spoken, marks)
    ]
    assert placed == ["记者", "茂蝶", "报道"]


def test_the_neural_front_end_reads_the_pinyin_as_given_without_sandhi():
    marked = "{ni3 hao3}，很好"
    stand_in = plain(marked)
    reading = read(stand_in.text, stand_in.given)
    assert reading.syllables[:2] == ["ni3", "hao3"]  # given: no 3-3 sandhi
    assert reading.syllables[3] == "hen2"  # the text's own 很好 still has it
    phones = phonemize("{mao4 die2}")
    ipa_mao, ipa_die = syllable_ipa("mao4"), syllable_ipa("die2")
    assert ipa_mao and ipa_die and phones.text == ipa_mao + ipa_die
    # 儿 merges into the syllable before it (哪儿), never into or out of a given one.
    assert len(phonemize("哪儿").units) == 1
    assert len(phonemize("哪{er2}").units) == len(phonemize("{na3}儿").units) == 2


def test_a_chunk_never_holds_half_of_a_marked_entry():
    text = "很长的一段话没有标点符号" * 3 + "{mao4 die2}{hang2 zhang3}报道" + "没有标点符号" * 5
    for budget in range(20, 80, 3):
        chunks = chunk(text, budget=max(budget, 30), segmenter=_SEGMENTER)
        assert "".join(chunks) == text
        assert all(c.count("{") == c.count("}") for c in chunks), chunks


def test_the_cut_with_added_words_leaves_the_dictionary_as_it_was():
    before = _SEGMENTER.words("记者茂蝶报道茂蝶")
    assert _SEGMENTER.words_with("记者茂蝶报道茂蝶", ["茂蝶", "冒顿单于"]) == [
        "记者",
        "茂蝶",
        "报道",
        "茂蝶",
    ]
    assert _SEGMENTER.words("记者茂蝶报道茂蝶") == before
    assert _SEGMENTER.words("冒顿单于") == _SEGMENTER.words_with("冒顿单于", [])


def test_an_article_lexicon_holds_only_the_entries_its_text_holds():
    lexicon = Lexicon({"茂蝶": "mao4 die2", "冒顿": "墨独"})
    assert lexicon.within("茂蝶报道").entries == {"茂蝶": "mao4 die2"}
    assert not lexicon.within("没有")
    assert lexicon.within("茂蝶冒顿") is lexicon
    assert Lexicon({"冒顿": "墨独"}).digest != Lexicon({"冒顿": "莫顿"}).digest
    assert Lexicon().digest == ""
