"""The newsroom's pronunciations: a written form (a name, a place, a term) and how it is said.

A spoken form is Chinese text (`冒顿` said as `墨独`) or tone-numbered pinyin (`mo4 du2`).
An entry applies on word boundaries only, never inside a longer word: a Latin or digit edge
must not touch another letter or digit, and a Han edge must fall between two of jieba's
words (the lexicon's own forms known to jieba as words for the cut). The text as printed is
never changed: the normalizer marks where an entry applies and the engine is given the
entry in the form it reads (`engine_form`): pinyin as `{mo4 du2}` for the offline neural
voices, whose front ends read it syllable by syllable, a homophone spelling in common
characters for engines that take only text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from service.text.homophones import TABLE
from service.text.homophones import VERSION as HOMOPHONES_VERSION

__all__ = [
    "HOMOPHONES_VERSION",
    "MARKUP",
    "Lexicon",
    "engine_form",
    "homophone_spelling",
    "is_pinyin",
    "spoken_form",
    "written_form",
]

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_WRITTEN = 32
MAX_SPOKEN = 64
# Pinyin as the neural voices' front ends are given it: {mao4 die2}.
MARKUP = re.compile(r"\{([a-z]+[1-5](?: [a-z]+[1-5])*)\}")
_PINYIN = re.compile(r"[a-z]+[1-5]")  # as kept: ü written v
_CHINESE = re.compile(rf"{HAN.pattern}+(?:[ ·]{HAN.pattern}+)*")
# Where an entry applies, the normalizer's rules see one private-use character (which no
# rule and no grammar touches): entry k of a sentence is U+E000 + k.
_SENTINEL_BASE = 0xE000
_SENTINEL_MAX = 0x1000
SENTINEL = re.compile("[\ue000-\uefff]")

WordsWith = Callable[[str, Sequence[str]], list[str]]
"""jieba's words of a text, with some more words known for the cut."""


@functools.cache
def _table() -> dict[str, str]:
    return dict(line.split(" ", 1) for line in TABLE.strip().splitlines())


@functools.cache
def _bases() -> frozenset[str]:
    return frozenset(s[:-1] for s in _table())


def written_form(written: str) -> str:
    """A written form as kept: one to MAX_WRITTEN characters on one line, holding a letter,
    digit or Han character, with no braces (the pinyin markup) or private-use characters.

    Raises:
        ValueError: what is wrong with it.
    """
    text = written.strip()
    if not text:
        raise ValueError("the written form is empty")
    if len(text) > MAX_WRITTEN:
        raise ValueError(f"the written form is longer than {MAX_WRITTEN} characters")
    if any(not ch.isprintable() for ch in text) or "{" in text or "}" in text:
        raise ValueError("the written form holds a control character or a brace")
    if SENTINEL.search(text):
        raise ValueError("the written form holds a private-use character")
    if not any(ch.isalnum() for ch in text):
        raise ValueError("the written form has no letter, digit or Han character")
    return text


def spoken_form(spoken: str) -> str:
    """How an entry is said, as kept: Chinese text (Han characters, words apart by a space
    or ·), or pinyin syllables with tone numbers 1-5 (5: neutral), apart by spaces;
    `ü` may be written `v`. Pinyin comes back lower case with `v`.

    Raises:
        ValueError: neither, or a syllable Mandarin does not have.
    """
    text = " ".join(spoken.split())
    if not text:
        raise ValueError("the spoken form is empty")
    if len(text) > MAX_SPOKEN:
        raise ValueError(f"the spoken form is longer than {MAX_SPOKEN} characters")
    if _CHINESE.fullmatch(text):
        return text
    syllables = text.lower().replace("ü", "v").split(" ")
    if all(_PINYIN.fullmatch(s) for s in syllables):
        unknown = [s for s in syllables if s[:-1] not in _bases()]
        if unknown:
            raise ValueError(f"not a Mandarin syllable: {unknown[0]}")
        return " ".join(syllables)
    raise ValueError(
        "the spoken form must be Chinese characters or pinyin with tone numbers (mao4 die2)"
    )


def is_pinyin(spoken: str) -> bool:
    """Whether a (checked) spoken form is pinyin rather than Chinese text."""
    return spoken[:1].isascii()


