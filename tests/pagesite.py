"""A web site on loopback for fetching tests: pages, redirects, slow and broken answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = "<html><head><title>新闻</title></head><body><p>兰州市召开新闻发布会。</p></body></html>"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    body: bytes = PAGE.encode()
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Site:
    port: int
    answers: dict[str, Answer]
    seen: list[tuple[str, str]]  # (path, Host header)
    statuses: list[tuple[str, int]] = field(default_factory=list)  # (path, status answered)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve_site() -> Iterator[Site]:
    """A site on a free loopback port, stopped on exit."""
    answers: dict[str, Answer] = {}
    seen: list[tuple[str, str]] = []
    statuses: list[tuple[str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Host", "")))
            answer = answers.get(self.path, Answer(404, {}, b"not here"))
            time.sleep(answer.delay)
            etag = answer.headers.get("ETag")
            if etag and self.headers.get("If-None-Match") == etag:  # a conditional GET
                statuses.append((self.path, 304))
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            statuses.append((self.path, answer.status))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(answer.body), 65536):
                    piece = answer.body[start : start + 65536]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Site(httpd.server_address[1], answers, seen, statuses)
    finally:
        httpd.shutdown()
        httpd.server_close()


def rss(*items: str) -> bytes:
    """An RSS 2.0 document (with the content module) holding `items`."""
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
        "xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel>"
        "<title>兰州晚报</title><link>https://news.example/</link><description>新闻</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def feed_answer(body: bytes, etag: str) -> Answer:
    """A feed as a site serves it, with an ETag (If-None-Match gets 304)."""
    return Answer(headers={"Content-Type": "application/rss+xml", "ETag": etag}, body=body)
