#!/usr/bin/env python3
"""Mutation testing of the modules that carry langdu's promises, with cosmic-ray (pinned in
the dev extra): each group's modules are mutated one small change at a time, in a copy of
the tree, and the group's fast tests must fail on each mutant.

    python scripts/mutation.py [GROUP ...] [--list]

Prints one line per group, `<group>: killed K of N (P%)`, then its survivors and time-outs.
Survivors that are known and explained are kept in `tests/mutation_survivors.toml` (one
line each: an equivalent mutant, or the test still to write); a survivor not listed there
is printed as new. Not part of every CI run (minutes per group on 2 cores).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURVIVORS = ROOT / "tests" / "mutation_survivors.toml"


@dataclass(frozen=True)
class Group:
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    target: float  # the share of mutants the tests must kill
    pytest_args: tuple[str, ...] = ()  # e.g. leave out timing tests: they kill nothing


GROUPS = {
    "serving": Group(("service/http/serving.py",), ("tests/http/test_serving.py",), 0.9),
    "admission": Group(("service/http/admission.py",), ("tests/http/test_admission.py",), 0.9),
    "hygiene": Group(
        ("service/http/hygiene.py", "service/text/clean.py"), ("tests/http/test_hygiene.py",), 0.9
    ),
    "integrity": Group(
        ("service/store/__init__.py",),
        ("tests/store/test_store.py", "tests/core/test_integrity.py"),
        0.9,
    ),
    "queue": Group(
        ("service/core/jobs.py",),
        ("tests/core/test_jobs.py",),
        0.8,
    ),
    "normalizer": Group(
        ("service/text/normalize.py",),
        ("tests/text/test_normalize.py", "tests/text/test_lexicon.py"),
        0.8,
        ("-k", "not test_time_grows_linearly_with_input"),
    ),
}


def _copy_tree(dest: Path) -> None:
    """The tracked files (and any uncommitted edits to them) of the working tree."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())


def _env() -> dict[str, str]:
    """The tests' environment in the copy: the shared fixtures stay where they are, and a
    skipped test is not a killed mutant (no CI=1 here)."""
    shared = os.environ.get("LANGDU_SHARED", str(ROOT.parent / "shared"))
    return {
        **os.environ,
        "CI": "",
        "LANGDU_SHARED": shared,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


def _baseline(tree: Path, group: Group) -> float:
    started = time.monotonic()
    run = subprocess.run(_pytest(group), cwd=tree, env=_env(), capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"the unmutated tests fail:\n{run.stdout[-3000:]}")
    return time.monotonic() - started


def _pytest(group: Group) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",  # the plugins the tests use, and no others: startup 2.0 -> 0.5 s a mutant
        "anyio",
        "-p",
        "pytest_timeout",
        *group.pytest_args,
        *group.tests,
    ]


Span = tuple[tuple[int, int], tuple[int, int]]  # (line, column) start and end, in characters


def annotation_spans(source: str) -> list[Span]:
    """Where the module's type annotations are: with `from __future__ import annotations`
    they are never evaluated, so a mutant inside one (`str | None` -> `str & None`) is
    equivalent by construction and is not run."""
    lines = source.splitlines()

    def column(line: int, byte_offset: int) -> int:  # ast counts UTF-8 bytes, parso characters
        return len(lines[line - 1].encode()[:byte_offset].decode(errors="ignore"))

    spans: list[Span] = []
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for expr in filter(None, found):
            assert expr.end_lineno is not None and expr.end_col_offset is not None
            spans.append(
                (
                    (expr.lineno, column(expr.lineno, expr.col_offset)),
                    (expr.end_lineno, column(expr.end_lineno, expr.end_col_offset)),
                )
            )
    return spans


def skip_annotations(session: Path, tree: Path) -> int:
    """Mark the session's mutants that sit inside a type annotation as skipped."""
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    skipped = 0
    spans: dict[Path, list[Span]] = {}
    with use_db(str(session)) as db:
        for item in db.work_items:
            for mutation in item.mutations:
                path = tree / mutation.module_path
                if path not in spans:
                    spans[path] = annotation_spans(path.read_text(encoding="utf-8"))
                start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
                if any(a <= start and end <= b for a, b in spans[path]):
                    db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
                    skipped += 1
                    break
    return skipped


SECONDS_PER_MUTANT = 0.8  # cosmic-ray's own cost per mutant here, beside the tests' run


class OutOfBudget(Exception):
    """The group would not finish (or did not finish) within the time it was given."""


