"""Sentence splitting for Chinese news prose (mixed Chinese and ASCII punctuation)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sentence:
    """The unit timings, captions, highlighting and the per-sentence cache share."""

    index: int
    paragraph: int
    text: str  # as on the page, for captions and highlighting


_TERMINATORS = frozenset("。！？；…!?;")
_CLOSERS = frozenset("”’」』）》】〕〉）\"')]}")
_PAIRS = {"“": "”", "‘": "’", "「": "」", "『": "』", "（": "）", "(": ")", "《": "》", "【": "】"}
_CLOSING = frozenset(_PAIRS.values())
# A terminator inside a quotation does not end the sentence when the quotation closes soon
# after: 他说：“我很好。你呢？” stays one sentence. An unclosed quote (common in scraped
# news) must not swallow the rest of the paragraph, so this only looks this far ahead.
_QUOTE_LOOKAHEAD = 120


def _quote_closes(text: str) -> list[int]:
    """For each position, where the innermost quotation open there closes (-1: none). O(n)."""
    match: dict[int, int] = {}
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in _PAIRS:
            stack.append((_PAIRS[ch], i))
        elif ch in _CLOSING and any(want == ch for want, _ in stack[-8:]):
            # Pop to the matching opener (looking a few levels deep); stray closers are ignored.
            while stack:
                want, at = stack.pop()
                if want == ch:
                    match[at] = i
                    break
    closes = [-1] * len(text)
    open_at: list[int] = []
    for i in range(len(text)):
        while open_at and match.get(open_at[-1], -1) < i:
            open_at.pop()
        if open_at:
            closes[i] = match[open_at[-1]]
        if i in match:
            open_at.append(i)
    return closes


def _is_full_stop(text: str, i: int) -> bool:
    """An ASCII '.' ends a sentence only before a space, the end, or non-ASCII text."""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt and (nxt.isascii() and not nxt.isspace()) and nxt not in _CLOSERS:
        return False  # 83.19, No.1, www.gov.cn, U.S
    prev = text[i - 1] if i > 0 else ""
    return not (prev.isdigit() and nxt.isdigit())


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences, keeping each one's punctuation and closing quotes.

    Splits after 。！？；… and ASCII ! ? ; . (never on a decimal point), taking any closing
    quotes or brackets that follow with the sentence they close. The pieces joined back
    together give the paragraph, less the whitespace around them.
    """
    text = paragraph.strip()
    closes = _quote_closes(text)
    out: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _TERMINATORS or (ch == "." and _is_full_stop(text, i)):
            j = i + 1
            while j < n and (text[j] in _TERMINATORS or text[j] == "."):
                j += 1
            while j < n and text[j] in _CLOSERS:
                j += 1
            end_quote = closes[i]
            if end_quote >= j and end_quote - i <= _QUOTE_LOOKAHEAD:
                i = j
                continue
            _append(out, text[start:j].strip())
            start = j
            i = j
        else:
            i += 1
    _append(out, text[start:].strip())
    return out


def _append(out: list[str], piece: str) -> None:
    if not piece:
        return
    if out and not any(c.isalnum() for c in piece):
        out[-1] += piece  # a run of bare punctuation belongs to the sentence before it
    else:
        out.append(piece)
