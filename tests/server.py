"""A real `langdu serve` (uvicorn) on a free loopback port, for HTTP and browser tests."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(data_dir: Path, defaults: bool, env: dict[str, str]) -> dict[str, str]:
    # jieba loads on demand unless a test measures first-article latency (preload_jieba=...).
    return {
        **os.environ,
        "LANGDU_PRELOAD_JIEBA": "false",
        "LANGDU_DATA_DIR": str(data_dir),
        "LANGDU_WORKERS": "2",
        # Tests post fast from one address; the limits have their own tests.
        "LANGDU_RATE_LIMIT_WRITES": "100000/minute",
        "LANGDU_RATE_LIMIT_SPEECH": "100000/minute",
        # espeak-ng, the fast offline voice, unless a test is about another (Kokoro, the
        # default, has tests of its own that start the server with the defaults).
        **({} if defaults else {"LANGDU_DEFAULT_VOICE": "cmn-offline"}),
        **({} if defaults else {"LANGDU_FALLBACK_VOICE": "cmn-offline"}),
        **{f"LANGDU_{k.upper()}": v for k, v in env.items()},
    }


def start_server(
    data_dir: Path, *, defaults: bool = False, nofile: int | None = None, **env: str
) -> Server:
    """`langdu serve` with `env` as LANGDU_ settings; `nofile`: its open-file limit, soft
    and hard (`ulimit -n`, as a container or a service unit may set it)."""
    port = _free_port()
    log = data_dir.parent / f"server-{port}.log"
    environment = _environment(data_dir, defaults, env)

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
            preexec_fn=limit if nofile is not None else None,
        )
    return _started(Server(proc, f"http://127.0.0.1:{port}", data_dir, log), "/healthz")


def _started(server: Server, probe: str) -> Server:
    """`server` once `probe` answers 200 (its log in the error if it never does)."""
    what = server.log.name.split("-")[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"{what} exited: {server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}{probe}", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"{what} did not start: {server.log.read_text()}")


def start_worker(data_dir: Path, **env: str) -> Server:
    """A real `langdu worker` (cluster settings in `env`); its url serves its metrics."""
    port = _free_port()
    log = data_dir.parent / f"worker-{port}.log"
    environment = _environment(data_dir, False, env)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "worker", "--metrics-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    return _started(Server(proc, f"http://127.0.0.1:{port}", data_dir, log), "/")


def metric(server: Server, name: str, **labels: str) -> float:
    """One Prometheus sample of a server's (or worker's) metrics: 0 if it has none yet."""
    text = httpx.get(server.url if "worker" in server.log.name else f"{server.url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_episode(c: httpx.Client, article_id: str, timeout: float = 120) -> None:
    """Until the article's podcast episode is served."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = c.head(f"/v1/articles/{article_id}/episode.mp3")
        if head.status_code == 200:
            assert int(head.headers["content-length"]) > 1000
            return
        time.sleep(0.2)
    raise AssertionError("episode never appeared")
