"""Benchmark the service: time to first audio byte, and cached-MP3 throughput against nginx.

    python tests/bench/bench_service.py [--trials 5] [--rounds 5] [--seconds 2]

Needs Debian's `nginx` and `wrk` (apt-get install nginx-light wrk). Starts `langdu serve`
and nginx on loopback ports, side by side in one run:
  1. time to first audio byte of an uncached article (the sample page; each trial uses a
     different rate so no sentence is in the cache): POST, then GET the audio stream;
  2. requests/s for the same finished MP3 file, from langdu and from nginx (one worker
     process each, as langdu runs one), as whole-file GETs and as 64 KiB Range GETs (what a
     seeking <audio> element sends); reported as ratios langdu/nginx.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT.parent / "shared" / "fixtures" / "anning-page.html"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, seconds: int, headers: list[str]) -> float:
    cmd = ["wrk", "-t1", "-c8", f"-d{seconds}s", *[a for h in headers for a in ("-H", h)], url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m is None or errors:
        raise SystemExit(f"wrk failed:\n{out}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is needed: apt-get install nginx-light wrk")

    html = SAMPLE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        # Same footing as nginx below: one process, no access log.
        env = {**os.environ, "LANGDU_DATA_DIR": f"{tmp}/data", "LANGDU_ACCESS_LOG": "false"}
        langdu = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx: subprocess.Popen[bytes] | None = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", langdu)
            ttfb: list[float] = []
            audio_url = stable_url = ""
            with httpx.Client(base_url=base, timeout=300) as client:
                for trial in range(args.trials):
                    started = time.perf_counter()
                    article = client.post(
                        "/v1/articles", json={"html": html, "rate": f"+{trial + 1}%"}
                    ).json()
                    with client.stream("GET", article["audio_url"]) as r:
                        for i, _ in enumerate(r.iter_bytes()):
                            if i == 0:
                                ttfb.append((time.perf_counter() - started) * 1000)
                    audio_url = article["audio_url"]
                # Once stored: the rendering's own URL (the in-memory hot path) and the
                # article's stable URL (the framework path, which asks the registry).
                stable_url = f"{base}/v1/articles/{article['id']}/audio.mp3"
                audio_url = client.get(f"/v1/articles/{article['id']}").json()["audio_url"]
                audio = client.get(audio_url).content
            print(
                f"time to first audio byte, uncached sample article ({args.trials} trials): "
                f"median {statistics.median(ttfb):.0f} ms, "
                f"min {min(ttfb):.0f} ms, max {max(ttfb):.0f} ms   (target < 300 ms)"
            )

            root = Path(tmp, "www")
            root.mkdir()
            (root / "a.mp3").write_bytes(audio)
            for readable in (Path(tmp), root, root / "a.mp3"):  # nginx workers drop root
                readable.chmod(0o755)
            nport = free_port()
            conf = Path(tmp, "nginx.conf")
            conf.write_text(f"""
                worker_processes 1;
                daemon off;
                pid {tmp}/nginx.pid;
                error_log {tmp}/nginx-error.log;
                events {{ worker_connections 1024; }}
                http {{
                    access_log off;
                    sendfile on;
                    types {{ audio/mpeg mp3; }}
                    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
                    fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi;
                    scgi_temp_path {tmp}/scgi;
                    server {{ listen 127.0.0.1:{nport}; root {root}; }}
                }}
            """)
            nginx = subprocess.Popen(
                ["nginx", "-c", str(conf), "-p", tmp],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            nginx_url = f"http://127.0.0.1:{nport}/a.mp3"
            wait_http(nginx_url, nginx)
            size = len(audio)
            lo = size // 3
            cases = [
                ("whole file", audio_url, []),
                ("64 KiB Range", audio_url, [f"Range: bytes={lo}-{lo + 65535}"]),
                ("stable URL", stable_url, [f"Range: bytes={lo}-{lo + 65535}"]),
            ]
            print(
                f"cached MP3: {size / 1e6:.1f} MB; {args.rounds} alternating rounds of "
                f"wrk -t1 -c8 -d{args.seconds}s per server; {os.cpu_count()} cores"
            )
            for name, url, headers in cases:
                ours, theirs, ratios = [], [], []
                for _ in range(args.rounds):  # alternate, so both see the same machine
                    ours.append(wrk(url, args.seconds, headers))
                    theirs.append(wrk(nginx_url, args.seconds, headers))
                    ratios.append(ours[-1] / theirs[-1])
                print(
                    f"  {name:13s} langdu {statistics.median(ours):8.0f} req/s   "
                    f"nginx {statistics.median(theirs):8.0f} req/s   ratio median "
                    f"{statistics.median(ratios):.2f} (rounds: "
                    f"{', '.join(f'{r:.2f}' for r in ratios)})  (target >= 0.3)"
                )
        finally:
            for proc in (langdu, nginx):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(10)


if __name__ == "__main__":
    main()
