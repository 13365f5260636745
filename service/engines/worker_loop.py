"""The child side of an engine worker (see service.engines.workers): greet, then answer
one request per line until stdin closes. Imports only json, so workers start fast."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO

Handler = Callable[[dict[str, Any]], tuple[bytes, dict[str, Any]]]


def answer(stdin: BinaryIO, stdout: BinaryIO, rate: int, handle: Handler) -> None:
    """Greet with the sample rate; then for each request line, `handle(request)` gives
    (payload, extra reply fields); a ValueError, KeyError, TypeError or RuntimeError is
    the request's refusal, and the worker goes on."""
    stdout.write(json.dumps({"ok": True, "rate": rate, "bytes": 0}).encode() + b"\n")
    stdout.flush()
    for line in stdin:
        try:
            payload, extra = handle(json.loads(line))
            head: dict[str, Any] = {"ok": True, "rate": rate, "bytes": len(payload), **extra}
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            payload = b""
            head = {"ok": False, "error": str(exc)}
        stdout.write(json.dumps(head).encode() + b"\n" + payload)
        stdout.flush()
