"""The one small interface every speech engine sits behind, and the values it trades in.

Clips and word marks are audio values (`service.audio.clip`), named here too because an
engine adapter speaks in them; `Network` is a setting (`service.config`), named here for the
same reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Re-exported: what an engine adapter trades in.
from service.audio.clip import Clip as Clip
from service.audio.clip import WordMark as WordMark
from service.audio.clip import word_marks as word_marks
from service.config import Network as Network
from service.errors import OptionError


@dataclass(frozen=True, slots=True)
class SpeechOptions:
    """How to speak: the engine's own voice name, speaking rate and pitch as edge-tts writes them.

    `rate` is a signed percentage ("+20%", "-10%"); `pitch` a signed offset in Hz ("+5Hz")
    or percent ("-10%").
    """

    voice: str
    rate: str = "+0%"
    pitch: str = "+0Hz"
    # The preset's [options] table (name, value) in name order: settings only its engine
    # reads (an upstream server's URL and model ...), checked by its check_options.
    extra: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str = "") -> str:
        """One of the preset's engine options."""
        return dict(self.extra).get(name, default)


@runtime_checkable
class Engine(Protocol):
    """Turns one chunk of spoken text into audio. Implementations never block the event loop.

    An engine slower than real time on a small machine may also say `first_piece = True`:
    the synthesizer then makes and streams a reading's first sentence in growing pieces
    (a short first one, cut at a clause or between words), each on its own. An engine
    whose front end reads pinyin says `reads_pinyin = True`: a lexicon entry given in pinyin
    then reaches it marked up, `{mao4 die2}` (`service.engines.mandarin.plain`), where other
    engines are given a homophone spelling in characters.
    """

    name: str
    version: str
    """Changes whenever the same text and options could sound different (render version)."""
    chunk_budget: int
    """Largest chunk, in UTF-8 bytes, that one `synthesize` call accepts."""
    sample_rate: int

    def check_options(self, options: SpeechOptions) -> None:
        """Refuse options this engine cannot speak with, before any work is queued.

        Raises:
            OptionError: the voice, rate or pitch is not one this engine accepts.
        """
        ...

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        """Speak `text`.

        Raises:
            EngineError: the engine produced no audio.
        """
        ...

    async def warm_up(self) -> None:
        """Get ready for the first chunk (start processes, open pools); idempotent.

        Raises:
            EngineError: the engine cannot start.
        """
        ...

    async def aclose(self) -> None:
        """Release processes, connections and threads."""
        ...


_RATE = re.compile(r"^([+-]?)(\d{1,3}(?:\.\d+)?)%$")
_PITCH = re.compile(r"^([+-]?)(\d{1,3}(?:\.\d+)?)(Hz|%)$")
MIN_RATE, MAX_RATE = -50.0, 200.0


def parse_rate(rate: str) -> float:
    """The speed factor of a rate such as "+20%" (1.2) or "-25%" (0.75).

    Raises:
        OptionError: malformed, or outside -50% .. +200%.
    """
    m = _RATE.match(rate.strip())
    if not m:
        raise OptionError(f"rate must look like +20% or -10%, got {rate!r}")
    pct = float(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    if not MIN_RATE <= pct <= MAX_RATE:
        raise OptionError(f"rate {rate} is outside {MIN_RATE:+.0f}% .. {MAX_RATE:+.0f}%")
    return 1 + pct / 100


def rate_from_speed(speed: float) -> str:
    """A rate string for a speed factor (OpenAI's `speed`, the player's 1.25x)."""
    return f"{(speed - 1) * 100:+.0f}%"


def parse_pitch(pitch: str, *, base_hz: float) -> float:
    """A pitch offset ("+5Hz", "-10%") as a factor of a voice whose mean pitch is `base_hz`.

    Raises:
        OptionError: malformed, or more than half an octave down / an octave up.
    """
    m = _PITCH.match(pitch.strip())
    if not m:
        raise OptionError(f"pitch must look like +5Hz or -10%, got {pitch!r}")
    value = float(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    factor = 1 + (value / base_hz if m.group(3) == "Hz" else value / 100)
    if not 0.5 <= factor <= 2.0:
        raise OptionError(f"pitch {pitch} is out of range")
    return factor
