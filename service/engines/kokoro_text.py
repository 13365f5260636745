"""Kokoro's front end: spoken Mandarin text -> the phonemes Kokoro-82M v1.0 reads.

Readings come from langdu's own Mandarin front end (`service.engines.mandarin`: jieba words,
polyphones in context, tone sandhi, 儿 merged, letters spelled), so Kokoro says what the
normalizer and the lexicon wrote; each syllable becomes IPA with Kokoro's tone arrows through
misaki's pinyin table (the transcription Kokoro v1.0 was trained on). Words are separated by
spaces and clause punctuation is kept, as misaki writes them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from service.engines.mandarin import LETTERS, merges_er, plain, read
from service.text.lexicon import HAN

# Chinese and ASCII punctuation -> the punctuation symbols Kokoro knows.
PUNCTUATION = {
    "，": ",",
    "、": ",",
    ",": ",",
    "。": ".",
    "．": ".",
    ".": ".",
    "！": "!",
    "!": "!",
    "？": "?",
    "?": "?",
    "：": ":",
    ":": ":",
    "；": ";",
    ";": ";",
    "…": "…",
    "—": "—",
}
_QUOTES = {"“": "“", "”": "”", "《": "“", "》": "”", "「": "“", "」": "”", "（": "(", "）": ")"}
ERHUA = "ɚ"


@dataclass(frozen=True, slots=True)
class Unit:
    """One spoken unit (a Han character, 儿 merged: two; or a Latin letter): where it is in
    the text and which characters of the phoneme string speak it."""

    offset: int  # into the text (as marked up)
    length: int
    start: int  # into the phonemes
    end: int
    word: int  # which of jieba's words


@dataclass(frozen=True, slots=True)
class Phonemes:
    text: str  # what the model reads
    units: list[Unit]
    words: list[tuple[int, int]]  # (offset, length) of each word of the input text


@functools.cache
def syllable_ipa(syllable: str) -> str | None:
    """IPA with Kokoro's tone arrows for one pinyin syllable (TONE3), None if misaki's table
    does not know it."""
    from misaki.zh import ZHG2P

    if not syllable[-1:].isdigit():
        syllable += "5"
    try:
        # misaki marks non-syllabic vowels with U+032F, which Kokoro's table lacks (its own
        # G2P strips it too)
        return str(ZHG2P.py2ipa(syllable)).replace("\u032f", "")
    except (ValueError, KeyError, IndexError, AssertionError):
        return None


def phonemize(marked: str) -> Phonemes:
    """The phonemes that speak `marked` (its pinyin markup as given), and where each
    character falls in them.

    Raises:
        ValueError: the readings do not line up with the text.
    """
    stand_in = plain(marked)
    text = stand_in.text
    reading = read(text, stand_in.given)
    out = ""
    units: list[Unit] = []
    last_word = -1

    def space_before(word: int) -> str:
        nonlocal last_word
        gap = " " if out and not out.endswith((" ", "(", "“")) and word != last_word else ""
        last_word = word
        return gap

    i = 0
    while i < len(text):
        ch = text[i]
        word = reading.word_of[i]
        if HAN.match(ch):
            merged = merges_er(text, reading, i)
            ipa = syllable_ipa(reading.syllables[i])
            if ipa is not None:
                out += space_before(word)
                start = len(out)
                out += ipa + (ERHUA if merged else "")
                units.append(Unit(i, 2 if merged else 1, start, len(out), word))
            i += 2 if merged else 1
            continue
        if ch.upper() in LETTERS:
            out += space_before(word)
            start = len(out)
            spelled = [syllable_ipa(s) for s in LETTERS[ch.upper()]]
            out += "".join(s for s in spelled if s)
            units.append(Unit(i, 1, start, len(out), word))
            last_word = -1  # letters are read one by one
        elif ch in PUNCTUATION:
            out = out.rstrip(" ") + PUNCTUATION[ch] + " " if out else out
            last_word = -1
        elif ch in _QUOTES:
            mark = _QUOTES[ch]
            opening = mark in "“("
            out = (
                out.rstrip(" ") + (" " if opening and out else "") + mark + ("" if opening else " ")
            )
            last_word = -1
        else:  # a space or a symbol Kokoro has no phoneme for: a word boundary
            last_word = -1
        i += 1
    return Phonemes(
        text=out.rstrip(),
        units=[Unit(*stand_in.span(u.offset, u.length), u.start, u.end, u.word) for u in units],
        words=[stand_in.span(o, n) for o, n in reading.words],
    )
