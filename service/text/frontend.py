"""The text front-end (normalization, jieba segmentation) and MP3 encoding in worker
processes of their own.

Its Python code holds the interpreter lock for milliseconds at a time; run in the server
process it would delay every request while an article is being read. The worker builds
the same Normalizer (same version) and its own Segmenter; the lexicon entries that may apply
come with each sentence.
"""

from __future__ import annotations

import functools
import os

from service.text.chunks import Segmenter, chunk, utf8_len
from service.text.lexicon import Lexicon
from service.text.normalize import Normalizer

_normalizer: Normalizer | None = None
_segmenter: Segmenter | None = None


def init(parent: int, preload_jieba: bool = False) -> None:
    """Worker initializer (every worker): die with the server, give way to it, load the
    grammars and (when asked) jieba's dictionary."""
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    global _normalizer, _segmenter
    die_with_parent(parent)
    name_process("langdu-text")
    yield_cpu(5)
    _segmenter = Segmenter()
    _normalizer = Normalizer(segmenter=_segmenter)
    _normalizer.warm_up()
    if preload_jieba:
        _segmenter.warm_up()


def warm_up(segmenter: bool) -> int:
    """Load jieba too (when asked); returns this worker's process id (a worker answers
    only once its initializer has run: the caller can tell which workers are ready)."""
    assert _normalizer is not None and _segmenter is not None
    if segmenter:
        _segmenter.warm_up()
    return os.getpid()


@functools.lru_cache(maxsize=256)
def _lexicon(entries: tuple[tuple[str, str], ...]) -> Lexicon:
    return Lexicon(entries)


def normalize(text: str, entries: tuple[tuple[str, str], ...] = (), pinyin: bool = False) -> str:
    """A sentence's spoken form, `entries` of the lexicon applied (see Normalizer)."""
    assert _normalizer is not None
    return _normalizer.normalize(text, _lexicon(entries) if entries else None, pinyin=pinyin)


def chunks(spoken: str, budget: int) -> list[str]:
    """A sentence's spoken form in engine-sized chunks."""
    assert _segmenter is not None
    if utf8_len(spoken) <= budget:
        return [spoken]
    return chunk(spoken, budget=budget, segmenter=_segmenter)


def words(text: str, extra: tuple[str, ...] = ()) -> list[str] | None:
    """jieba's words of `text` (`extra` known as words too), or None if this worker has not
    loaded jieba."""
    assert _segmenter is not None
    if not _segmenter.loaded:
        return None
    return _segmenter.words_with(text, extra) if extra else _segmenter.words(text)
