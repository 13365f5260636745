"""Cut a sentence into chunks that fit an engine's budget, never inside a word or number."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

from service.text.lexicon import MARKUP

_CLAUSE_END = re.compile(r"(?<=[，,、：:；;—])")
_ALNUM_RUN = re.compile(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ]")
_RUN_GLUE = frozenset({".", "-", "+", "%", "_"})  # 3.5, COVID-19, 1+N, 5%: one run


class Segmenter:
    """jieba word segmentation with its dictionary loaded once, on first use or at warm-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cutting = threading.Lock()  # a cut never sees another's added words
        self._tokenizer: Any = None

    def warm_up(self) -> None:
        """Load the dictionary now (about 0.6 s) instead of on the first long sentence."""
        with self._lock:
            if self._tokenizer is None:
                import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                self._tokenizer = tokenizer

    @property
    def loaded(self) -> bool:
        """True once the dictionary is in memory."""
        return self._tokenizer is not None

    def _cut(self, text: str) -> list[str]:
        if self._tokenizer is None:
            self.warm_up()
        with self._cutting:
            return list(self._tokenizer.cut(text, HMM=True))

    def words(self, text: str) -> list[str]:
        """The jieba words of `text`; joined they give `text` back exactly."""
        return _merge_alnum(self._cut(text))

    def words_with(self, text: str, extra: Sequence[str]) -> list[str]:
        """jieba's words of `text` with the words `extra` known too (each as often as jieba
        needs to keep it whole on its own), for this cut only: the dictionary is as it was
        afterwards, so every cut depends on its own input alone."""
        if self._tokenizer is None:
            self.warm_up()
        tk = self._tokenizer
        with self._cutting:
            freq: dict[str, int] = tk.FREQ
            total = tk.total
            before = {w[:i]: freq.get(w[:i]) for w in extra for i in range(1, len(w) + 1)}
            try:
                for word in sorted(extra):
                    tk.add_word(word)
                return list(tk.cut(text, HMM=True))
            finally:
                for word, count in before.items():
                    if count is None:
                        freq.pop(word, None)
                    else:
                        freq[word] = count
                tk.total = total


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


def _whole_markup(text: str, words: list[str]) -> list[str]:
    """`words` with the pieces of each lexicon pinyin markup ({mao4 die2}) joined: an engine
    is never given half of one."""
    spans = [(m.start(), m.end()) for m in MARKUP.finditer(text)]
    if not spans:
        return words
    out: list[str] = []
    at = 0
    for word in words:
        inside = any(start < at < end for start, end in spans)
        if inside and out:
            out[-1] += word
        else:
            out.append(word)
        at += len(word)
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
        for word in _whole_markup(clause, segmenter.words(clause)):
            pieces.extend([word] if utf8_len(word) <= budget else _hard_cut(word, budget))
    return _pack(pieces, budget)
