"""Benchmark the neural-voice path: the stand-in adds 150 ms latency per chunk.

    python tests/bench/bench_edge.py [--latency 0.15]

Side by side in one run, for the sample article through the local stand-in of Microsoft's
service: langdu's pipeline with the default concurrency, the same chunks synthesized one
after another, and one edge-tts call on the whole text (edge-tts cuts it itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.engines.base import Engine
    from service.text.sentences import Sentence

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT.parent / "shared" / "fixtures" / "anning-page.html"


async def pipeline(engine: Engine, sentences: list[Sentence], lookahead: int) -> float:
    from service.audio.mp3 import AudioFormat
    from service.core.pipeline import Pauses, Synthesizer
    from service.engines.base import SpeechOptions
    from service.text.chunks import Segmenter
    from service.text.normalize import Normalizer

    synth = Synthesizer(
        engine,
        normalizer=Normalizer(),
        segmenter=Segmenter(),
        audio_format=AudioFormat(sample_rate=24000),
        pauses=Pauses(),
        lookahead=lookahead,
    )
    await engine.warm_up()
    started = time.perf_counter()
    async for _ in synth.render(sentences, SpeechOptions(voice="zh-CN-XiaoxiaoNeural")):
        pass
    synth.close()
    return time.perf_counter() - started


async def whole(standin: object, text: str) -> float:
    import edge_tts
    from edge_tts import communicate

    from service.engines.edge import _Connector, _Resolver

    communicate._SSL_CTX.load_verify_locations(cafile=str(standin.ca_file))  # type: ignore[attr-defined]
    resolve = {"speech.platform.bing.com": f"127.0.0.1:{standin.port}"}  # type: ignore[attr-defined]
    connector = _Connector(resolver=_Resolver(resolve))
    started = time.perf_counter()
    async for _ in edge_tts.Communicate(text, "zh-CN-XiaoxiaoNeural", connector=connector).stream():
        pass
    await connector.close_for_real()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.15)
    ap.add_argument("--concurrency", type=int, default=4, help="langdu's default is 4")
    args = ap.parse_args()

    from service.cli import load_sentences
    from service.engines.base import Network
    from service.engines.edge import EdgeEngine
    from service.text.normalize import Normalizer
    from tests.edge_standin import HOST, EdgeStandIn

    sentences = load_sentences(SAMPLE.read_bytes(), name=str(SAMPLE))
    spoken = "\n".join(Normalizer().normalize(s.text) for s in sentences)
    with EdgeStandIn(latency_s=args.latency) as standin:
        net = Network(ca_file=str(standin.ca_file), resolve=((HOST, f"127.0.0.1:{standin.port}"),))
        latency, standin.latency_s = standin.latency_s, 0.0
        asyncio.run(pipeline(EdgeEngine(network=net), sentences, 8))  # the stand-in's audio
        standin.latency_s = latency
        concurrent = asyncio.run(
            pipeline(
                EdgeEngine(network=net, concurrency=args.concurrency),
                sentences,
                4 * args.concurrency,
            )
        )
        one_by_one = asyncio.run(pipeline(EdgeEngine(network=net, concurrency=1), sentences, 1))
        single = asyncio.run(whole(standin, spoken))
    print(
        f"sample article: {len(sentences)} sentences; stand-in latency {args.latency * 1000:.0f} "
        f"ms per chunk; default concurrency 4"
    )
    print(
        f"langdu pipeline {concurrent:.2f} s, chunks one after another {one_by_one:.2f} s, "
        f"one edge-tts call on the whole text {single:.2f} s"
    )
    print(
        f"ratio pipeline/sequential = {concurrent / one_by_one:.2f} (target <= 0.3); "
        f"pipeline/one call = {concurrent / single:.2f}"
    )


if __name__ == "__main__":
    main()
