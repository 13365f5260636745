"""The synthesizer's order of work for a slow engine: the first piece alone, then every
sentence asks the engine in reading order, whatever order its text work finished in."""

from __future__ import annotations

import array
import asyncio
import math
import threading
import time

from service.audio.clip import Clip
from service.audio.mp3 import AudioFormat, Mp3Part
from service.core.pipeline import Pauses, Synthesizer
from service.engines.base import SpeechOptions
from service.text.chunks import Segmenter
from service.text.lexicon import Lexicon
from service.text.normalize import Normalizer
from service.text.sentences import Sentence

RATE = 24000
TEXTS = [
    "耄耋老者身轻如燕潇洒舞剑，天真孩童笑声朗朗快乐玩耍，每天清晨在小区晨练。",
    "文明和谐的浓厚氛围彰显着能力和水平。",
    "站在新时代，着眼新起点。",
    "安宁区委始终坚持以党的十九大精神为指导。",
]


class SlowEngine:
    """Records what it is asked, in order, and how much text work was done by then."""

    name = "slow"
    version = "1"
    chunk_budget = 240
    sample_rate = RATE
    first_piece = True

    def __init__(self, normalized: list[str]) -> None:
        self.asked: list[tuple[str, int]] = []
        self._normalized = normalized

    def check_options(self, options: SpeechOptions) -> None:
        pass

    async def warm_up(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def synthesize(self, text: str, options: SpeechOptions) -> Clip:
        self.asked.append((text, len(self._normalized)))
        await asyncio.sleep(0.01)
        n = RATE * len(text) // 8
        tone = array.array("h", (round(6000 * math.sin(i / 9)) for i in range(n)))
        return Clip(pcm=tone.tobytes(), sample_rate=RATE)


class CountingNormalizer(Normalizer):
    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self._seen = seen

    def normalize(self, text: str, lexicon: Lexicon | None = None, *, pinyin: bool = False) -> str:
        self._seen.append(text)
        return super().normalize(text, lexicon, pinyin=pinyin)


class SlowFirstLookups:
    """A part cache whose first lookups are slow (a cold disk): the later sentences' text
    work finishes first."""

    def __init__(self) -> None:
        self._calls = 0
        self._lock = threading.Lock()

    def get_part(self, key: str) -> Mp3Part | None:
        with self._lock:
            self._calls += 1
            slow = self._calls <= 2
        if slow:
            time.sleep(0.3)
        return None

    def put_part(self, key: str, part: Mp3Part) -> None:
        pass


def test_a_slow_engine_makes_the_first_piece_alone_then_is_asked_in_reading_order():
    normalized: list[str] = []
    engine = SlowEngine(normalized)
    sentences = [Sentence(index=i, paragraph=0, text=t) for i, t in enumerate(TEXTS)]

    async def run() -> list[str]:
        segmenter = Segmenter()
        segmenter.warm_up()
        synth = Synthesizer(
            engine,
            normalizer=CountingNormalizer(normalized),
            segmenter=segmenter,
            audio_format=AudioFormat(sample_rate=RATE),
            pauses=Pauses(),
            cache=SlowFirstLookups(),
        )
        try:
            return [p.sentence.text async for p in synth.render(sentences, SpeechOptions("v"))]
        finally:
            synth.close()

    pieces = asyncio.run(run())
    assert pieces[:3] == ["耄耋老者", "身轻如燕潇洒舞剑，", TEXTS[0][13:]]
    assert pieces[3:] == TEXTS[1:]
    # asked in reading order, though the first lookups were the slowest
    assert [text for text, _ in engine.asked] == [normalized_text(p) for p in pieces]
    # the first piece was asked for before any other text was read
    assert engine.asked[0][1] == 1


def normalized_text(text: str) -> str:
    return Normalizer().normalize(text)
