"""Cut a sentence into chunks that fit an engine's budget, never inside a word or number."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

_CLAUSE_END = re.compile(r"(?<=[，,、：:；;—])")
_ALNUM_RUN = re.compile(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ]")
_RUN_GLUE = frozenset({".", "-", "+", "%", "_"})  # 3.5, COVID-19, 1+N, 5%: one run


class Segmenter:
    """jieba word segmentation with its dictionary loaded once, on first use or at warm-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cut: Callable[[str], list[str]] | None = None

    def warm_up(self) -> None:
        """Load the dictionary now (about 0.6 s) instead of on the first long sentence."""
        with self._lock:
            if self._cut is None:
                import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                self._cut = lambda text: list(tokenizer.cut(text, HMM=True))

    @property
    def loaded(self) -> bool:
        """True once the dictionary is in memory."""
        return self._cut is not None

    def words(self, text: str) -> list[str]:
        """The jieba words of `text`; joined they give `text` back exactly."""
        if self._cut is None:
            self.warm_up()
        assert self._cut is not None
        return _merge_alnum(self._cut(text))


def _merge_alnum(words: list[str]) -> list[str]:
    """Glue neighbouring Latin/digit tokens so a run like 'COVID-19' or '3.5' is never cut."""
    out: list[str] = []
    for w in words:
        joins_run = bool(w) and (_ALNUM_RUN.match(w[0]) is not None or w in _RUN_GLUE)
        if out and joins_run and _ALNUM_RUN.match(out[-1][-1]):
            out[-1] += w
        else:
            out.append(w)
    return out


def utf8_len(text: str) -> int:
    """Size of `text` in UTF-8 bytes: what engine budgets (edge-tts: 4096) count."""
    return len(text.encode("utf-8"))


def _pack(pieces: list[str], budget: int) -> list[str]:
    """Greedily join consecutive pieces while the join fits the budget."""
    out: list[str] = []
    size = 0
    for piece in pieces:
        n = utf8_len(piece)
        if out and size + n <= budget:
            out[-1] += piece
            size += n
        else:
            out.append(piece)
            size = n
    return out


def _hard_cut(word: str, budget: int) -> list[str]:
    """Last resort for one 'word' longer than the budget (e.g. a URL): cut at characters."""
    out: list[str] = []
    cur = ""
    for ch in word:
        if cur and utf8_len(cur) + utf8_len(ch) > budget:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def chunk(text: str, *, budget: int, segmenter: Segmenter) -> list[str]:
    """Split `text` into chunks of at most `budget` UTF-8 bytes.

    Cuts at clause punctuation first, then at jieba word boundaries; a word is only cut
    when it alone exceeds the budget. Joining the chunks gives `text` back exactly.

    Raises:
        ValueError: the budget is too small to hold one character.
    """
    if budget < 4:
        raise ValueError("chunk budget must be at least 4 bytes")
    if utf8_len(text) <= budget:
        return [text] if text else []
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(text):
        if not clause:
            continue
        if utf8_len(clause) <= budget:
            pieces.append(clause)
            continue
        for word in segmenter.words(clause):
            pieces.extend([word] if utf8_len(word) <= budget else _hard_cut(word, budget))
    return _pack(pieces, budget)
