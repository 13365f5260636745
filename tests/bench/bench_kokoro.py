"""Benchmark: Kokoro through `langdu synth` beside the raw model on the same sentences, and
the time to the first audio byte of `langdu serve`, in one run.

    python tests/bench/bench_kokoro.py [--runs 1] [--article PATH] [--sentences N] [--first 5]

Raw model = one process that joins and loads the model, runs our front end and the model on
each normalized sentence (cut between clauses into pieces of at most 80 characters, as the
pipeline's chunker does: what the model reads at once), and encodes the audio to MP3 once,
on all cores.
The pipeline (`langdu synth`, the default Kokoro voice, one worker on all cores) includes all
a user waits for: start-up, extraction, normalization, chunking, synthesis, stitching,
encoding, word timings. Real-time factor = wall seconds per second of audio; peak memory is
the RSS of the whole process tree (sampled every 10 ms). First byte = a real `langdu serve`
with its defaults, a new (uncached) article posted, then the time from GET audio.mp3 to its
first byte; the median of `--first` articles.
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
    import re, sys
    import numpy as np
    from service.audio.mp3 import AudioFormat, encode_part
    from service.engines.kokoro_model import Model
    from service.engines.kokoro_text import phonemize
    from service.engines.kokoro_worker import to_pcm
    import os
    model = Model(threads=os.cpu_count() or 1)
    audio = []
    text = open(sys.argv[1], encoding="utf-8").read()
    pieces = []
    for line in text.splitlines():  # a sentence; clauses joined up to 80 characters
        piece = ""
        for clause in re.findall(r"[^，。！？；：、,!?;:]+[，。！？；：、,!?;:]?", line):
            if piece and len(piece) + len(clause) > 80:
                pieces.append(piece)
                piece = ""
            piece += clause
        pieces.append(piece)
    for piece in pieces:
        phones = phonemize(piece)
        if phones.units:
            audio.append(model.speak(phones.text, voice="zm_yunxi", speed=1.0))
    pcm = to_pcm(np.concatenate(audio), 1.6)
    part = encode_part(pcm, AudioFormat(sample_rate=24000))
    open(sys.argv[2], "wb").write(part.data)
    print(part.duration_ms / 1000)
""")


def first_bytes(paragraphs: list[str], tmp: str) -> list[float]:
    """Seconds from GET audio.mp3 to its first byte, one new article each."""
    from tests.server import start_server

    Path(tmp, "serve").mkdir()
    server = start_server(Path(tmp, "serve", "data"), defaults=True, preload_jieba="true")
    times = []
    try:
        with server.client() as c:
            for n, text in enumerate(paragraphs):
                article = c.post("/v1/articles", json={"text": f"{text}（第{n + 1}篇）"}).json()
                started = time.monotonic()
                with c.stream("GET", article["audio_url"]) as r:
                    chunks = r.iter_bytes()
                    next(chunks)
                    times.append(time.monotonic() - started)
                    for _ in chunks:  # the whole reading: the next one starts cold
                        pass
                print(f"first byte {n + 1}: {times[-1]:.2f} s", flush=True)
    finally:
        server.stop()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--article", type=Path, default=SAMPLE)
    ap.add_argument("--sentences", type=int, default=20, help="only the first N (0: all)")
    ap.add_argument("--first", type=int, default=5, help="articles for the first-byte median")
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
    paragraphs = [s.text for s in sentences if len(s.text) >= 12][: args.first]
    with tempfile.TemporaryDirectory() as tmp:
        firsts = first_bytes(paragraphs, tmp)
    print(
        f"first audio byte (langdu serve, uncached, n={len(firsts)}): median "
        f"{statistics.median(firsts):.2f} s, max {max(firsts):.2f} s (target < 1 s)"
    )


if __name__ == "__main__":
    main()