def homophone_spelling(pinyin: str) -> str:
    """Pinyin as common characters read that way (mao4 die2 -> 帽叠), for engines that take
    only text. A syllable no character has in that tone takes the nearest tone that has one
    (the neutral tone first)."""
    table = _table()
    out = []
    for syllable in pinyin.split():
        base, tone = syllable[:-1], syllable[-1]
        for t in (tone, "5", "1", "2", "3", "4"):
            if base + t in table:
                out.append(table[base + t])
                break
    return "".join(out)


def engine_form(spoken: str, *, pinyin: bool) -> str:
    """An entry's spoken form as an engine is given it: Chinese text as it is; pinyin as
    `{mao4 die2}` for an engine whose front end reads pinyin, else its homophone spelling."""
    if not is_pinyin(spoken):
        return spoken.replace("·", " ")
    return "{" + spoken + "}" if pinyin else homophone_spelling(spoken)


def _edge_ok(text: str, at: int, *, start: bool, boundaries: Callable[[], frozenset[int]]) -> bool:
    """Whether an entry may start (or end) at `at`."""
    if at <= 0 or at >= len(text):
        return True
    inner, outer = (text[at], text[at - 1]) if start else (text[at - 1], text[at])
    if inner.isascii() and inner.isalnum():
        return not (outer.isascii() and outer.isalnum())
    if HAN.match(inner) and HAN.match(outer):
        return at in boundaries()
    return True


class Lexicon:
    """A set of pronunciations (written form -> checked spoken form), immutable."""

    def __init__(self, entries: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        self.entries: dict[str, str] = dict(sorted(items))
        self.digest = (
            hashlib.sha256(
                json.dumps(list(self.entries.items()), ensure_ascii=False).encode()
            ).hexdigest()[:16]
            if self.entries
            else ""
        )

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lexicon) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Lexicon({self.entries!r})"

    def within(self, text: str) -> Lexicon:
        """The entries whose written form occurs in `text` (they may apply to it)."""
        found = [(w, s) for w, s in self.entries.items() if w in text]
        return self if len(found) == len(self.entries) else Lexicon(found)

    def mark(self, text: str, words: WordsWith) -> tuple[str, list[str]]:
        """`text` with each place an entry applies replaced by a private-use character, and
        the spoken form each of them stands for (in order). Longer forms win; an entry
        applies only on word boundaries (`words` is jieba with the forms added).
        """
        candidates = sorted(
            (
                (start, -len(written), written)
                for written in self.entries
                for start in _occurrences(text, written)
            ),
        )
        if not candidates:
            return text, []
        forms = sorted({w for _, _, w in candidates})

        @functools.cache
        def boundaries() -> frozenset[int]:
            edges, at = {0}, 0
            for word in words(text, forms):
                at += len(word)
                edges.add(at)
            return frozenset(edges)

        out: list[str] = []
        spoken: list[str] = []
        cursor = 0
        for start, _, written in candidates:
            end = start + len(written)
            if start < cursor or len(spoken) >= _SENTINEL_MAX:
                continue
            if not (
                _edge_ok(text, start, start=True, boundaries=boundaries)
                and _edge_ok(text, end, start=False, boundaries=boundaries)
            ):
                continue
            out.append(text[cursor:start])
            out.append(chr(_SENTINEL_BASE + len(spoken)))
            spoken.append(self.entries[written])
            cursor = end
        out.append(text[cursor:])
        return "".join(out), spoken


def unmark(text: str, spoken: Sequence[str], *, pinyin: bool) -> str:
    """The marked `text` with each private-use character replaced by its entry's form for
    the engine (`engine_form`)."""
    if not spoken:
        return text

    def form(m: re.Match[str]) -> str:
        k = ord(m.group(0)) - _SENTINEL_BASE
        return engine_form(spoken[k], pinyin=pinyin) if k < len(spoken) else ""

    return SENTINEL.sub(form, text)


def _occurrences(text: str, written: str) -> list[int]:
    out = []
    at = text.find(written)
    while at >= 0:
        out.append(at)
        at = text.find(written, at + 1)
    return out
