"""Sentence timings in the finished audio, as JSON for clients and WebVTT captions, and the
sentence audio they are measured from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.audio.mp3 import ENCODER_DELAY, Mp3Part, ms_of
from service.text.align import PlacedWord
from service.text.sentences import Sentence


@dataclass(frozen=True, slots=True)
class SentenceAudio:
    """A sentence's spoken form and audio, and the pause that follows it (if any)."""

    sentence: Sentence
    spoken: str
    speech: Mp3Part
    pause: Mp3Part | None
    words: tuple[PlacedWord, ...] = ()  # the speech's words, placed on the sentence's text
    # The first piece of a sentence whose rest is the next part: streamed before the rest is
    # made (a slow engine's first audio); the timeline keeps the two as one sentence.
    lead: bool = False


@dataclass(frozen=True, slots=True)
class WordTiming:
    """Where one word is heard: [start_ms, end_ms) in the final audio; `offset` into its
    sentence's text as printed, `text` the word as printed (83.19% is one word)."""

    start_ms: int
    end_ms: int
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class SentenceTiming:
    """Where one sentence is heard: [start_ms, end_ms) in the final audio, and its words
    when the engine times them."""

    index: int
    paragraph: int
    start_ms: int
    end_ms: int
    text: str
    spoken: str
    words: tuple[WordTiming, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # Built by hand: asdict deep-copies, and live timings are asked for while reading.
        doc: dict[str, Any] = {
            "index": self.index,
            "paragraph": self.paragraph,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "text": self.text,
            "spoken": self.spoken,
        }
        if self.words:  # optional: engines that do not time words have none
            doc["words"] = [
                {"start_ms": w.start_ms, "end_ms": w.end_ms, "text": w.text, "offset": w.offset}
                for w in self.words
            ]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SentenceTiming:
        words = tuple(WordTiming(**w) for w in doc.get("words", ()))
        return cls(**{**doc, "words": words})


class Timeline:
    """Accumulates sentence parts in playing order and knows where each one sounds."""

    def __init__(self) -> None:
        self.sentences: list[SentenceTiming] = []
        self._samples = 0
        self._rate = 0
        self._open = False  # the last part was a lead piece: the next one completes it

    def add(self, part: SentenceAudio) -> None:
        """Place the next sentence (and its pause) at the end of the audio so far; a part
        that follows a lead piece completes its sentence."""
        rate = part.speech.sample_rate
        if self._rate and rate != self._rate:
            raise ValueError("one article's parts must share a sample rate")
        self._rate = rate
        start = self._samples + ENCODER_DELAY
        end = start + part.speech.content_samples
        start_ms, end_ms = ms_of(start, rate), ms_of(end, rate)
        text = part.sentence.text
        lead = self.sentences.pop() if self._open else None
        shift = len(lead.text) if lead is not None else 0
        words = tuple(
            WordTiming(
                start_ms=min(end_ms, start_ms + round(w.start_ms)),
                end_ms=min(end_ms, start_ms + round(w.end_ms)),
                text=text[w.offset : w.offset + w.length],
                offset=shift + w.offset,
            )
            for w in part.words
        )
        self.sentences.append(
            SentenceTiming(
                index=part.sentence.index,
                paragraph=part.sentence.paragraph,
                start_ms=start_ms if lead is None else lead.start_ms,
                end_ms=end_ms,
                text=text if lead is None else lead.text + text,
                spoken=part.spoken if lead is None else lead.spoken + part.spoken,
                words=words if lead is None else lead.words + words,
            )
        )
        self._open = part.lead
        self._samples += part.speech.samples + (part.pause.samples if part.pause else 0)

    @property
    def duration_ms(self) -> int:
        """Playing time of everything added so far."""
        return ms_of(self._samples, self._rate) if self._rate else 0

    def to_json(self, *, voice: str) -> dict[str, Any]:
        """The timings document clients rely on."""
        return {
            "duration_ms": self.duration_ms,
            "voice": voice,
            "sentences": [s.to_json() for s in self.sentences],
        }


def _vtt_time(ms: int) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def _vtt_text(text: str) -> str:
    # Cue text is parsed as markup: escape it, and keep "-->" from ending the cue early.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def to_vtt(sentences: Iterable[SentenceTiming]) -> str:
    """WebVTT captions, one cue per sentence, cue text = the sentence as on the page."""
    cues = ["WEBVTT", ""]
    for s in sentences:
        cues += [
            str(s.index + 1),
            f"{_vtt_time(s.start_ms)} --> {_vtt_time(s.end_ms)}",
            _vtt_text(s.text),
            "",
        ]
    return "\n".join(cues)


def vtt_from_json(doc: dict[str, Any]) -> str:
    """WebVTT captions from a stored timings document."""
    return to_vtt(SentenceTiming.from_json(s) for s in doc.get("sentences", []))
