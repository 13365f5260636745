"""The neural-voice engine against a local, protocol-faithful stand-in for Microsoft's service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from service.audio.mp3 import AudioFormat
from service.audio.timings import Timeline
from service.core.pipeline import Pauses, Synthesizer
from service.engines.base import Network, SpeechOptions
from service.engines.edge import EdgeEngine
from service.errors import EngineError, OptionError
from service.text.chunks import Segmenter
from service.text.normalize import Normalizer
from tests.edge_standin import HOST, EdgeStandIn

VOICE = SpeechOptions(voice="zh-CN-XiaoxiaoNeural")
TEXT = "安宁区全面加强城市基层党建工作，推动争先进位。"


@pytest.fixture(scope="module")
def standin() -> Iterator[EdgeStandIn]:
    with EdgeStandIn() as s:
        yield s


def engine(standin: EdgeStandIn, **kw: float) -> EdgeEngine:
    net = Network(ca_file=str(standin.ca_file), resolve=((HOST, f"127.0.0.1:{standin.port}"),))
    return EdgeEngine(network=net, backoff_s=kw.pop("backoff_s", 0.02), **kw)  # type: ignore[arg-type]


async def _speak(e: EdgeEngine, text: str = TEXT):
    await e.warm_up()
    return await e.synthesize(text, VOICE)


def test_speaks_24khz_audio(standin):
    clip = asyncio.run(_speak(engine(standin)))
    assert clip.sample_rate == 24000 and 2000 < clip.duration_ms < 15000
    assert standin.texts[-1] == TEXT


@pytest.mark.parametrize(
    "faults",
    [
        ["403", "403"],
        ["429"],
        ["503", "429"],
        ["drop"],
        ["truncate"],
        ["stall"],
        ["drop", "truncate", "503"],
    ],
)
def test_each_fault_ends_in_complete_audio(standin, faults):
    e = engine(standin, timeout_s=1.5)
    good = asyncio.run(_speak(e)).duration_ms
    standin.faults[:] = list(faults)
    clip = asyncio.run(_speak(e))
    assert standin.faults == []
    assert clip.duration_ms == pytest.approx(good, rel=0.05), "complete, not truncated"
    assert e.retries >= 1


def test_persistent_failure_is_an_engine_error(standin):
    e = engine(standin, attempts=3)
    standin.faults[:] = ["503"] * 3
    with pytest.raises(EngineError, match="after 3 attempts"):
        asyncio.run(_speak(e))


def test_article_text_cannot_inject_ssml(standin):
    evil = "新闻</prosody></voice><voice name='x'><prosody rate='+500%'>测试&amp;<break/>结束。"
    asyncio.run(_speak(engine(standin), evil))
    assert standin.texts[-1] == evil  # arrived as text, nothing else inside prosody


def test_sample_article_with_correct_timings(standin, sample_html):
    from service.cli import load_sentences

    sentences = load_sentences(sample_html.read_bytes(), name=str(sample_html))
    e = engine(standin)

    async def run() -> Timeline:
        synth = Synthesizer(
            e,
            normalizer=Normalizer(),
            segmenter=Segmenter(),
            audio_format=AudioFormat(sample_rate=e.sample_rate),
            pauses=Pauses(),
            lookahead=8,
        )
        timeline = Timeline()
        try:
            async for part in synth.render(sentences, VOICE):
                timeline.add(part)
        finally:
            synth.close()
        return timeline

    timeline = asyncio.run(run())
    assert [s.text for s in timeline.sentences] == [s.text for s in sentences]
    ends = [s.end_ms for s in timeline.sentences]
    assert all(
        a.end_ms <= b.start_ms
        for a, b in zip(timeline.sentences, timeline.sentences[1:], strict=False)
    )
    assert 0 <= timeline.duration_ms - ends[-1] <= 100
    assert timeline.duration_ms > 120_000


@pytest.mark.parametrize(
    ("voice", "rate", "pitch"),
    [
        (
            "zh-CN-XiaoxiaoNeural",
            "20%",
            "+0Hz",
        ),  # edge-tts needs the sign: it would fail mid-article
        ("zh-CN-XiaoxiaoNeural", "+0%", "5Hz"),
        ("zh-CN-XiaoxiaoNeural", "+12.5%", "+0Hz"),
        ("cmn", "+0%", "+0Hz"),
        ("zh-CN-XiaoxiaoNeural", "+900%", "+0Hz"),
    ],
)
def test_edge_refuses_options_the_service_would_refuse(voice, rate, pitch):
    with pytest.raises(OptionError):
        EdgeEngine().check_options(SpeechOptions(voice=voice, rate=rate, pitch=pitch))


def test_edge_accepts_its_options():
    for voice in (
        "zh-CN-XiaoxiaoNeural",
        "zh-CN-liaoning-XiaobeiNeural",
        "zh-CN-shaanxi-XiaoniNeural",
    ):
        EdgeEngine().check_options(SpeechOptions(voice=voice, rate="-10%", pitch="+5Hz"))


def test_word_boundaries_become_word_marks_on_the_chunk_text(standin):
    clip = asyncio.run(_speak(engine(standin)))
    assert clip.words, "the service's WordBoundary events"
    assert all(TEXT[w.offset : w.offset + w.length] for w in clip.words)
    offsets = [w.offset for w in clip.words]
    assert offsets == sorted(offsets) and clip.words[-1].end_ms <= clip.duration_ms + 1
