"""What a test can tell of a process from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_WRITE = {"x86_64": "1", "aarch64": "64"}  # the write system call's number


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
    return out


def named(pid: int, name: str) -> list[int]:
    """The children of `pid` that call themselves `name` (their comm)."""
    out = []
    for child in children(pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                out.append(child)
    return out


def running(pid: int) -> bool:
    """Whether `pid` exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def writing(pid: int) -> bool:
    """Whether `pid` is blocked writing to a pipe or socket (more than it holds)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        number = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return "pipe_write" in wchan or "sock" in wchan or number == _WRITE.get(os.uname().machine)
