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


def name_process(name: str) -> None:
    """Show the worker as `name` in ps and top (Linux: the process's comm, 15 bytes)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w", encoding="ascii") as comm:
        comm.write(name[:15])


def yield_cpu(steps: int = 10) -> None:
    """Run at a lower scheduling priority: a worker doing background work (synthesis,
    parsing) gives way to the process answering requests."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(steps)
    # Linux: the scheduler treats a batch task as CPU-bound and disfavours it at wake-ups,
    # so the server's event loop, woken by a request, gets the CPU sooner (bench_load
    # --split-cpus: a listener's p99 under abuse 2.6x -> 1.5x of quiet).
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def idle_cpu() -> None:
    """Run only on CPU time nothing else wants (Linux: SCHED_IDLE; elsewhere the lowest
    priority): work that can wait, such as listening analytics, never delays a request,
    and is only postponed while the server is busy."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(19)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
