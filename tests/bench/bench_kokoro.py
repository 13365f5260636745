"""Benchmark: Kokoro through `langdu synth` beside the raw model on the same sentences, and
the time to the first audio byte of `langdu serve`, in one run.

    python tests/bench/bench_kokoro.py [--runs 1] [--article PATH] [--sentences N]
                                       [--first 5] [--listen 30]

Raw model = one process that joins and loads the model (the graph as published, on all
cores), runs our front end and the model on each normalized sentence (cut between clauses
into pieces of at most 80 characters, as the pipeline's chunker does: what the model reads
at once), trims each piece's edge silence as langdu does (and kokoro-onnx), puts langdu's
0.3 s pause between sentences and encodes the audio to MP3 once: the same audio, without
langdu. The pipeline (`langdu synth`, the default Kokoro voice, one worker on all cores)
includes all a user waits for: start-up, extraction, normalization, chunking, synthesis,
stitching, encoding, word timings. Real-time factor = wall seconds per second of audio;
peak memory is the RSS of the whole process tree (sampled every 10 ms).
First byte = a new `langdu serve` with its defaults (and a new data directory) for each of
`--first` runs, the demo page's article posted as the player posts it, then the time from
GET audio.mp3 to its first byte (the median is the figure), and how long a listener who
starts at that byte then waits for audio in the first `--listen` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_pipeline import SAMPLE, alternate, rtf_table  # noqa: E402

RAW_MODEL = textwrap.dedent("""
    import os, re, sys
    import numpy as np
    import onnxruntime as ort
    from service.audio.mp3 import AudioFormat, encode_part
    from service.engines.kokoro_model import MAX_TOKENS, VOICES_DIR, fit, model_bytes, vocab
    from service.engines.kokoro_text import phonemize
    from service.engines.kokoro_worker import to_pcm
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_bytes(), options, providers=["CPUExecutionProvider"])
    table = vocab()
    pack = np.fromfile(VOICES_DIR / "zm_yunxi.bin", dtype="<f4").reshape(-1, 256)
    def speak(phonemes):
        tokens = [table[c] for c in phonemes if c in table]
        out = []
        for piece in fit(tokens, space=table[" "], limit=MAX_TOKENS - 2):
            feeds = {
                "tokens": np.array([[0, *piece, 0]], dtype=np.int64),
                "style": pack[len(piece) - 1 : len(piece)],
                "speed": np.array([1.0], dtype=np.float32),
            }
            out.append(session.run(None, feeds)[0].ravel())
        return np.concatenate(out)
    def trimmed(audio):  # the model's edge silence off, as langdu (and kokoro-onnx) do
        loud = np.flatnonzero(np.abs(audio) > 10 ** (-50 / 20))
        keep = 960  # 40 ms
        return audio[max(0, loud[0] - keep) : loud[-1] + keep] if len(loud) else audio
    pause = np.zeros(int(0.3 * 24000), dtype=np.float32)  # langdu's pause between sentences
    audio = []
    text = open(sys.argv[1], encoding="utf-8").read()
    for line in text.splitlines():  # a sentence; clauses joined up to 80 characters
        pieces, piece = [], ""
        for clause in re.findall(r"[^，。！？；：、,!?;:]+[，。！？；：、,!?;:]?", line):
            if piece and len(piece) + len(clause) > 80:
                pieces.append(piece)
                piece = ""
            piece += clause
        pieces.append(piece)
        for piece in pieces:
            phones = phonemize(piece)
            if phones.units:
                audio.append(trimmed(speak(phones.text)))
        audio.append(pause)
    pcm = to_pcm(np.concatenate(audio[:-1]), 1.6)
    part = encode_part(pcm, AudioFormat(sample_rate=24000))
    open(sys.argv[2], "wb").write(part.data)
    print(part.duration_ms / 1000)
""")


def _seconds(mp3: bytes) -> float:
    """Playable seconds of an MP3 stream's first bytes."""
    from tests.conftest import decoded_pcm

    return len(decoded_pcm(mp3)) / 2 / 24000


def stalls(arrivals: list[tuple[float, float]]) -> float:
    """Seconds a listener who starts playing at the first byte waits for audio later, given
    (arrival time, playable seconds received so far) after each chunk."""
    (clock, _), pos, waited, have = arrivals[0], 0.0, 0.0, arrivals[0][1]
    for at, total in arrivals[1:]:
        runs_dry = clock + (have - pos)  # the player reaches the end of what it has
        if at > runs_dry:
            waited += at - runs_dry
            pos = have
        else:
            pos += at - clock
        clock, have = at, total
    return waited


