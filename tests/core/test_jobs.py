"""The job queue's single flight: one reading per article, whoever asks and whenever."""

from __future__ import annotations

import asyncio

from service.core.jobs import Job, JobQueue
from service.store.registry import Priority


def test_a_started_job_absorbs_every_new_listener_and_background_request():
    async def run() -> None:
        release = asyncio.Event()
        started = asyncio.Event()
        runs: list[str] = []

        async def read(job: Job) -> None:
            runs.append(job.article_id)
            started.set()
            await release.wait()

        queue = JobQueue(run=read, max_active=2, max_queue=4)
        try:
            job, changed = queue.submit("a", Priority.BACKGROUND)
            assert changed
            await asyncio.wait_for(started.wait(), 5)
            assert job.started
            for priority in (Priority.LISTENER, Priority.BACKGROUND, Priority.UPGRADE):
                again, changed = queue.submit("a", priority, client="ip:192.0.2.1")
                assert again is job and not changed  # joined, not read again
            assert job.priority == Priority.BACKGROUND  # a running job's place is moot
            assert queue.get("a") is job and queue.queued == 0
            release.set()
            for _ in range(100):
                if queue.get("a") is None:
                    break
                await asyncio.sleep(0.01)
            assert queue.get("a") is None and runs == ["a"]
            # once finished, the next request is a new reading
            fresh, changed = queue.submit("a", Priority.LISTENER)
            assert fresh is not job and changed
        finally:
            release.set()
            await queue.aclose()

    asyncio.run(run())


def test_a_waiting_job_is_made_more_urgent_by_a_listener():
    async def run() -> None:
        gate = asyncio.Event()

        async def read(job: Job) -> None:
            await gate.wait()

        queue = JobQueue(run=read, max_active=1, max_queue=4)
        try:
            queue.submit("busy", Priority.LISTENER)
            await asyncio.sleep(0.05)
            waiting, _ = queue.submit("b", Priority.UPGRADE)
            same, changed = queue.submit("b", Priority.LISTENER, client="ip:192.0.2.9")
            assert same is waiting and changed and not waiting.started
            assert waiting.priority == Priority.LISTENER and waiting.client == "ip:192.0.2.9"
        finally:
            gate.set()
            await queue.aclose()

    asyncio.run(run())
