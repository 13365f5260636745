"""Benchmark the cluster configuration against the embedded default, side by side in one run.

    python tests/bench/bench_cluster.py [--trials 5] [--rounds 5] [--seconds 2] [--voice ID]

Starts one `langdu serve` with the embedded defaults (SQLite, local disk, in-process
readings) and a cluster of two `langdu serve` replicas and one `langdu worker` on real
PostgreSQL, Redis and SeaweedFS (the servers of `scripts/servers.py`: those named by
LANGDU_TEST_* if set, else started here and stopped after). Prints:
  1. time to first audio byte of an uncached article (the sample page, a new rate per trial
     so no sentence is cached): POST, then GET the audio stream. On the cluster the POST goes
     to replica A and the GET to replica B (the reading is a worker's, followed live);
     trials alternate between the two set-ups;
  2. cached-audio requests/s (wrk -t1 -c8, 64 KiB Range GETs, as a seeking player sends) on
     the rendering's URL and on the article's stable URL: the single node against each
     replica, alternating rounds. Goal: per replica >= 0.8x the single node; TTFA <= 1.5x.
Needs Debian's `wrk` (apt-get install wrk) and the cluster extra.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "fixtures" / "anning-page.html"
sys.path.insert(0, str(ROOT))

from tests.bench.bench_service import free_port, wait_http  # noqa: E402


def wrk(url: str, seconds: int, headers: list[str]) -> float:
    cmd = ["wrk", "-t1", "-c8", f"-d{seconds}s", *[a for h in headers for a in ("-H", h)], url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None or re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk failed:\n{out}")
    return float(m.group(1))


def _servers(stack: ExitStack) -> dict[str, str]:
    """The backends: from the environment, or started now (and stopped at the end)."""
    names = ("LANGDU_TEST_POSTGRES_URL", "LANGDU_TEST_REDIS_URL", "LANGDU_TEST_S3_ENDPOINT")
    if all(os.environ.get(n) for n in names):
        return dict(os.environ)
    sys.path.insert(0, str(ROOT / "scripts"))
    import servers

    base = Path(tempfile.mkdtemp(prefix="langdu-bench-servers-"))
    stack.callback(servers.stop, base)
    return {**os.environ, **servers.start(base)}


def _database(env: dict[str, str]) -> str:
    import sqlalchemy as sa

    admin = env["LANGDU_TEST_POSTGRES_URL"]
    name = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return admin.rsplit("/", 1)[0] + f"/{name}"


def _start(command: list[str], env: dict[str, str], probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(probe, proc)
    return proc


def _ttfa(post_to: str, listen_on: str, html: str, rate: str) -> float:
    """POST an article, GET its audio: ms to the first byte. Returns once it is all read, so
    that the next trial finds the machine idle."""
    started = time.perf_counter()
    article = httpx.post(f"{post_to}/v1/articles", json={"html": html, "rate": rate}, timeout=60)
    article.raise_for_status()
    url = f"{listen_on}/v1/articles/{article.json()['id']}/audio.mp3"
    first = None
    with httpx.stream("GET", url, timeout=300) as answer:
        for _ in answer.iter_bytes():
            if first is None:
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise SystemExit(f"no audio from {url}")
    _ready(post_to, article.json()["id"])
    return first


def _ready(server: str, article_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        info: dict[str, str] = httpx.get(f"{server}/v1/articles/{article_id}").json()
        if info["status"] == "ready":
            return info
        time.sleep(0.2)
    raise SystemExit(f"article {article_id} was never read")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--voice",
        default="cmn-offline",
        help="voice id (default: cmn-offline, espeak-ng: the set-ups, not the engine, are"
        " measured; bench_kokoro.py measures Kokoro)",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    html = SAMPLE.read_text(encoding="utf-8")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        env = _servers(stack)
        common = {
            **env,
            "LANGDU_ACCESS_LOG": "false",
            "LANGDU_PRELOAD_JIEBA": "false",
            "LANGDU_DEFAULT_VOICE": args.voice,
            "LANGDU_FALLBACK_VOICE": args.voice,
        }
        cluster = {
            **common,
            "LANGDU_DATABASE_URL": _database(env),
            "LANGDU_STORAGE_URL": f"s3://{env['LANGDU_TEST_S3_BUCKET']}/bench-{uuid.uuid4().hex[:8]}",
            "LANGDU_QUEUE_URL": env["LANGDU_TEST_REDIS_URL"],
            "LANGDU_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            "AWS_ENDPOINT_URL": env["LANGDU_TEST_S3_ENDPOINT"],
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": env["LANGDU_TEST_S3_KEY"],
            "AWS_SECRET_ACCESS_KEY": env["LANGDU_TEST_S3_SECRET"],
        }
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()

        stack.callback(stop_all)
        urls = {}
        for name, extra in (("single", {"LANGDU_DATA_DIR": f"{tmp}/single"}),
                            ("a", {"LANGDU_DATA_DIR": f"{tmp}/a"}),
                            ("b", {"LANGDU_DATA_DIR": f"{tmp}/b"})):  # fmt: skip
            port = free_port()
            settings = {**(common if name == "single" else cluster), **extra}
            procs.append(
                _start(["serve", "--port", str(port)], settings, f"http://127.0.0.1:{port}/healthz")
            )
            urls[name] = f"http://127.0.0.1:{port}"
        metrics_port = free_port()
        procs.append(
            _start(
                ["worker", "--metrics-port", str(metrics_port)],
                {**cluster, "LANGDU_DATA_DIR": f"{tmp}/worker"},
                f"http://127.0.0.1:{metrics_port}/",
            )
        )
        single, a, b = urls["single"], urls["a"], urls["b"]

        # Warm both (the first reading loads models), then alternate trials.
        for post_to, listen_on in ((single, single), (a, b)):
            _ttfa(post_to, listen_on, html, "+0%")
        ttfa: dict[str, list[float]] = {"single": [], "cluster": []}
        for trial in range(args.trials):
            rate = f"+{trial + 1}%"
            ttfa["single"].append(_ttfa(single, single, html, rate))
            ttfa["cluster"].append(_ttfa(a, b, html, rate))
        ratio = statistics.median(ttfa["cluster"]) / statistics.median(ttfa["single"])
        print(
            f"time to first audio byte, uncached sample article, {args.trials} alternating trials:"
        )
        for name, values in ttfa.items():
            print(
                f"  {name:8s} median {statistics.median(values):6.0f} ms  "
                f"(min {min(values):.0f}, max {max(values):.0f})"
            )
        print(f"  cluster / single: {ratio:.2f}  (target <= 1.5)")

        # Cached audio: the same (ready) article on both set-ups.
        article_ids = {}
        for name, server in (("single", single), ("cluster", a)):
            article = httpx.post(f"{server}/v1/articles", json={"html": html}).json()
            article_ids[name] = article["id"]
            _ready(server, article["id"])
        info_single = _ready(single, article_ids["single"])
        info_cluster = _ready(b, article_ids["cluster"])
        size = len(httpx.get(info_single["audio_url"], timeout=60).content)
        lo = size // 3
        headers = [f"Range: bytes={lo}-{lo + 65535}"]
        cases = [
            ("rendering URL", info_single["audio_url"], info_cluster["audio_url"]),
            (
                "stable URL",
                f"{single}/v1/articles/{article_ids['single']}/audio.mp3",
                f"{{replica}}/v1/articles/{article_ids['cluster']}/audio.mp3",
            ),
        ]
        print(
            f"cached audio, 64 KiB Range GETs, {args.rounds} alternating rounds of "
            f"wrk -t1 -c8 -d{args.seconds}s; {os.cpu_count()} cores"
        )
        for label, single_url, cluster_url in cases:
            ours: dict[str, list[float]] = {"single": [], "a": [], "b": []}
            for _ in range(args.rounds):
                ours["single"].append(wrk(single_url, args.seconds, headers))
                for replica in ("a", "b"):
                    url = cluster_url.replace(b, urls[replica]).replace(a, urls[replica])
                    url = url.replace("{replica}", urls[replica])
                    ours[replica].append(wrk(url, args.seconds, headers))
            base = statistics.median(ours["single"])
            per_replica = [statistics.median(ours[r]) for r in ("a", "b")]
            print(
                f"  {label:13s} single {base:7.0f} req/s   replica A {per_replica[0]:7.0f}   "
                f"replica B {per_replica[1]:7.0f}   per replica / single "
                f"{min(per_replica) / base:.2f}  (target >= 0.8)"
            )


if __name__ == "__main__":
    main()