def demo_article() -> dict[str, str]:
    """What the player on the demo page posts: its article's HTML and its headline."""
    import lxml.html

    page = lxml.html.fromstring((ROOT / "service" / "player" / "demo.html").read_bytes())
    (content,) = page.xpath("//*[@id='content']")
    (title,) = page.xpath("//h1[@class='title']")
    html = lxml.html.tostring(content, encoding="unicode")
    return {"html": html, "title": title.text_content().strip(), "url": "http://127.0.0.1/"}


def first_bytes(runs: int, tmp: str, listen_s: float) -> list[tuple[float, float]]:
    """(first byte, stalls) of `langdu serve` with its defaults reading the demo page's
    article (posted as the player does), each run a new server and data directory: from
    GET audio.mp3 to its first byte, and the listener's waits in its first `listen_s`."""
    from tests.server import start_server

    article = demo_article()
    out = []
    for n in range(runs):
        Path(tmp, f"serve{n}").mkdir()
        server = start_server(Path(tmp, f"serve{n}", "data"), defaults=True, preload_jieba="true")
        try:
            with server.client() as c:
                posted = c.post("/v1/articles", json=article).json()
                received, arrivals = b"", []
                started = time.monotonic()
                with c.stream("GET", posted["audio_url"]) as r:
                    for chunk in r.iter_bytes():
                        at = time.monotonic() - started
                        received += chunk
                        arrivals.append((at, _seconds(received)))
                        if arrivals[-1][1] >= listen_s:
                            break
        finally:
            server.stop()
        out.append((arrivals[0][0], stalls(arrivals)))
        print(f"first byte {n + 1}: {out[-1][0]:.2f} s, then waits {out[-1][1]:.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--article", type=Path, default=SAMPLE)
    ap.add_argument("--sentences", type=int, default=20, help="only the first N (0: all)")
    ap.add_argument("--first", type=int, default=5, help="servers for the first-byte median")
    ap.add_argument("--listen", type=float, default=30, help="seconds of audio to listen to")
    args = ap.parse_args()

    from service.cli import load_sentences
    from service.text.normalize import Normalizer

    sentences = load_sentences(args.article.read_bytes(), name=str(args.article))
    if args.sentences:
        sentences = sentences[: args.sentences]
    normalizer = Normalizer()
    spoken = "\n".join(normalizer.normalize(s.text) for s in sentences)
    langdu = str(Path(sys.executable).with_name("langdu"))
    audio: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LANGDU_DATA_DIR"] = f"{tmp}/data"  # run() passes the environment on
        article = Path(tmp, "article.txt")
        article.write_text("\n".join(s.text for s in sentences), encoding="utf-8")
        spoken_file = Path(tmp, "spoken.txt")
        spoken_file.write_text(spoken, encoding="utf-8")
        commands = {
            "kokoro": [
                *(langdu, "synth", str(article), "-o", f"{tmp}/k.mp3"),
                *("--timings", f"{tmp}/k.json", "-q"),
            ],
            "raw": [sys.executable, "-c", RAW_MODEL, str(spoken_file), f"{tmp}/r.mp3"],
        }
        data = Path(tmp, "data")
        results, outs = alternate(  # every run reads anew: no cached sentence
            commands, args.runs, before=lambda: shutil.rmtree(data, ignore_errors=True)
        )
        audio["raw"] = float(outs["raw"].strip())
        audio["kokoro"] = json.loads(Path(tmp, "k.json").read_text())["duration_ms"] / 1000
    print(
        f"\ntext: {args.article.name}, {len(sentences)} sentences, {len(spoken)} spoken "
        f"characters; {os.cpu_count()} cores, one Kokoro worker"
    )
    rtf = rtf_table({"kokoro": "langdu synth (Kokoro)", "raw": "raw model"}, results, audio)
    print(
        f"pipeline / raw model RTF = {rtf['kokoro'] / rtf['raw']:.2f} (target <= 1.1)", flush=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        found = first_bytes(args.first, tmp, args.listen)
    firsts = [f for f, _ in found]
    print(
        f"first audio byte (langdu serve, demo article, uncached, n={len(firsts)}): median "
        f"{statistics.median(firsts):.2f} s, max {max(firsts):.2f} s (target < 1 s); "
        f"then waits for audio in its first {args.listen:.0f} s: median "
        f"{statistics.median(w for _, w in found):.2f} s"
    )


if __name__ == "__main__":
    main()
