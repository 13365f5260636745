"""Worker pools outlive their workers: real spawned processes, killed while they work."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from service.errors import WorkerLostError
from service.runtime.parsing import ParsePool
from service.runtime.respawn import RespawningPool
from tests.procs import running, writing


def _pid() -> int:
    return os.getpid()


def _die_once(flag: str) -> int:
    """Kill the worker the first time (the flag file is absent), answer the second."""
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def _die() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def _pool(retries: int) -> RespawningPool:
    return RespawningPool(1, retries=retries)


def _large(size: int) -> bytes:
    return b"x" * size


def _slow_pid() -> int:
    time.sleep(0.2)  # long enough for the other worker to take the next call
    return os.getpid()


def _fails() -> None:
    raise ValueError("bad input")


def test_work_whose_worker_died_runs_again_on_a_new_pool(tmp_path: Path) -> None:
    pool = _pool(retries=1)
    try:
        first = pool.submit(_pid).result(60)
        answered = pool.submit(_die_once, str(tmp_path / "flag")).result(60)
        assert answered != first and pool.respawned == 1
        assert pool.submit(_pid).result(60) == answered
    finally:
        pool.shutdown()


def test_work_that_kills_every_worker_fails_and_the_pool_still_serves() -> None:
    pool = _pool(retries=1)
    try:
        with pytest.raises(BrokenProcessPool):
            pool.submit(_die).result(60)
        assert pool.respawned == 2
        assert pool.submit(_pid).result(60) > 0
    finally:
        pool.shutdown()


def test_a_worker_killed_while_sending_its_answer_is_seen_dead() -> None:
    # The standard library's ProcessPoolExecutor waits forever for the rest of an answer
    # whose writer was killed half-way (its workers share one result pipe): the call would
    # never end and the pool would never be replaced. Here the call is run again.
    pool = _pool(retries=1)
    try:
        pid = pool.submit(_pid).result(60)
        answer = pool.submit(_large, 256 * 1024 * 1024)
        deadline = time.monotonic() + 60
        while not writing(pid):
            assert time.monotonic() < deadline and not answer.done(), "never seen writing"
            time.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
        assert len(answer.result(60)) == 256 * 1024 * 1024
        assert pool.respawned == 1 and pool.submit(_pid).result(60) != pid
    finally:
        pool.shutdown()


def test_a_worker_that_died_while_idle_is_replaced_without_costing_a_retry() -> None:
    pool = RespawningPool(2, retries=0)
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.update(f.result(60) for f in [pool.submit(_slow_pid) for _ in range(2)])
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        while any(running(pid) for pid in pids):
            time.sleep(0.01)
        answers = {f.result(60) for f in [pool.submit(_slow_pid) for _ in range(4)]}
        assert answers and not answers & pids and pool.respawned == 2
    finally:
        pool.shutdown()


def test_a_worker_s_exception_reaches_the_caller_with_its_traceback() -> None:
    pool = _pool(retries=1)
    try:
        with pytest.raises(ValueError, match="bad input") as raised:
            pool.submit(_fails).result(60)
        assert "_fails" in str(raised.value.__cause__)
        with pytest.raises(Exception, match="pickle"):
            pool.submit(lambda: 1).result(60)  # cannot be sent: the worker is unharmed
        assert pool.respawned == 0 and pool.submit(_pid).result(60) > 0
    finally:
        pool.shutdown()


def test_shutdown_cancels_waiting_work_and_ends_the_workers() -> None:
    pool = _pool(retries=0)
    pid = pool.submit(_pid).result(60)
    busy = pool.submit(time.sleep, 0.5)
    waiting = pool.submit(_pid)
    time.sleep(0.1)
    pool.shutdown(wait=True, cancel_futures=True)
    assert busy.result(0) is None and waiting.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(_pid)
    assert not Path(f"/proc/{pid}").exists()  # ended and reaped


@pytest.mark.anyio
async def test_a_dead_parsing_worker_is_a_retryable_error_and_the_next_parse_works() -> None:
    parse = ParsePool(1)
    try:
        await parse.warm_up()
        with pytest.raises(WorkerLostError):
            await parse.run(_die)  # an input that kills its worker is not tried twice
        assert await parse.run(_pid) > 0
    finally:
        parse.close()
