"""Abuse and faults against a real `langdu serve` on loopback (bounded in count and time):
slow headers and bodies, huge inputs, odd JSON on the wire, one client flooding the queue,
a server killed with its engine workers running."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import children, named, running
from tests.server import Server, start_server

pytestmark = pytest.mark.server

SHORT = "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效。"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(
        tmp_path_factory.mktemp("abuse") / "data",
        header_timeout_s="2",
        body_timeout_s="2",
        api_keys="flood,reader,other",
        # The real limits: what an abusive client meets in production.
        rate_limit_writes="60/minute;10/second",
        rate_limit_speech="30/minute",
    )
    yield s
    s.stop()


def _ready_audio(c: httpx.Client, text: str, key: str = "other") -> str:
    r = c.post("/v1/articles", json={"text": text}, headers={"X-API-Key": key})
    assert r.status_code in (200, 201), r.text
    article_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = c.get(f"/v1/articles/{article_id}").json()
        if info["status"] == "ready":
            return str(info["audio_url"])
        time.sleep(0.05)
    raise AssertionError("never ready")


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def _descriptors(n: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_slow_header_connections_do_not_stop_service(server: Server) -> None:
    with server.client() as c:
        audio = _ready_audio(c, SHORT)
    with _descriptors(4096):
        socks = []
        try:
            for _ in range(1000):  # from another address than the checks below
                s = socket.create_connection(("127.0.0.1", _port(server)), None, ("127.0.0.2", 0))
                socks.append(s)
                with contextlib.suppress(OSError):  # refused on arrival: reset
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            with server.client() as c:
                for _ in range(5):
                    started = time.monotonic()
                    assert c.get("/healthz").status_code == 200
                    assert c.get(audio).status_code == 200
                    assert time.monotonic() - started < 1.0
            # One address holds 64 at most (the rest were closed on arrival); the server
            # closes every one of them once the header timeout passes.
            assert _closed_by_server(socks, within=6.0) >= 990
        finally:
            for s in socks:
                s.close()


def _closed_by_server(socks: list[socket.socket], within: float) -> int:
    """How many of the sockets the server closes before `within` seconds pass."""
    closed = 0
    pending = {s.fileno(): s for s in socks}
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                s = pending.pop(key.fd)
                sel.unregister(s)
                try:
                    closed += s.recv(1) == b""
                except OSError:
                    closed += 1
    return closed


def test_a_stalled_body_is_timed_out(server: Server) -> None:
    s = socket.create_connection(("127.0.0.1", _port(server)))
    try:
        s.sendall(
            b"POST /v1/articles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'X-API-Key: other\r\nContent-Length: 1000\r\n\r\n{"text": "'
        )
        assert _closed_by_server([s], within=6.0) == 1
    finally:
        s.close()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"text": "\\ud800"}', 400),
        (b'{"text": "abc", "rate": NaN}', 400),
        (b'{"text": "abc", "text": "x"}', 400),
    ],
)
def test_odd_json_on_the_wire_is_a_clean_400(server: Server, body: bytes, status: int) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/articles",
            content=body,
            headers={"Content-Type": "application/json", "X-API-Key": "other"},
        )
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")


def test_huge_inputs_are_refused_quickly(server: Server) -> None:
    with server.client() as c:
        started = time.monotonic()
        speech = c.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": "安" * 100_000},
            headers={"X-API-Key": "other"},
        )
        digits = c.post("/v1/articles", json={"text": "9" * 20_000}, headers={"X-API-Key": "other"})
        elapsed = time.monotonic() - started
    assert speech.status_code == 422 and digits.status_code == 422
    assert elapsed < 3, elapsed


def _latencies(url: str, stop: threading.Event, out: list[float], errors: list[str]) -> None:
    """Time GETs of `url` until told to stop; what went wrong is kept for the test's own
    thread to assert on (an assertion in this thread would only be a warning)."""
    with httpx.Client(timeout=30) as c:
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = c.get(url)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}")
                continue
            out.append(time.monotonic() - started)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def _measure(url: str, seconds: float, during: Callable[[], None] | None = None) -> list[float]:
    out: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=_latencies, args=(url, stop, out, errors))
    t.start()
    try:
        if during is not None:
            during()
        time.sleep(seconds)
    finally:
        stop.set()
        t.join()
    assert not errors, f"{len(errors)} failed requests, e.g. {errors[:3]}"
    assert out, "no request was answered"
    return out


def _abuse(
    url: str, big: str, codes: multiprocessing.Queue[int], slow_done: Any, salt: str = ""
) -> None:
    """One abusive client, in a process of its own (its threads must not share the
    measuring client's interpreter lock): 200 slow-header connections from one address,
    two bursts of 80 posts and six 1.2 MB pages from another."""
    port = int(url.rsplit(":", 1)[1])
    slow = []
    for _ in range(200):  # its own address (the listeners' is 127.0.0.1): 64 are held
        s = socket.create_connection(("127.0.0.1", port), None, ("127.0.0.2", 0))
        with contextlib.suppress(OSError):  # refused on arrival: reset
            s.sendall(b"POST /v1/articles HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    slow_done.set()

    def burst() -> None:
        # Posts from a second address: the first holds its share of connections already.
        transport = httpx.HTTPTransport(local_address="127.0.0.6")
        with httpx.Client(
            base_url=url, timeout=60, headers={"X-API-Key": "flood"}, transport=transport
        ) as f:
            for n in range(80):
                body = {"text": f"{salt}第{n}篇。{SHORT * 40}"}
                codes.put(f.post("/v1/articles", json=body).status_code)
            for n in range(6):
                codes.put(f.post("/v1/articles", json={"html": f"{big}{n}"}).status_code)

    threads = [threading.Thread(target=burst) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(3)
    for s in slow:
        s.close()


def test_one_abusive_client_does_not_hold_back_another(server: Server, sample_html: Path) -> None:
    with server.client() as c:
        audio = _ready_audio(c, SHORT + "（二）")
    quiet = _measure(audio, 4.0)

    page = sample_html.read_text(encoding="utf-8")
    filler = "<p>" + "安宁区全面加强城市基层党建工作。" * 25 + "</p>\n"
    big = page.replace("</body>", filler * (1_200_000 // len(filler.encode())) + "</body>")
    ctx = multiprocessing.get_context("fork")
    codes: multiprocessing.Queue[int] = ctx.Queue()
    slow_done = ctx.Event()
    abuser = ctx.Process(target=_abuse, args=(server.url, big, codes, slow_done))
    first_byte = 0.0
    first = b""

    def start_abuse_and_read() -> None:
        nonlocal first_byte, first
        abuser.start()
        assert slow_done.wait(30)
        time.sleep(0.5)
        with server.client() as c:
            started = time.monotonic()
            r = c.post(
                "/v1/articles",
                json={"text": "读者的新文章：" + SHORT},
                headers={"X-API-Key": "reader"},
            )
            assert r.status_code == 201, r.text
            with c.stream("GET", r.json()["audio_url"]) as audio_stream:
                first = next(audio_stream.iter_bytes())
            first_byte = time.monotonic() - started

    noisy = _measure(audio, 4.0, start_abuse_and_read)
    abuser.join(60)
    seen = set()
    while not codes.empty():
        seen.add(codes.get())
    q, n = _p99(quiet), _p99(noisy)
    print(
        f"new article's first byte {first_byte * 1000:.0f} ms; cached audio p99 quiet"
        f" {q * 1000:.1f} ms ({len(quiet)} GETs), under abuse {n * 1000:.1f} ms"
        f" ({len(noisy)} GETs); abusive client answered {sorted(seen)}"
    )
    assert first and first_byte < 1.0, first_byte
    assert 429 in seen  # the flood was told to slow down
    # CI does not time things closely: a stall (seconds) fails here; the 2x target is
    # measured side by side by tests/bench/bench_load.py.
    assert n <= 10 * q + 0.05, (q, n)


def test_killing_the_server_takes_its_engine_workers_with_it(tmp_path: Path) -> None:
    s = start_server(tmp_path / "data")
    try:
        with s.client() as c:
            _ready_audio(c, SHORT)
            # Killed in the middle of reading a long article: workers busy, pipes full.
            long_text = "\n".join(f"第{n}段。{SHORT * 6}" for n in range(200))
            r = c.post("/v1/articles", json={"text": long_text}, headers={"X-API-Key": "x"})
            assert r.status_code == 201
            time.sleep(1.0)
        workers = children(s.proc.pid)
        assert len(workers) >= 2, "no engine or parsing worker was started"
    finally:
        s.stop(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(running(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if running(p)]


def test_a_killed_text_worker_is_replaced_and_the_reading_finishes(server: Server) -> None:
    # The kernel's OOM killer or a crash in native code takes a worker of the text
    # front-end in the middle of an article: the article is still read to the end, and
    # the server goes on reading (a plain process pool would be broken until a restart).
    text = "\n".join(f"第{n}段：{SHORT}会议要求各级党组织抓好落实。" for n in range(40))
    with server.client() as c:
        r = c.post("/v1/articles", json={"text": text}, headers={"X-API-Key": "other"})
        assert r.status_code == 201, r.text
        article = r.json()["id"]
        text_workers = named(server.proc.pid, "langdu-text")
        assert text_workers, "no text front-end worker found"
        background = [*text_workers, *named(server.proc.pid, "langdu-espeak")]
        assert {os.sched_getscheduler(pid) for pid in background} == {os.SCHED_BATCH}
        time.sleep(0.3)
        for pid in text_workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            info = c.get(f"/v1/articles/{article}").json()
            if info["status"] in ("ready", "failed"):
                break
            time.sleep(0.1)
        assert info["status"] == "ready", info
        assert info["sentences"] == 80, info
        audio = c.get(info["audio_url"])
        assert audio.status_code == 200 and len(audio.content) > 100_000
        replaced = named(server.proc.pid, "langdu-text")
        assert replaced and not set(replaced) & set(text_workers)
        assert _ready_audio(c, "杀掉之后的下一篇文章。" + SHORT)