def _cosmic(step: str, config: Path, session: Path, tree: Path, timeout: float | None) -> str:
    args = [str(session)] if step == "dump" else [str(config), str(session)]
    with subprocess.Popen(
        [sys.executable, "-m", "cosmic_ray.cli", step, *args],
        cwd=tree,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its test runs too are stopped with it
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise OutOfBudget(f"{step} did not finish in {timeout:.0f} s") from None
    if proc.returncode:
        raise RuntimeError(f"cosmic-ray {step} failed ({proc.returncode}): {err.strip()[-2000:]}")
    return out


def _pending(session: Path) -> int:
    from cosmic_ray.work_db import use_db

    with use_db(str(session)) as db:
        return sum(1 for _ in db.pending_work_items)


def run_group(name: str, group: Group, budget: float | None = None) -> dict[str, list[str]]:
    """Mutate the group's modules in a fresh copy of the tree; the outcome of each mutant.

    With a budget (seconds), raise OutOfBudget instead of starting work that is estimated
    to take longer (mutants x (the tests' time + cosmic-ray's)), or that runs past it."""
    started = time.monotonic()
    outcomes: dict[str, list[str]] = {
        "killed": [],
        "survived": [],
        "timeout": [],
        "incompetent": [],  # the mutant is not valid Python: not counted
        "annotation": [],  # inside a type annotation, never evaluated: not run
    }
    with tempfile.TemporaryDirectory(prefix=f"langdu-mutation-{name}-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        baseline = _baseline(tree, group)
        timeout = max(10.0, 3 * baseline)
        sessions: list[tuple[Path, Path]] = []
        for module in group.modules:
            stem = f"{name}-{Path(module).stem}"
            config = tree / f"{stem}.toml"
            command = shlex.join(_pytest(group))
            config.write_text(
                "[cosmic-ray]\n"
                f"module-path = {json.dumps(module)}\n"
                f"timeout = {timeout:.0f}\n"
                "excluded-modules = []\n"
                f"test-command = {json.dumps(command)}\n"
                "[cosmic-ray.distributor]\n"
                'name = "local"\n'
            )
            session = tree / f"{stem}.sqlite"
            _cosmic("init", config, session, tree, None)
            skip_annotations(session, tree)
            sessions.append((config, session))
        if budget is not None:
            mutants = sum(_pending(session) for _, session in sessions)
            estimate = mutants * (baseline + SECONDS_PER_MUTANT)
            left = budget - (time.monotonic() - started)
            if estimate > left:
                raise OutOfBudget(f"{mutants} mutants, estimated {estimate:.0f} s > {left:.0f} s")
        for config, session in sessions:
            remaining = None if budget is None else budget - (time.monotonic() - started)
            _cosmic("exec", config, session, tree, remaining)
            for line in _cosmic("dump", config, session, tree, None).splitlines():
                item, result = json.loads(line)
                for mutation in item["mutations"]:
                    where = (
                        f"{mutation['module_path']}:{mutation['start_pos'][0]} "
                        f"{mutation['operator_name'].split('/')[-1]}#{mutation['occurrence']}"
                    )
                    outcome = (result or {}).get("test_outcome")
                    if (result or {}).get("worker_outcome") == "skipped":
                        outcome = "annotation"
                    elif outcome is None:
                        raise RuntimeError(f"cosmic-ray did not test {where}: {result}")
                    if outcome == "killed" and (result or {}).get("output") == "timeout":
                        outcome = "timeout"
                    outcomes[str(outcome)].append(where)
    return outcomes


def changed_groups(rev: str) -> list[str]:
    """The groups whose modules or tests differ between `rev` and the working tree."""
    try:
        names = subprocess.run(
            ["git", "diff", "--name-only", rev, "--"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.split()
    except subprocess.CalledProcessError as exc:
        raise ValueError(f"cannot compare with {rev!r}: {exc.stderr.strip()}") from None
    changed = set(names)
    return [name for name, group in GROUPS.items() if changed & {*group.modules, *group.tests}]


def known_survivors() -> dict[str, str]:
    """`where` -> why, from tests/mutation_survivors.toml."""
    if not SURVIVORS.exists():
        return {}
    doc = tomllib.loads(SURVIVORS.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in doc.get("survivors", {}).items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("groups", nargs="*", help=f"some of {', '.join(GROUPS)} (default: all)")
    ap.add_argument("--list", action="store_true", help="list the groups and their modules")
    ap.add_argument(
        "--changed",
        nargs="?",
        const="HEAD~1",
        metavar="REV",
        help="only the groups whose modules or tests changed since REV (default HEAD~1)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="skip a group estimated to take longer than what is left of this (stop one that does)",
    )
    args = ap.parse_args()
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        print(f"mutation: no group {unknown[0]!r} (there are {', '.join(GROUPS)})", file=sys.stderr)
        return 2
    if args.budget is not None and args.budget <= 0:
        print("mutation: --budget must be a positive number of seconds", file=sys.stderr)
        return 2
    if args.list:
        for name, group in GROUPS.items():
            print(f"{name}: {' '.join(group.modules)} <- {' '.join(group.tests)}")
        return 0
    names = args.groups or list(GROUPS)
    if args.changed is not None:
        try:
            touched = changed_groups(args.changed)
        except ValueError as exc:  # not a revision: bad input, one line and exit 2
            print(f"mutation: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        names = [n for n in names if n in touched]
        print(f"changed since {args.changed}: {', '.join(names) or 'no group'}", flush=True)
    known = known_survivors()
    below = []
    began = time.monotonic()
    for name in names:
        group = GROUPS[name]
        started = time.monotonic()
        left = None if args.budget is None else args.budget - (started - began)
        if left is not None and left <= 0:
            print(f"{name}: not run, the time budget is spent", flush=True)
            continue
        try:
            out = run_group(name, group, left)
        except OutOfBudget as exc:
            print(f"{name}: not run, over the time budget ({exc})", flush=True)
            continue
        total = len(out["killed"]) + len(out["survived"]) + len(out["timeout"])
        killed = len(out["killed"]) + len(out["timeout"])  # a mutant that hangs is caught
        share = killed / total if total else 1.0
        print(
            f"{name}: killed {killed} of {total} ({share:.0%}; target {group.target:.0%}) "
            f"in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        if out["annotation"]:
            print(f"  not run: {len(out['annotation'])} inside type annotations (equivalent)")
        for where in out["timeout"]:
            print(f"  timeout  {where}")
        for where in out["survived"]:
            print(f"  survived {where}  -- {known.get(where, 'NEW: explain it or kill it')}")
        if share < group.target:
            below.append(name)
    if below:
        print(f"below target: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
