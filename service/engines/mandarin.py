"""Mandarin readings for the offline neural voices' front ends: jieba's words, pypinyin's
readings chosen in context (polyphones: 银行 hang2, 行长 zhang3), tone sandhi (3-3, 一 and 不),
which 儿 merge into the syllable before them, and Latin letters as Mandarin speakers name them.

The text is langdu's spoken form (numbers, dates and units already written out), so the
lexicon, polyphone and number rules of the normalizer reach every voice that reads it. A
lexicon entry given in pinyin comes marked up, `{mao4 die2}` (service.text.lexicon): those
syllables are read exactly as given (`plain`, then `read` with them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from service.text.lexicon import HAN, MARKUP, homophone_spelling

CLAUSE = set("，、；：,;:。！？!?…—")
# Letters as Mandarin speakers name them, in syllables the model knows.
LETTERS: dict[str, tuple[str, ...]] = {
    "A": ("ei1",),
    "B": ("bi4",),
    "C": ("xi1",),
    "D": ("di4",),
    "E": ("yi4",),
    "F": ("ai2", "fu5"),
    "G": ("ji4",),
    "H": ("ai1", "qi1"),
    "I": ("ai4",),
    "J": ("jie4",),
    "K": ("kai4",),
    "L": ("ai2", "le5"),
    "M": ("ai2", "mu5"),
    "N": ("en1",),
    "O": ("ou1",),
    "P": ("pi1",),
    "Q": ("qiu1",),
    "R": ("a4", "er5"),
    "S": ("ai2", "si1"),
    "T": ("ti4",),
    "U": ("you1",),
    "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"),
    "X": ("ai2", "ke4", "si1"),
    "Y": ("wai1",),
    "Z": ("zei4",),
}
# Words whose 儿 is a syllable of its own (a child, a person), not the r-coloring.
FULL_ER = frozenset(
    [
        "女儿",
        "婴儿",
        "幼儿",
        "健儿",
        "孤儿",
        "胎儿",
        "患儿",
        "少儿",
        "男儿",
        "宠儿",
        "新生儿",
        "混血儿",
        "育儿",
        "托儿",
        "儿女",
        "孙儿",
        "弃儿",
        "犬儿",
        "侄儿",
        "妻儿",
        "雏儿",
        "产儿",
        "早产儿",
        "留守儿",
    ]
)


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading per character of a text: `syllables[i]` is pinyin with its tone number
    (TONE3) for a Han character, the character itself otherwise; `words` are jieba's
    (offset, length) and `word_of[i]` the word character i belongs to."""

    words: list[tuple[int, int]]
    word_of: list[int]
    syllables: list[str]
    given: frozenset[int] = frozenset()  # positions whose syllable the lexicon gave


@dataclass(frozen=True, slots=True)
class Plain:
    """A marked-up text with each pinyin syllable of its markup as one stand-in character
    (a character read that way): `where[i]` is the [start, end) in the marked text of
    character i, `given` the syllables the markup gave, by position in `text`."""

    text: str
    where: list[tuple[int, int]] = field(default_factory=list)
    given: dict[int, str] = field(default_factory=dict)

    def span(self, offset: int, length: int) -> tuple[int, int]:
        """(offset, length) in the marked text of `length` characters at `offset`."""
        if not self.given:
            return offset, length
        start = self.where[offset][0]
        return start, self.where[offset + length - 1][1] - start


def plain(marked: str) -> Plain:
    """`marked` with its pinyin markup ({mao4 die2}) as stand-in characters."""
    if "{" not in marked:
        return Plain(marked, [(i, i + 1) for i in range(len(marked))])
    out: list[str] = []
    where: list[tuple[int, int]] = []
    given: dict[int, str] = {}
    pos = 0
    for m in MARKUP.finditer(marked):
        for i in range(pos, m.start()):
            out.append(marked[i])
            where.append((i, i + 1))
        at = m.start(1)
        for syllable in m.group(1).split(" "):
            given[len(out)] = syllable
            out.append((homophone_spelling(syllable) or "嗯")[0])
            where.append((at, at + len(syllable)))
            at += len(syllable) + 1
        pos = m.end()
    for i in range(pos, len(marked)):
        out.append(marked[i])
        where.append((i, i + 1))
    return Plain("".join(out), where, given)


