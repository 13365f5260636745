"""Benchmark: `langdu synth` end to end against the raw engine alone, side by side.

    python tests/bench/bench_pipeline.py [--runs 3] [--article PATH]

Raw engine = one process that hands espeak-ng the whole normalized article text in one
call, then encodes the PCM to MP3 once (same bitrate and quality as langdu). The pipeline
time includes everything a user waits for: start-up, extraction, normalization, chunking,
synthesis on all workers, stitching, encoding and writing timings. Runs alternate so
both see the same machine state; the best of N is reported, with peak memory (RSS of the
whole process tree, sampled every 10 ms).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "fixtures" / "anning-page.txt"

RAW_ENGINE = textwrap.dedent("""
    import sys
    from service.audio.mp3 import AudioFormat, encode_part
    from service.engines.espeak_worker import Espeak
    text = open(sys.argv[1], encoding="utf-8").read()
    engine = Espeak.get()
    pcm = engine.synth(text, voice="cmn", wpm=175, pitch=50)
    part = encode_part(pcm, AudioFormat(sample_rate=engine.sample_rate))
    open(sys.argv[2], "wb").write(part.data)
    print(part.duration_ms / 1000)
""")


def _tree_rss_kib(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak tree RSS (MiB) and stdout of one command."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return elapsed, peak // 1024, out


Results = dict[str, list[tuple[float, int]]]  # name -> (wall seconds, peak MiB) per run


def alternate(
    commands: dict[str, list[str]], runs: int, *, before: Callable[[], None] | None = None
) -> tuple[Results, dict[str, str]]:
    """Run each command `runs` times, alternating (each sees the same machine state);
    `before` runs before every command. Returns the figures and each command's last stdout."""
    results: Results = {name: [] for name in commands}
    outs: dict[str, str] = {}
    for i in range(runs):
        for name, cmd in commands.items():
            if before is not None:
                before()
            elapsed, peak, outs[name] = run(cmd)
            results[name].append((elapsed, peak))
            print(f"run {i + 1}: {name:<7} {elapsed:7.2f} s  {peak:5d} MiB", flush=True)
    return results, outs


def rtf_table(rows: dict[str, str], results: Results, audio: dict[str, float]) -> dict[str, float]:
    """Print best time, audio, real-time factor and peak memory per row (name -> label);
    returns each row's RTF."""
    width = max(len(label) for label in rows.values()) + 2
    print(f"{'':<{width}}{'best s':>8}{'audio s':>9}{'RTF':>8}{'peak MiB':>10}")
    rtf = {}
    for name, label in rows.items():
        best = min(t for t, _ in results[name])
        peak = max(m for _, m in results[name])
        rtf[name] = best / audio[name]
        print(f"{label:<{width}}{best:>8.2f}{audio[name]:>9.1f}{rtf[name]:>8.3f}{peak:>10d}")
    return rtf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--article", type=Path, default=SAMPLE)
    args = ap.parse_args()

    from service.cli import load_sentences
    from service.text.normalize import Normalizer

    sentences = load_sentences(args.article.read_bytes(), name=str(args.article))
    normalizer = Normalizer()
    spoken = "\n".join(normalizer.normalize(s.text) for s in sentences)
    langdu = str(Path(sys.executable).with_name("langdu"))
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp, "spoken.txt")
        text_file.write_text(spoken, encoding="utf-8")
        pipe_cmd = [
            langdu,
            "synth",
            str(args.article),
            "-o",
            f"{tmp}/p.mp3",
            "--timings",
            f"{tmp}/p.json",
            "-q",
        ]
        raw_cmd = [sys.executable, "-c", RAW_ENGINE, str(text_file), f"{tmp}/r.mp3"]
        best_pipe = best_raw = float("inf")
        peak_pipe = peak_raw = 0
        for i in range(args.runs):
            t_pipe, m_pipe, _ = run(pipe_cmd)
            t_raw, m_raw, raw_out = run(raw_cmd)
            print(
                f"run {i + 1}: langdu synth {t_pipe:.2f} s ({m_pipe} MiB)   "
                f"raw engine {t_raw:.2f} s ({m_raw} MiB)"
            )
            best_pipe, best_raw = min(best_pipe, t_pipe), min(best_raw, t_raw)
            peak_pipe, peak_raw = max(peak_pipe, m_pipe), max(peak_raw, m_raw)
        import json

        audio_s = json.loads(Path(tmp, "p.json").read_text())["duration_ms"] / 1000
    print(
        f"article: {args.article.name}, {len(sentences)} sentences, "
        f"{len(spoken)} spoken chars, langdu audio {audio_s:.1f} s, "
        f"raw audio {float(raw_out):.1f} s, {os.cpu_count()} cores"
    )
    print(f"best of {args.runs}: langdu synth {best_pipe:.2f} s, raw engine {best_raw:.2f} s")
    print(f"ratio langdu/raw = {best_pipe / best_raw:.2f}  (target <= 1.0)")
    print(f"peak memory: langdu {peak_pipe} MiB (all processes), raw engine {peak_raw} MiB")


if __name__ == "__main__":
    main()
