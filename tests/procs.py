"""What a test can tell of a process from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_WRITE = {"x86_64": "1", "aarch64": "64"}  # the write system call's number


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
