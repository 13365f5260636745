"""The offline engine: real espeak-ng in worker processes."""

from __future__ import annotations

import asyncio

import pytest

from service.config import Settings
from service.engines import engine_factory
from service.engines.base import SpeechOptions, parse_pitch, parse_rate, rate_from_speed
from service.engines.espeak import EspeakEngine
from service.errors import EngineError, OptionError, VoiceCatalogError

TEXT = "安宁区全面加强城市基层党建工作，推动争先进位。"


def _run(coro):
    return asyncio.run(coro)


async def _speak(engine: EspeakEngine, text: str, rate: str = "+0%", pitch: str = "+0Hz"):
    try:
        return await engine.synthesize(text, SpeechOptions(voice="cmn", rate=rate, pitch=pitch))
    finally:
        await engine.aclose()


def test_speaks_mandarin_at_a_plausible_length():
    clip = _run(_speak(EspeakEngine(workers=1), TEXT))
    assert clip.sample_rate == 22050
    # 22 syllables of Mandarin: a few seconds, not silence and not a minute.
    assert 2000 < clip.duration_ms < 12000
    assert (
        max(
            abs(int.from_bytes(clip.pcm[i : i + 2], "little", signed=True))
            for i in range(0, len(clip.pcm), 2)
        )
        > 3000
    )


def test_rate_changes_the_length():
    normal = _run(_speak(EspeakEngine(workers=1), TEXT)).duration_ms
    fast = _run(_speak(EspeakEngine(workers=1), TEXT, rate="+50%")).duration_ms
    slow = _run(_speak(EspeakEngine(workers=1), TEXT, rate="-30%")).duration_ms
    assert fast < normal * 0.85
    assert slow > normal * 1.2


def test_pitch_changes_the_audio():
    low = _run(_speak(EspeakEngine(workers=1), TEXT, pitch="-20Hz")).pcm
    high = _run(_speak(EspeakEngine(workers=1), TEXT, pitch="+20Hz")).pcm
    assert low != high


def test_workers_run_in_parallel_and_results_stay_in_order():
    async def go():
        engine = EspeakEngine(workers=2)
        await engine.warm_up()
        texts = [f"第{n}句话。" + "内容" * (3 * i) for i, n in enumerate("一二三四五六")]
        try:
            clips = await asyncio.gather(
                *(engine.synthesize(t, SpeechOptions(voice="cmn")) for t in texts)
            )
            again = await engine.synthesize(texts[3], SpeechOptions(voice="cmn"))
        finally:
            await engine.aclose()
        return clips, again

    clips, again = _run(go())
    lengths = [c.duration_ms for c in clips]
    assert lengths == sorted(lengths), "each clip belongs to its own text"
    assert again.duration_ms == pytest.approx(clips[3].duration_ms, rel=0.05)


def test_a_killed_worker_is_replaced():
    async def go():
        engine = EspeakEngine(workers=1)
        await engine.warm_up()
        try:
            for w in list(engine._pool._all):  # simulate a crash of the C library
                w.proc.kill()
                await w.proc.wait()
            return await engine.synthesize(TEXT, SpeechOptions(voice="cmn"))
        finally:
            await engine.aclose()

    assert _run(go()).duration_ms > 1000


def test_unknown_engine_voice_is_an_engine_error():
    with pytest.raises(EngineError, match="no voice"):
        _run(_bad_voice())


async def _bad_voice():
    engine = EspeakEngine(workers=1)
    try:
        return await engine.synthesize(TEXT, SpeechOptions(voice="no-such-voice-xx"))
    finally:
        await engine.aclose()


def test_registry_builds_engines_by_name():
    settings = Settings(workers=1)
    assert isinstance(engine_factory("espeak")(settings), EspeakEngine)
    for name in ("nope", "base", "espeak_worker", "../x"):
        with pytest.raises(VoiceCatalogError, match="unknown engine"):
            engine_factory(name)


@pytest.mark.parametrize(
    ("voice", "rate", "pitch"),
    [("cmn", "20%", "+0Hz"), ("cmn+f3", "-10%", "+5Hz"), ("cmn", "+200%", "-10%")],
)
def test_espeak_accepts_its_options(voice, rate, pitch):
    EspeakEngine(workers=1).check_options(SpeechOptions(voice=voice, rate=rate, pitch=pitch))


@pytest.mark.parametrize(
    ("voice", "rate", "pitch"),
    [("zh-CN-XiaoxiaoNeural", "+0%", "+0Hz"), ("cmn", "fast", "+0Hz"), ("cmn", "+0%", "+200Hz")],
)
def test_espeak_refuses_options_it_cannot_use(voice, rate, pitch):
    with pytest.raises(OptionError):
        EspeakEngine(workers=1).check_options(SpeechOptions(voice=voice, rate=rate, pitch=pitch))


@pytest.mark.parametrize(("rate", "factor"), [("+20%", 1.2), ("-10%", 0.9), ("0%", 1.0)])
def test_parse_rate(rate, factor):
    assert parse_rate(rate) == pytest.approx(factor)


@pytest.mark.parametrize("bad", ["fast", "+20", "20 %", "+500%", "-90%", ""])
def test_bad_rate_is_refused(bad):
    with pytest.raises(OptionError):
        parse_rate(bad)


def test_pitch_and_speed_helpers():
    assert parse_pitch("+12Hz", base_hz=120) == pytest.approx(1.1)
    assert parse_pitch("-10%", base_hz=120) == pytest.approx(0.9)
    assert rate_from_speed(1.25) == "+25%"
    with pytest.raises(OptionError):
        parse_pitch("high", base_hz=120)


def test_word_events_time_each_character_in_order():
    clip = _run(_speak(EspeakEngine(workers=1), TEXT))
    spoken = [TEXT[w.offset : w.offset + w.length] for w in clip.words]
    assert len(spoken) >= len([c for c in TEXT if c.isalnum()]) * 0.8
    assert all(s and s in TEXT for s in spoken)
    starts = [w.start_ms for w in clip.words]
    assert starts == sorted(starts) and starts[0] < 300
    assert all(w.start_ms <= w.end_ms <= clip.duration_ms for w in clip.words)
