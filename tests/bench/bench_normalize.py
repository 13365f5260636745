"""Benchmark normalization: warm throughput on the sample article and cold start.

    python tests/bench/bench_normalize.py [--repeat 20]

Warm: chars/s over the sample's sentences (normalizer loaded), best of N passes, next to
the same text through wetext alone (whole sentences, its full load), side by side.
Cold: a fresh process importing langdu's normalizer and normalizing one sentence with a
number (what `langdu normalize` pays on start), best of 5.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "fixtures" / "anning-page.txt"

COLD = (
    "import time; t = time.perf_counter(); "
    "from service.text.normalize import Normalizer; "
    "Normalizer().normalize('今年6月分别达到83.19%'); print(time.perf_counter() - t)"
)
COLD_WETEXT = (
    "import time; t = time.perf_counter(); from wetext import Normalizer; "
    "Normalizer(lang='zh', operator='tn').normalize('今年6月分别达到83.19%'); "
    "print(time.perf_counter() - t)"
)


def best_pass(fn, texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - started)
    return best


def cold(code: str) -> float:
    return min(
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout
        )
        for _ in range(5)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    from service.cli import load_sentences
    from service.text.normalize import Normalizer

    sentences = [s.text for s in load_sentences(SAMPLE.read_bytes(), name=str(SAMPLE))]
    chars = sum(map(len, sentences))
    ours = Normalizer()
    ours.warm_up()
    from wetext import Normalizer as WeText

    theirs = WeText(lang="zh", operator="tn")
    t_ours = best_pass(ours.normalize, sentences, args.repeat)
    t_theirs = best_pass(theirs.normalize, sentences, args.repeat)
    print(f"sample article: {len(sentences)} sentences, {chars} chars")
    print(
        f"warm: langdu {chars / t_ours:,.0f} chars/s, wetext alone {chars / t_theirs:,.0f} "
        f"chars/s (best of {args.repeat})   target >= 20,000 chars/s"
    )
    print(
        f"cold start: langdu {cold(COLD):.2f} s, wetext alone {cold(COLD_WETEXT):.2f} s "
        f"(import + first sentence, best of 5)   target < 1.5 s"
    )


if __name__ == "__main__":
    main()
