"""Child processes die with the process that started them (stdlib only: workers import it
before anything else)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time


def die_with_parent(parent: int) -> None:
    """Be killed when the process that started us dies, however it dies (Linux: a
    parent-death signal; elsewhere a thread that watches the parent's pid)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def yield_cpu(steps: int = 10) -> None:
    """Run at a lower scheduling priority: a worker doing background work (synthesis,
    parsing) gives way to the process answering requests."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(steps)
