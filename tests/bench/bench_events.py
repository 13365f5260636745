"""Listening-event ingestion next to listening: cached-audio latency and a new article's first
audio byte on a real `langdu serve`, quiet and then while players post 1,000 events/s
(batches of 50, the player's shape: a play and progress reports), side by side.

    python tests/bench/bench_events.py [--seconds 5] [--split-cpus]

Target: ingestion raises cached-audio p99 and first-audio-byte latency by at most 10%.
The posting client runs in a process of its own at a low CPU priority (on a deployment the
players are elsewhere); the events' cost to the server is all on the server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.bench.bench_load import CLIENT_NICE, _ready, measure  # noqa: E402
from tests.http.test_resilience import SHORT  # noqa: E402
from tests.server import Server, start_server  # noqa: E402

EVENTS_PER_S = 1000
PER_BATCH = 50


async def _post_events(url: str, article: str, sentences: int, seconds: float) -> tuple[int, int]:
    """Post EVENTS_PER_S events a second for `seconds`; (events accepted, batches refused)."""
    accepted = refused = 0
    batches_per_s = EVENTS_PER_S // PER_BATCH
    async with httpx.AsyncClient(timeout=30) as client:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            now = int(time.time() * 1000)
            events = [{"type": "play", "t": now, "position_ms": 0}] + [
                {
                    "type": "progress",
                    "t": now,
                    "heard": [i % sentences],
                    "listened_ms": 250,
                    "position_ms": 250 * i,
                }
                for i in range(PER_BATCH - 1)
            ]
            body = {"article": article, "session": f"{n:032x}", "events": events}
            r = await client.post(url, json=body)
            if r.status_code == 202:
                accepted += PER_BATCH
            else:
                refused += 1
            n += 1
            # Paced: batch n is due at start + n / batches_per_s.
            await asyncio.sleep(max(0.0, start + n / batches_per_s - time.monotonic()))
    return accepted, refused


def _ingest(url: str, article: str, sentences: int, seconds: float, out: object) -> None:
    os.nice(CLIENT_NICE)
    out.put(asyncio.run(_post_events(url, article, sentences, seconds)))  # type: ignore[attr-defined]


def _first_bytes(server: Server, tag: str, count: int = 5) -> list[float]:
    """A reader's new short article: from the post to its first audio byte, `count` times."""
    out = []
    with server.client() as c:
        for i in range(count):
            started = time.monotonic()
            r = c.post("/v1/articles", json={"text": f"{tag}第{i}篇：{SHORT}"})
            with c.stream("GET", r.json()["audio_url"]) as s:
                next(s.iter_bytes())
            out.append(time.monotonic() - started)
    return out


def run(server: Server, seconds: float) -> None:
    with server.client() as c:
        info = _ready(c, {"text": SHORT * 4})
    audio = str(info["audio_url"])
    with server.client() as c:
        sentences = len(c.get(str(info["timings_url"])).json()["sentences"])
    quiet = measure(audio, "GET", {}, None, seconds)
    quiet1 = measure(audio, "GET1", {}, None, seconds)
    quiet_first = _first_bytes(server, "安静")

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    span = 3 * seconds + 30  # covers both measurements and the first bytes
    poster = ctx.Process(
        target=_ingest,
        args=(f"{server.url}/v1/events", str(info["id"]), sentences, span, results),
    )
    poster.start()
    time.sleep(1.0)
    busy = measure(audio, "GET", {}, None, seconds)
    busy1 = measure(audio, "GET1", {}, None, seconds)
    busy_first = _first_bytes(server, "繁忙")
    accepted, refused = results.get()
    poster.join()

    print(f"{'':<24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}   (quiet | 1,000 events/s)")
    for name, a, b in (("cached audio", quiet, busy), ("cached audio, 1 conn", quiet1, busy1)):
        print(
            f"{name:<24} {a[0]:8.0f} {a[1] * 1e3:7.2f} {a[2] * 1e3:7.2f} | {b[0]:8.0f}"
            f" {b[1] * 1e3:7.2f} {b[2] * 1e3:7.2f}   p99 x {b[2] / a[2]:.2f}"
        )
    qf, bf = statistics.median(quiet_first), statistics.median(busy_first)
    print(
        f"first audio byte of a new article: median {qf * 1e3:.0f} ms quiet,"
        f" {bf * 1e3:.0f} ms under ingestion: x {bf / qf:.2f}"
    )
    print(
        f"events accepted {accepted} in {span:.0f} s ({accepted / span:.0f}/s), batches refused"
        f" {refused}; target: cached-audio p99 and first byte x <= 1.10"
    )
    with server.client() as c:
        stats = c.get(f"/v1/articles/{info['id']}/stats").json()
    print(f"rolled up: {stats['sessions']} sessions, {stats['listened_ms']} ms listened")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="the server and its workers on the first CPU, every client on the others",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    split = args.split_cpus and len(cpus) > 1
    if split:
        os.sched_setaffinity(0, cpus[:1])
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp) / "data",
            access_log="false",
            preload_jieba="true",
            rate_limit_events="100000/minute;2000/second",  # one address posts it all
        )
        if split:
            os.sched_setaffinity(0, cpus[1:])
            print(f"server on CPU {cpus[0]}, clients on CPUs {cpus[1:]}")
        try:
            run(server, args.seconds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
