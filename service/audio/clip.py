"""An audio clip as engines make it: mono 16-bit PCM, and where its words are heard."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WordMark:
    """Where one word of a chunk is heard: (offset, length) in the chunk's text, [start_ms,
    end_ms) in its clip."""

    offset: int
    length: int
    start_ms: float
    end_ms: float


def word_marks(rows: object) -> tuple[WordMark, ...]:
    """Word marks from a worker's [[offset, length, start_ms, end_ms], ...] (none if absent
    or malformed: words are an extra, never a reason to lose the audio)."""
    if not isinstance(rows, list):
        return ()
    try:
        return tuple(
            WordMark(offset=int(o), length=int(n), start_ms=float(a), end_ms=float(b))
            for o, n, a, b in rows
        )
    except (TypeError, ValueError):
        return ()


@dataclass(frozen=True, slots=True)
class Clip:
    """Audio for one chunk: signed 16-bit little-endian mono PCM, and where its words fall
    (for engines that say: edge-tts word boundaries, espeak-ng word events, the neural
    model's durations)."""

    pcm: bytes
    sample_rate: int
    words: tuple[WordMark, ...] = ()

    @property
    def duration_ms(self) -> float:
        """Length of the clip in milliseconds."""
        return len(self.pcm) / 2 / self.sample_rate * 1000
