"""The text front-end (normalization, jieba segmentation) and MP3 encoding in worker
processes of their own.

Its Python code holds the interpreter lock for milliseconds at a time; run in the server
process it would delay every request while an article is being read. The worker builds
the same Normalizer (same lexicon, so the same version) and its own Segmenter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from service.text.chunks import Segmenter, chunk, utf8_len
from service.text.normalize import Normalizer

_normalizer: Normalizer | None = None
_segmenter: Segmenter | None = None


def init(parent: int, lexicon: Mapping[str, str], preload_jieba: bool = False) -> None:
    """Worker initializer (every worker): die with the server, give way to it, load the
    grammars and (when asked) jieba's dictionary."""
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    global _normalizer, _segmenter
    die_with_parent(parent)
    name_process("langdu-text")
    yield_cpu(5)
    _normalizer = Normalizer(lexicon=lexicon)
    _normalizer.warm_up()
    _segmenter = Segmenter()
    if preload_jieba:
        _segmenter.warm_up()


def warm_up(segmenter: bool) -> int:
    """Load jieba too (when asked); returns this worker's process id (a worker answers
    only once its initializer has run: the caller can tell which workers are ready)."""
    assert _normalizer is not None and _segmenter is not None
    if segmenter:
        _segmenter.warm_up()
    return os.getpid()


def normalize(text: str) -> str:
    assert _normalizer is not None
    return _normalizer.normalize(text)


def chunks(spoken: str, budget: int) -> list[str]:
    """A sentence's spoken form in engine-sized chunks."""
    assert _segmenter is not None
    if utf8_len(spoken) <= budget:
        return [spoken]
    return chunk(spoken, budget=budget, segmenter=_segmenter)


def words(text: str) -> list[str] | None:
    """jieba's words of `text`, or None if this worker has not loaded jieba."""
    assert _segmenter is not None
    return _segmenter.words(text) if _segmenter.loaded else None