def read(text: str, given: Mapping[int, str] | None = None) -> Reading:
    """The reading of `text`, tone sandhi applied; `given` syllables (by position) are
    taken as they are.

    Raises:
        ValueError: the readings do not line up with the text.
    """
    import jieba
    from pypinyin import Style, lazy_pinyin

    words: list[tuple[int, int]] = []
    pos = 0
    for w in jieba.lcut(text, HMM=True):
        words.append((pos, len(w)))
        pos += len(w)
    word_of = [0] * len(text)
    for n, (start, length) in enumerate(words):
        for i in range(start, start + length):
            word_of[i] = n
    # One reading per character: pypinyin returns a non-Han run verbatim, as one item.
    syllables: list[str] = []
    pos = 0
    for item in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True):
        if text.startswith(item, pos) and not HAN.match(text[pos]):
            syllables.extend(item)
            pos += len(item)
        else:
            syllables.append(item)
            pos += 1
    if len(syllables) != len(text):
        raise ValueError("the readings do not line up with the text")
    for i, syllable in (given or {}).items():
        syllables[i] = syllable
    out = sandhi(syllables, words, text)
    for i, syllable in (given or {}).items():
        out[i] = syllable  # as the newsroom wrote it: no sandhi
    return Reading(words=words, word_of=word_of, syllables=out, given=frozenset(given or ()))


def merges_er(text: str, reading: Reading, i: int) -> bool:
    """Whether the 儿 after character `i` is the r-coloring of its syllable (哪儿), not a
    syllable of its own (女儿): it ends the same word, and the word is not one of those."""
    word_of, words = reading.word_of, reading.words
    return (
        i + 1 < len(text)
        and text[i + 1] == "儿"
        and i not in reading.given
        and i + 1 not in reading.given
        and word_of[i + 1] == word_of[i]
        and words[word_of[i]][0] + words[word_of[i]][1] == i + 2
        and text[words[word_of[i]][0] : i + 2] not in FULL_ER
    )


def sandhi(syllables: list[str], words: Sequence[tuple[int, int]], chars: str) -> list[str]:
    """Tone sandhi over pinyin with tones (TONE3 style), one per character of `chars`."""
    # 一 and 不 from their citation tones (pypinyin's phrases bake sandhi into some, like
    # 一名 yi4 ming2, and take 第一名 for 第 + 一名).
    out = [
        "yi1"
        if ch == "一" and s.startswith("yi")
        else "bu4"
        if ch == "不" and s.startswith("bu")
        else s
        for ch, s in zip(chars, syllables, strict=True)
    ]
    tone = [s[-1] if s and s[-1].isdigit() else "" for s in out]
    # 不 before a fourth tone is bu2; 一 before a fourth tone yi2, before others yi4, except
    # as a number (第一, 一是 counting, at the end, between numerals).
    for i, ch in enumerate(chars):
        nxt = tone[i + 1] if i + 1 < len(out) else ""
        if ch == "不" and out[i].startswith("bu") and nxt == "4":
            out[i], tone[i] = "bu2", "2"
        elif ch == "一" and out[i].startswith("yi") and nxt:
            ordinal = i > 0 and chars[i - 1] in "第十初"
            numeral = i + 1 < len(chars) and chars[i + 1] in "〇一二三四五六七八九十"
            # a date: 一月, 一号, 五月一日 (the month or day, not "one month", "one day")
            date = i + 1 < len(chars) and (
                chars[i + 1] in "月号" or (chars[i + 1] == "日" and i > 0 and chars[i - 1] == "月")
            )
            if ordinal or numeral or date:
                continue
            out[i] = "yi2" if nxt == "4" else "yi4"
            tone[i] = out[i][-1]
    # Third tone before third tone becomes second, inside a word (老板 lao2 ban3, 展览馆
    # zhan2 lan2 guan3), and from a one-character word into the next (很好 hen2 hao3).
    for n, (start, length) in enumerate(words):
        end = start + length
        for i in range(end - 2, start - 1, -1):
            if tone[i] == "3" and tone[i + 1] == "3":
                out[i], tone[i] = out[i][:-1] + "2", "2"
        if length == 1 and tone[start] == "3" and n + 1 < len(words):
            nxt_start = words[n + 1][0]
            if nxt_start == end and end < len(tone) and tone[end] == "3":
                out[start], tone[start] = out[start][:-1] + "2", "2"
    return out
