"""Listening-event ingestion next to listening: cached-audio latency and a new article's first
audio byte on a real `langdu serve`, quiet and while players post 1,000 events/s (batches
of 50, the player's shape: a play and progress reports), side by side: quiet and busy take
turns. One listener's requests are each timed and sorted into their turn; eight connections
flat out (wrk) give each turn's percentiles, compared by median.

    python tests/bench/bench_events.py [--seconds 2] [--rounds 8] [--split-cpus]

Target: ingestion raises cached-audio p99 and first-audio-byte latency by at most 10%.
The posting client sends pre-built bodies over a plain socket (on a deployment the players
are elsewhere); the events' cost to the server is all on the server's CPU. The events
worker runs only on CPU the server leaves idle, so the events/s it takes next to each load
is printed too: with --split-cpus and eight connections saturating the server's one CPU,
posts wait and far fewer than 1,000 a second are taken (none is lost).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_load import (  # noqa: E402
    CLIENT_NICE,
    _ready,
    add_split_cpus,
    bench_server,
    measure,
)
from tests.http.test_resilience import SHORT  # noqa: E402
from tests.server import Server  # noqa: E402

EVENTS_PER_S = 1000
PER_BATCH = 50


def _body(article: str, sentences: int) -> bytes:
    """One batch as a player sends it, with a SESSION placeholder: built once, so that
    posting costs the client next to nothing (the players are elsewhere)."""
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
    body = {"article": article, "session": "S" * 32, "events": events}
    return json.dumps(body, separators=(",", ":")).encode()


def _read_answer(reader: Any) -> int:
    """Read one HTTP/1.1 answer (Content-Length framed); its status."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


def _post_events(
    url: str, article: str, sentences: int, on: Any, stop: Any, kept: Any
) -> tuple[int, int, float]:
    """Post EVENTS_PER_S events a second while `on` is set, until `stop` is, over a plain
    socket (kept alive through each busy turn); (events accepted, batches refused, seconds
    posted)."""
    parts = urlsplit(url)
    template = _body(article, sentences)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: text/plain\r\ncontent-length: {len(template)}\r\n\r\n"
    ).encode()
    accepted = refused = 0
    posted = 0.0
    period = PER_BATCH / EVENTS_PER_S
    n = 0
    while not stop.is_set():
        if not on.wait(0.05):
            continue
        start = time.monotonic()
        sent = 0
        # A connection per busy turn: the server closes one left idle through a quiet one.
        with socket.create_connection((parts.hostname, parts.port or 80)) as sock:
            reader = sock.makefile("rb")
            while on.is_set() and not stop.is_set():
                session = f"{os.getpid():08x}{n:024x}".encode()
                sock.sendall(head + template.replace(b"S" * 32, session))
                if _read_answer(reader) == 202:
                    accepted += PER_BATCH
                    kept.value += PER_BATCH
                else:
                    refused += 1
                n += 1
                sent += 1
                # Paced: the next batch is due at start + sent * period.
                time.sleep(max(0.0, start + sent * period - time.monotonic()))
        posted += time.monotonic() - start
    return accepted, refused, posted


def _ingest(
    url: str, article: str, sentences: int, on: Any, stop: Any, kept: Any, out: Any
) -> None:
    os.nice(CLIENT_NICE)
    out.put(_post_events(url, article, sentences, on, stop, kept))


def _listener(url: str, stop: Any, out: Any) -> None:
    """One listener's connection: GET the audio, one request at a time, until `stop`;
    puts (started, seconds) for every request."""
    os.nice(CLIENT_NICE)
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n\r\n".encode()
    times: list[tuple[float, float]] = []
    with socket.create_connection((parts.hostname, parts.port or 80)) as sock:
        reader = sock.makefile("rb")
        while not stop.is_set():
            started = time.monotonic()
            sock.sendall(request)
            if _read_answer(reader) != 200:
                raise SystemExit("the audio was not served")
            times.append((started, time.monotonic() - started))
    out.put(times)


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


def _pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


