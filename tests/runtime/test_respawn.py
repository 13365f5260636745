"""Worker pools outlive their workers: real spawned processes, killed while they work."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from service.errors import WorkerLostError
from service.runtime.parsing import ParsePool
from service.runtime.respawn import RespawningPool


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
    return RespawningPool(
        lambda: ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")),
        retries=retries,
    )


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
