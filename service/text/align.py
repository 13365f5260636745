"""Words heard in the spoken (normalized) text, placed back on the text as printed.

Normalization rewrites numbers, dates and units (83.19% -> 百分之八十三点一九), so a word
the engine times in the spoken text is mapped back through a character alignment of the
two texts: characters that did not change map to themselves, a rewritten stretch maps as
a whole to what it replaced, and spoken words that fall in the same rewritten stretch
become one word on the page (83.19% is one word, however many the engine heard in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True, slots=True)
class PlacedWord:
    offset: int  # into the original text
    length: int
    start_ms: float
    end_ms: float


def _spans(original: str, spoken: str) -> list[tuple[int, int]]:
    """For each spoken character, the [start, end) of the original text it stands for."""
    if original == spoken:  # most sentences: nothing was rewritten
        return [(j, j + 1) for j in range(len(spoken))]
    out: list[tuple[int, int]] = [(0, 0)] * len(spoken)
    matcher = SequenceMatcher(None, original, spoken, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1):
                out[j1 + k] = (i1 + k, i1 + k + 1)
        elif tag in ("replace", "insert"):
            for j in range(j1, j2):
                out[j] = (i1, i2)  # an insertion stands for nothing printed: (i1, i1)
    return out


def place_words(
    original: str, spoken: str, words: Sequence[tuple[int, int, float, float]]
) -> list[PlacedWord]:
    """`words` as (offset, length, start_ms, end_ms) in `spoken`, placed on `original`;
    words that stand for nothing printed (inserted by normalization) join a neighbour."""
    spans = _spans(original, spoken)
    placed: list[PlacedWord] = []
    for offset, length, start, end in sorted(words):
        chars = [spans[j] for j in range(offset, min(offset + length, len(spoken)))]
        chars = [c for c in chars if c[1] > c[0]]
        if not chars:
            if placed:  # stretch the previous word over the time of this one
                last = placed[-1]
                placed[-1] = PlacedWord(
                    last.offset, last.length, last.start_ms, max(end, last.end_ms)
                )
            continue
        lo, hi = min(c[0] for c in chars), max(c[1] for c in chars)
        if placed and lo < placed[-1].offset + placed[-1].length:
            # Overlaps the previous word on the page (both inside one rewritten stretch).
            last = placed[-1]
            hi = max(hi, last.offset + last.length)
            placed[-1] = PlacedWord(
                last.offset, hi - last.offset, last.start_ms, max(end, last.end_ms)
            )
            continue
        placed.append(PlacedWord(lo, hi - lo, start, end))
    return placed
