"""Kokoro, the default offline voice: its front end, the model's integrity check, the engine
in its worker processes, and the defaults of `langdu synth` and `langdu serve`."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from service.config import Settings
from service.engines import kokoro_graph, kokoro_model
from service.engines.base import SpeechOptions
from service.engines.kokoro import KokoroEngine
from service.engines.kokoro_text import phonemize
from service.errors import OptionError
from tests.conftest import decoded_samples
from tests.server import start_server


def _spoken(text: str) -> list[tuple[str, str]]:
    phones = phonemize(text)
    return [
        (text[u.offset : u.offset + u.length], phones.text[u.start : u.end]) for u in phones.units
    ]


def test_every_character_is_spoken_in_order_with_its_reading_in_context():
    spoken = _spoken("银行行长说，今年很好。")
    assert [c for c, _ in spoken] == list("银行行长说今年很好")
    assert spoken[1][1] == "xa↗ŋ"  # 银行: hang2
    assert spoken[2][1] == "xa↗ŋ"  # 行长: hang2 ... zhang3
    assert spoken[3][1] == "ꭧa↓ŋ"  # Kokoro writes zh as one symbol
    assert spoken[7] == ("很", "xə↗n")  # 3-3 sandhi: hen2 hao3
    phones = phonemize("银行行长说，今年很好。")
    assert phones.text.endswith("xau↓.") and ", " in phones.text
    assert all(c in kokoro_model.vocab() for c in phones.text)


def test_dates_letters_and_erhua():
    spoken = dict(_spoken("五月一日"))
    assert spoken["一"] == "i→"  # the day of the month: yi1, not yi2 before a fourth tone
    assert dict(_spoken("一定"))["一"] == "i↗"  # sandhi elsewhere
    letters = _spoken("GDP增长")
    assert [c for c, _ in letters[:3]] == ["G", "D", "P"] and all(p for _, p in letters[:3])
    assert ("哪儿", "na↓ɚ") in _spoken("你去哪儿")
    assert [c for c, _ in _spoken("女儿")] == ["女", "儿"]  # a syllable of its own


def test_the_model_is_refused_unless_its_digest_is_the_pinned_one(monkeypatch):
    data = kokoro_model.model_bytes()
    assert len(data) == kokoro_model.MODEL_BYTES
    monkeypatch.setattr(kokoro_model, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        kokoro_model.model_bytes()


def test_phonemes_longer_than_the_model_reads_are_cut_between_words():
    space = 16
    words = [[1] * 5, [2] * 5, [3] * 5]
    tokens = [*words[0], space, *words[1], space, *words[2]]
    assert kokoro_model.fit(tokens, space=space, limit=12) == [
        [*words[0], space, *words[1]],
        words[2],
    ]
    assert kokoro_model.fit([7] * 25, space=space, limit=10) == [[7] * 10, [7] * 10, [7] * 5]
    assert kokoro_model.fit(tokens, space=space, limit=100) == [tokens]


def test_the_graph_opened_at_its_durations_says_what_the_published_one_says():
    import numpy as np
    import onnxruntime as ort

    published = kokoro_model.model_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = [
        ort.InferenceSession(m, sess_options=options, providers=["CPUExecutionProvider"])
        for m in (published, kokoro_graph.with_durations(published))
    ]
    table = kokoro_model.vocab()
    tokens = [table[c] for c in phonemize("站在新时代，着眼新起点。").text]
    pack = np.fromfile(kokoro_model.VOICES_DIR / "zm_yunxi.bin", dtype="<f4").reshape(-1, 256)
    feeds = {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": pack[len(tokens) - 1 : len(tokens)],
        "speed": np.array([1.0], dtype=np.float32),
    }
    (audio,) = sessions[0].run(None, feeds)
    same, frames = sessions[1].run(None, feeds)
    assert np.array_equal(audio, same)  # the same audio, bit for bit
    assert frames.shape == (1, len(tokens) + 2) and frames.min() >= 1
    assert int(frames.sum()) * kokoro_graph.FRAME_SAMPLES == audio.size  # 25 ms a frame
    assert frames[0, 0] > 8  # the start pad's lead-in: the first word starts after it


def test_the_graph_edit_refuses_what_is_not_the_model_it_was_written_for():
    with pytest.raises(ValueError, match="no graph"):
        kokoro_graph.with_durations(kokoro_graph.field(1, b"not a graph"))
    node = kokoro_graph.field(2, b"/encoder/Other_output_0")  # a node with another output
    with pytest.raises(ValueError, match="/encoder/Cast_output_0"):
        kokoro_graph.with_durations(kokoro_graph.field(7, kokoro_graph.field(1, node)))
    with pytest.raises(ValueError, match="truncated"):
        kokoro_graph.with_durations(kokoro_graph.field(7, b"abc")[:-1])
    with pytest.raises(ValueError, match="wire type"):
        kokoro_graph.with_durations(bytes([7 << 3 | 3]))


def test_the_voices_offered_are_vendored_with_their_licence():
    assert set(kokoro_model.offered_voices()) == {
        "zf_xiaoxiao",
        "zf_xiaoyi",
        "zm_yunjian",
        "zm_yunxi",
        "zm_yunxia",
    }
    for name in kokoro_model.offered_voices():
        assert (kokoro_model.VOICES_DIR / f"{name}.bin").stat().st_size == 510 * 256 * 4
    notice = (kokoro_model.VOICES_DIR / "NOTICE").read_text()
    assert "kokoro-js 1.2.1" in notice and "Apache" in notice
    assert "Apache License" in (kokoro_model.VOICES_DIR / "LICENSE").read_text()


def _options(
    *, voice: str = "zm_yunxi", rate: str = "+0%", pitch: str = "+0Hz", gain: str = "1.0"
) -> SpeechOptions:
    return SpeechOptions(voice=voice, rate=rate, pitch=pitch, extra=(("gain", gain),))


def test_options_the_model_cannot_honour_are_refused_before_any_work():
    engine = KokoroEngine(workers=1, threads=1)
    engine.check_options(_options())
    engine.check_options(_options(rate="+50%"))
    for bad in (
        _options(voice="zf_xiaoni"),  # not offered: Whisper could not understand it
        _options(pitch="+10Hz"),
        _options(rate="-60%"),
        _options(rate="+150%"),
        _options(gain="x"),
        _options(gain="9"),
    ):
        with pytest.raises(OptionError):
            engine.check_options(bad)


def test_the_engine_speaks_with_word_times_and_never_clips():
    async def run() -> None:
        engine = KokoroEngine(workers=1, threads=2)
        try:
            await engine.warm_up()
            text = "国家统计局发布数据显示，一季度国内生产总值同比增长百分之五点三。"
            clip = await engine.synthesize(text, _options(gain="1.6"))
            assert clip.sample_rate == 24000
            assert 3000 < clip.duration_ms < 12000, clip.duration_ms
            samples = memoryview(clip.pcm).cast("h")
            assert max(abs(min(samples)), max(samples)) < 32767  # bent, never clipped
            words = clip.words
            said = [text[w.offset : w.offset + w.length] for w in words]
            assert "".join(said) == text.replace("，", "").replace("。", "")  # every word, in order
            assert all(a.end_ms <= b.start_ms + 1 for a, b in itertools.pairwise(words))
            assert words[0].start_ms >= 0 and words[-1].end_ms <= clip.duration_ms
            # the model's own durations: the comma holds the longest gap between words
            gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(words)]
            at_comma = said.index("显示")
            assert gaps[at_comma] >= 50 and gaps[at_comma] == max(gaps), gaps
            # the same request, the same audio: a cached part is what the model would say
            again = await engine.synthesize(text, _options(gain="1.6"))
            assert again.pcm == clip.pcm
        finally:
            await engine.aclose()

    asyncio.run(run())


@pytest.mark.server
def test_langdu_synth_reads_with_kokoro_by_default(tmp_path):
    out, timings = tmp_path / "a.mp3", tmp_path / "a.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGDU_")}
    subprocess.run(
        [sys.executable, "-m", "service", "synth", "-", "-o", str(out), "--timings", str(timings)],
        input="今天是2024年1月1日。气温零下5℃。".encode(),
        env={**env, "LANGDU_DATA_DIR": str(tmp_path / "data")},
        check=True,
        capture_output=True,
        timeout=300,
    )
    doc = json.loads(timings.read_text())
    assert doc["voice"] == Settings().default_voice == "kokoro-yunxi"
    samples, rate = decoded_samples(out.read_bytes())
    assert rate == 24000 and samples / rate > 2.0


@pytest.mark.server
def test_the_service_reads_with_kokoro_by_default(tmp_path, sample_txt):
    server = start_server(tmp_path / "data", defaults=True)
    try:
        with server.client() as c:
            voices = c.get("/v1/voices").json()
            assert voices["default"] == "kokoro-yunxi"
            kokoro = {v["id"]: v for v in voices["voices"] if v["engine"] == "kokoro"}
            assert set(kokoro) == {
                "kokoro-xiaoxiao",
                "kokoro-xiaoyi",
                "kokoro-yunjian",
                "kokoro-yunxi",
                "kokoro-yunxia",
            }
            assert {v["gender"] for v in kokoro.values()} == {"male", "female"}
            assert all("Apache-2.0" in v["licence"] and v["source"] for v in kokoro.values())
            # the sample's headline and first paragraph (the whole page is the benchmark's)
            lines = [x for x in sample_txt.read_text(encoding="utf-8").splitlines() if x]
            text = "\n".join(x for x in lines if "安宁区" in x)[:300]
            article = c.post("/v1/articles", json={"text": text}).json()
            with c.stream("GET", article["audio_url"]) as r:
                assert r.status_code == 200
                first = next(r.iter_bytes())
                assert first
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                info = c.get(f"/v1/articles/{article['id']}").json()
                if info["status"] in ("ready", "failed"):
                    break
                time.sleep(0.5)
            assert info["status"] == "ready", info
            assert info["voice"] == "kokoro-yunxi" and info["degraded"] is None
            timings = httpx.get(info["timings_url"]).json()
            assert timings["voice"] == "kokoro-yunxi"
            assert all(s.get("words") for s in timings["sentences"])
    finally:
        server.stop()