class Turns:
    """Quiet and busy by turns (quiet, busy, busy, quiet, ...: neither always comes first,
    so a noisy neighbour's minute falls on both), switching the poster on and off."""

    def __init__(self, on: Any, count: int, kept: Any) -> None:
        self.on = on
        self.kept = kept  # events the poster has had accepted
        self.order = [bool(i % 4 in (1, 2)) for i in range(2 * count)]
        self.windows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        self.events = 0  # accepted in busy turns

    def __iter__(self) -> Iterator[bool]:
        for busy in self.order:
            if busy:
                self.on.set()
            else:
                self.on.clear()
            time.sleep(0.3)  # the change has reached the server
            start, before = time.monotonic(), self.kept.value
            yield busy
            self.windows[busy].append((start, time.monotonic()))
            self.events += (self.kept.value - before) if busy else 0
        self.on.clear()

    @property
    def rate(self) -> float:
        """Events accepted a second in the busy turns."""
        return self.events / sum(b - a for a, b in self.windows[True])

    def side(self, times: list[tuple[float, float]], busy: bool) -> list[float]:
        """The latencies of requests that started in a window of that side."""
        return [t for s, t in times if any(a <= s < b for a, b in self.windows[busy])]


def run(server: Server, seconds: float, rounds: int) -> None:
    with server.client() as c:
        info = _ready(c, {"text": SHORT * 4})
    audio = str(info["audio_url"])
    with server.client() as c:
        sentences = len(c.get(str(info["timings_url"])).json()["sentences"])
    ctx = multiprocessing.get_context("fork")
    on, stop, results, kept = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Value("l", 0)
    poster = ctx.Process(
        target=_ingest,
        args=(f"{server.url}/v1/events", str(info["id"]), sentences, on, stop, kept, results),
    )
    poster.start()
    rows: list[tuple[str, float, float]] = []

    # One listener: every request timed, sorted afterwards into quiet and busy.
    turns = Turns(on, rounds, kept)
    done, times_out = ctx.Event(), ctx.Queue()
    listener = ctx.Process(target=_listener, args=(audio, done, times_out))
    listener.start()
    for _ in turns:
        time.sleep(seconds)
    done.set()
    times = times_out.get(timeout=60)
    listener.join()
    quiet1, busy1 = turns.side(times, False), turns.side(times, True)
    rates = [turns.rate]
    rows.append(("cached audio p50, 1 conn", _pct(quiet1, 50), _pct(busy1, 50)))
    rows.append(("cached audio p99, 1 conn", _pct(quiet1, 99), _pct(busy1, 99)))

    # Eight connections flat out (wrk when installed): p99 of each turn.
    many: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
    turns = Turns(on, rounds, kept)
    for busy in turns:
        many[busy].append(measure(audio, "GET", {}, None, seconds))
    rates.append(turns.rate)
    for i, name in ((1, "cached audio p50, 8 conns"), (2, "cached audio p99, 8 conns")):
        q, b = (statistics.median(m[i] for m in many[side]) for side in (False, True))
        rows.append((name, q, b))

    # A reader's new article: post to its first audio byte.
    firsts: dict[bool, list[float]] = {False: [], True: []}
    turns = Turns(on, rounds, kept)
    for busy in turns:
        tag = f"{'繁忙' if busy else '安静'}{len(firsts[busy])}"
        firsts[busy].extend(_first_bytes(server, tag, count=3))
    rates.append(turns.rate)
    first_q, first_b = (statistics.median(firsts[side]) for side in (False, True))
    rows.append(("first audio byte (median)", first_q, first_b))

    stop.set()
    accepted, refused, posted = results.get(timeout=60)
    poster.join()
    print(f"{'':<28} {'quiet':>9} | {'1,000 events/s':>14}   ({rounds} turns each, by turns)")
    for name, q, b in rows:
        print(f"{name:<28} {q * 1e3:6.2f} ms | {b * 1e3:11.2f} ms   x {b / q:.2f}")
    rate = sum(m[0] for m in many[False]) / rounds, sum(m[0] for m in many[True]) / rounds
    print(f"{'cached audio req/s, 8 conns':<28} {rate[0]:9.0f} | {rate[1]:14.0f}")
    print(
        f"events accepted {accepted} in {posted:.0f} s ({accepted / posted:.0f}/s), batches"
        f" refused {refused}; target: cached-audio p99 and first byte x <= 1.10"
    )
    print(
        "events accepted a second in the busy turns: next to one listener {:.0f}, next to"
        " 8 connections flat out {:.0f}, next to new articles {:.0f} (the events worker"
        " takes only CPU the server leaves idle)".format(*rates)
    )
    with server.client() as c:
        stats = c.get(f"/v1/articles/{info['id']}/stats").json()
    print(f"rolled up: {stats['sessions']} sessions, {stats['listened_ms']} ms listened")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="each turn")
    parser.add_argument("--rounds", type=int, default=8, help="turns of each side")
    add_split_cpus(parser)
    args = parser.parse_args()
    with bench_server(
        args.split_cpus,
        preload_jieba="true",
        rate_limit_events="100000/minute;2000/second",  # one address posts it all
    ) as server:
        run(server, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
