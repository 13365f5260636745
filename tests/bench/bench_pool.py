"""Benchmark the worker pool (service.runtime.respawn) next to the standard library's
ProcessPoolExecutor, side by side in one run.

    python tests/bench/bench_pool.py [--calls 2000] [--workers 2]

Round trip: µs a call for a 200-character argument and answer (what the text front-end
sends per sentence), one call at a time and all submitted at once; best of 3 rounds.
Killed mid-answer: a worker is SIGKILLed while it writes a 256 MB answer; how long until
the call has its answer (our pool runs it again on a new worker) or is seen failed.
ProcessPoolExecutor waits for the rest of the message for ever: it is given 10 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.runtime.respawn import RespawningPool
from tests.procs import writing

ANSWER = 256 * 1024 * 1024


def echo(text: str) -> str:
    return text


def large(size: int) -> bytes:
    return b"x" * size


def round_trip(pool: Executor, calls: int) -> tuple[float, float]:
    text = "安宁区召开党建工作会议" * 20
    one = many = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            pool.submit(echo, text).result()
        one = min(one, (time.perf_counter() - started) / calls * 1e6)
        started = time.perf_counter()
        for future in [pool.submit(echo, text) for _ in range(calls)]:
            future.result()
        many = min(many, (time.perf_counter() - started) / calls * 1e6)
    return one, many


def killed_mid_answer(pool: Executor) -> str:
    pid = pool.submit(os.getpid).result()
    answer = pool.submit(large, ANSWER)
    while not writing(pid):
        if answer.done():
            return "answered before it could be killed"
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    started = time.perf_counter()
    try:
        got = answer.result(10)
        return f"answered again in {time.perf_counter() - started:.2f} s ({len(got)} bytes)"
    except FutureTimeout:
        return "no answer and no error after 10 s (the call hangs for ever)"
    except Exception as exc:
        return f"failed in {time.perf_counter() - started:.2f} s: {type(exc).__name__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    pools: list[tuple[str, Callable[[int], Executor]]] = [
        (
            "ProcessPoolExecutor",
            lambda n: ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")),
        ),
        ("RespawningPool", lambda n: RespawningPool(n)),
    ]
    trips = {}
    for name, make in pools:
        pool = make(args.workers)
        for future in [pool.submit(os.getpid) for _ in range(args.workers * 4)]:
            future.result()
        trips[name] = round_trip(pool, args.calls)
        pool.shutdown(wait=False)
    (ppe_one, ppe_many), (ours_one, ours_many) = trips.values()
    print(f"round trip, {args.workers} workers, {args.calls} calls (best of 3):")
    for label, ppe, ours in (
        ("one at a time", ppe_one, ours_one),
        ("all at once", ppe_many, ours_many),
    ):
        print(f"  {label:13}: {ppe:6.0f} -> {ours:6.0f} us a call  x{ours / ppe:.2f}")
    print("the only worker killed while writing a 256 MB answer:")
    for name, make in pools:
        print(f"  {name:20}: {killed_mid_answer(make(1))}")
    sys.stdout.flush()
    os._exit(0)  # the wedged ProcessPoolExecutor's threads would keep the process alive


if __name__ == "__main__":
    main()
