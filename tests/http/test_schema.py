"""The OpenAPI document holds: schemathesis (examples, coverage, fuzzing and stateful phases,
bounded in examples and time) against a real `langdu serve` finds no failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import start_server

pytestmark = pytest.mark.server

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.timeout(600)  # ~90 s of generated requests on 2 cores
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    # Fuzzed URLs are never fetched: no test reaches the network.
    server = start_server(tmp_path / "data", access_log="false", fetch_pages="false")
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/openapi.json",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "25",
                "--max-time",
                "90",
                # One worker: on CPython 3.11, hypothesis' ast.parse in two threads at once
                # can fail with "AST constructor recursion depth mismatch" (a runtime error).
                "--workers",
                "1",
                "--seed",
                "20261126",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    tail = "\n".join(proc.stdout.splitlines()[-60:])
    assert proc.returncode == 0, tail
    assert " passed" in tail, tail
