"""The job queue's single flight: one reading per article, whoever asks and whenever."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from service.core.jobs import Job, JobQueue
from service.errors import ClientBusyError, LangduError, QueueFullError
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


# --- a job's stream, on its own ---


async def _drain(job: Job, on_cut: Callable[[int], None] | None = None) -> list[bytes]:
    return [chunk async for chunk in job.stream(on_cut)]


@pytest.mark.anyio
async def test_a_listener_hears_every_part_in_order_from_the_first_byte() -> None:
    job = Job("a", Priority.LISTENER)
    await job.publish(b"1")
    early = asyncio.create_task(_drain(job))
    await _settle()
    await job.publish(b"")  # nothing to add
    await job.publish(b"2", whole=False)
    await job.publish(b"3", finished=True)
    late = await _drain(job)  # joins after the end: still the whole article
    assert await early == [b"1", b"2", b"3"] == late
    assert job.parts == [b"1", b"2", b"3"] and job.whole == [True, False, True]
    await job.publish(None)
    assert job.finished  # a finished job stays finished


@pytest.mark.anyio
async def test_a_failure_is_raised_only_to_a_listener_who_heard_nothing() -> None:
    job = Job("a", Priority.LISTENER)
    job.error = LangduError("the engine failed")
    await job.publish(None, finished=True)
    with pytest.raises(LangduError, match="the engine failed"):
        await _drain(job)
    partial = Job("b", Priority.LISTENER)
    partial.error = LangduError("the engine failed")
    await partial.publish(b"1", finished=True)
    assert await _drain(partial) == [b"1"]  # a clean end after what was made


@pytest.mark.anyio
async def test_a_restart_cuts_listeners_who_heard_the_old_voice_where_they_are() -> None:
    job = Job("a", Priority.LISTENER, voice="old")
    cuts: list[int] = []
    heard: list[bytes] = []

    async def listen() -> None:
        async for chunk in job.stream(cuts.append):
            heard.append(chunk)

    listener = asyncio.create_task(listen())
    await job.publish(b"s1")
    await job.publish(b"s2-first-piece", whole=False)
    await job.publish(b"s2-rest")
    await job.publish(b"s3-first-piece", whole=False)
    await _settle()
    await job.restart("new")
    fresh = asyncio.create_task(_drain(job))  # joins after the restart
    await job.publish(b"n1", finished=True)
    await listener
    assert heard == [b"s1", b"s2-first-piece", b"s2-rest", b"s3-first-piece"]
    assert cuts == [2]  # two whole sentences: it resumes at the third
    assert await fresh == [b"n1"] and job.voice == "new" and job.generation == 1
    assert len(job.timeline.sentences) == 0  # the old voice's timings went too


async def _restarted_before_hearing(job: Job, cuts: list[int]) -> asyncio.Task[list[bytes]]:
    """A listener waiting on `job` when it restarts in "new" before any audio."""
    listener = asyncio.create_task(_drain(job, cuts.append))
    await _settle()
    await job.restart("new")  # nothing heard yet: it carries on
    await _settle()
    return listener


@pytest.mark.anyio
async def test_a_listener_who_heard_nothing_carries_on_with_the_new_voice() -> None:
    job = Job("a", Priority.LISTENER)
    cuts: list[int] = []
    listener = await _restarted_before_hearing(job, cuts)
    await job.publish(b"n1")
    await job.restart("newer")  # again before the listener woke: still nothing heard
    await job.publish(b"m1", finished=True)
    assert await listener == [b"m1"] and cuts == []


@pytest.mark.anyio
async def test_wait_returns_once_the_job_is_finished() -> None:
    job = Job("a", Priority.LISTENER)
    waiter = asyncio.create_task(job.wait())
    await _settle()
    assert not waiter.done()
    await job.publish(b"x")
    await _settle()
    assert not waiter.done()
    await job.publish(None, finished=True)
    await asyncio.wait_for(waiter, 1)


# --- the queue's order, shares and limits ---


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _queue(runs: _Runs, **settings: Any) -> AsyncIterator[JobQueue]:
    queue = JobQueue(run=runs, **settings)
    try:
        yield queue
    finally:
        await queue.aclose()


class _Runs:
    """A runner whose jobs run until released; it remembers the order they started in."""

    def __init__(self, fail: str = "") -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.fail = fail

    def gate(self, article_id: str) -> asyncio.Event:
        return self.gates.setdefault(article_id, asyncio.Event())

    async def __call__(self, job: Job) -> None:
        self.started.append(job.article_id)
        await self.gate(job.article_id).wait()
        if job.article_id == self.fail:
            raise ValueError("a bug")

    async def release(self, article_id: str) -> None:
        self.gate(article_id).set()
        await _settle()


@pytest.mark.anyio
async def test_listeners_go_first_then_background_then_upgrades() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=8) as queue:
        queue.submit("busy", Priority.LISTENER)
        await _settle()
        queue.submit("up", Priority.UPGRADE, upgrade=True)
        queue.submit("bg", Priority.BACKGROUND)
        queue.submit("l1", Priority.LISTENER)
        queue.submit("l2", Priority.LISTENER)
        for article in ("busy", "l1", "l2", "bg"):
            await runs.release(article)
        assert runs.started == ["busy", "l1", "l2", "bg", "up"]
        assert queue.get("up") is not None and queue.get("up").upgrade  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_the_client_with_fewest_articles_running_goes_next() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=4, max_queue=8, per_client=8) as queue:
        for article, client in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a")):
            queue.submit(article, Priority.LISTENER, client=client)
        await _settle()
        # a1 first (oldest); then b1 (b has none running, a has one); then a2 and a3
        # (a may hold 3 of the 4 slots)
        assert runs.started == ["a1", "b1", "a2", "a3"]


@pytest.mark.anyio
async def test_one_client_never_takes_every_slot() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=3, max_queue=8, per_client=8) as queue:
        for article in ("a1", "a2", "a3"):
            queue.submit(article, Priority.LISTENER, client="a")
        await _settle()
        assert runs.started == ["a1", "a2"] and queue.queued == 1  # a slot stays free
        queue.submit("b1", Priority.LISTENER, client="b")
        await _settle()
        assert runs.started == ["a1", "a2", "b1"]
        await runs.release("a1")
        assert runs.started == ["a1", "a2", "b1", "a3"]
        await runs.release("b1")
        await runs.release("a2")
        queue.submit("a4", Priority.LISTENER, client="a")
        await _settle()  # b's slot is free again and a holds one: a may take a second
        assert runs.started[-1] == "a4"


@pytest.mark.anyio
async def test_a_single_slot_is_shared_by_one_client_and_background_work() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=4) as queue:
        queue.submit("bg", Priority.BACKGROUND, client="a")
        await _settle()
        assert runs.started == ["bg"]  # alone, background work may use the only slot
        queue.submit("l1", Priority.LISTENER, client="a")
        queue.submit("bg2", Priority.BACKGROUND)
        await runs.release("bg")
        assert runs.started == ["bg", "l1"]  # the client's own second article is fine
        await runs.release("l1")
        assert runs.started == ["bg", "l1", "bg2"]


@pytest.mark.parametrize(("slots", "background_at_once"), [(2, 1), (3, 2), (4, 3)])
@pytest.mark.anyio
async def test_background_work_leaves_a_slot_for_listeners(
    slots: int, background_at_once: int
) -> None:
    runs = _Runs()
    async with _queue(runs, max_active=slots, max_queue=8) as queue:
        for i in range(slots):
            queue.submit(f"bg{i}", Priority.BACKGROUND)
        await _settle()
        assert len(runs.started) == background_at_once
        queue.submit("l1", Priority.LISTENER)
        await _settle()
        assert runs.started[-1] == "l1"  # the free slot was there for it
        await runs.release("bg0")
        assert runs.started[-1] == f"bg{background_at_once}"


@pytest.mark.parametrize(("slots", "waiting", "share"), [(2, 6, 2), (2, 14, 4), (4, 25, 7)])
@pytest.mark.anyio
async def test_a_clients_share_of_the_queue_is_a_quarter_and_at_least_two(
    slots: int, waiting: int, share: int
) -> None:
    runs = _Runs()
    async with _queue(runs, max_active=slots, max_queue=waiting) as queue:
        for i in range(share):
            queue.admit("ip:c")
            queue.submit(f"c{i}", Priority.LISTENER, client="ip:c")
        with pytest.raises(ClientBusyError, match=f"^{share} of your articles"):
            queue.submit("one-more", Priority.LISTENER, client="ip:c")
        queue.submit("later", Priority.BACKGROUND, client="ip:c")  # background: never refused
        queue.admit("ip:d")  # another client is welcome
        queue.admit("")  # no identity: only the whole queue's limit
        assert queue.get("one-more") is None


@pytest.mark.anyio
async def test_the_queue_holds_slots_plus_waiting_listeners_and_no_more() -> None:
    runs = _Runs()
    depths: list[int] = []
    async with _queue(
        runs, max_active=1, max_queue=2, per_client=9, on_depth=depths.append
    ) as queue:
        for i in range(3):
            queue.submit(f"l{i}", Priority.LISTENER, client=f"c{i}")
        assert depths == [1, 2, 3]  # nothing started yet: all three wait
        with pytest.raises(QueueFullError):
            queue.submit("l3", Priority.LISTENER, client="c3")
        queue.submit("bg", Priority.BACKGROUND)  # persisted work is never refused
        await _settle()
        assert depths[-1] == 3 and queue.queued == 3  # one started: l1, l2 and bg wait
        for article in ("l0", "l1", "l2", "bg"):
            await runs.release(article)
        assert depths[-1] == 0 and queue.queued == 0
        queue.submit("l4", Priority.LISTENER, client="c4")  # room again


@pytest.mark.anyio
async def test_asking_again_for_a_waiting_job_changes_it_only_to_make_it_more_urgent() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=4) as queue:
        queue.submit("busy", Priority.LISTENER)
        await _settle()
        job, _ = queue.submit("a", Priority.BACKGROUND, client="x")
        assert queue.submit("a", Priority.UPGRADE, client="y") == (job, False)
        assert queue.submit("a", Priority.BACKGROUND, client="y") == (job, False)
        assert queue.submit("a", Priority.LISTENER, client="y") == (job, True)
        assert job.priority == Priority.LISTENER and job.client == "x"  # first asker kept


@pytest.mark.anyio
async def test_a_crashing_job_fails_alone_and_frees_its_slot() -> None:
    runs = _Runs(fail="bad")
    async with _queue(runs, max_active=1, max_queue=4) as queue:
        bad, _ = queue.submit("bad", Priority.LISTENER, client="a")
        good, _ = queue.submit("good", Priority.LISTENER, client="a")
        await _settle()
        await runs.release("bad")
        assert bad.finished and str(bad.error) == "internal error: ValueError"
        with pytest.raises(LangduError, match="internal error"):
            await _drain(bad)
        assert runs.started == ["bad", "good"] and queue.get("bad") is None
        await runs.release("good")
        assert good.finished and good.error is None
        # the client's running count went back to nothing: it may take a slot again
        queue.submit("again", Priority.LISTENER, client="a")
        await _settle()
        assert runs.started[-1] == "again"


@pytest.mark.anyio
async def test_closing_the_queue_ends_every_job_with_a_reason() -> None:
    runs = _Runs()
    queue = JobQueue(run=runs, max_active=1, max_queue=4)
    running, _ = queue.submit("running", Priority.LISTENER)
    waiting, _ = queue.submit("waiting", Priority.BACKGROUND)
    await _settle()
    await queue.aclose()
    for job in (running, waiting):
        assert job.finished and str(job.error) == "the service is shutting down"
    assert queue.get("waiting") is None and queue.queued == 0


@pytest.mark.anyio
async def test_a_listener_cut_twice_counts_only_what_it_heard_of_the_new_reading() -> None:
    job = Job("a", Priority.LISTENER)
    cuts: list[int] = []
    listener = await _restarted_before_hearing(job, cuts)
    await job.publish(b"n1")
    await job.publish(b"n2-first-piece", whole=False)
    await _settle()
    await job.restart("newer")  # now it heard one whole sentence of "new"
    assert await listener == [b"n1", b"n2-first-piece"] and cuts == [1]


@pytest.mark.anyio
async def test_a_long_article_ends_its_stream() -> None:
    job = Job("a", Priority.LISTENER)
    for i in range(300):  # more parts than CPython keeps small integers for
        await job.publish(b"%d" % i)
    await job.publish(None, finished=True)
    assert len(await asyncio.wait_for(_drain(job), 5)) == 300


def _client(name: str) -> str:
    return "".join(["ip:", name])  # made at run time, as the identity middleware does


@pytest.mark.anyio
async def test_only_listeners_count_against_a_clients_share_and_the_queue() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=5, per_client=2) as queue:
        for i in range(6):  # background work of the same client: never counted
            queue.submit(f"bg{i}", Priority.BACKGROUND, client=_client("c"))
        queue.submit("c1", Priority.LISTENER, client=_client("c"))
        queue.submit("c2", Priority.LISTENER, client=_client("c"))
        with pytest.raises(ClientBusyError):
            queue.admit(_client("c"))
        for i in range(3):
            queue.submit(f"e{i}", Priority.LISTENER, client=_client(f"e{i}"))
        queue.admit(_client("b"))  # others' listeners are not b's, whatever their order
        queue.submit("e3", Priority.LISTENER, client=_client("e3"))
        with pytest.raises(QueueFullError):  # 6 listeners: 1 slot and 5 waiting
            queue.admit(_client("f"))


@pytest.mark.anyio
async def test_a_job_made_urgent_is_counted_when_the_next_listener_asks() -> None:
    # Asking again for a waiting background job makes it a listener's without admission:
    # a client (or the queue) may then be over its share, and the next ask is refused.
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=1, per_client=1) as queue:
        queue.submit("busy", Priority.LISTENER, client=_client("x"))
        queue.submit("a", Priority.BACKGROUND, client=_client("c"))
        queue.submit("b", Priority.BACKGROUND, client=_client("c"))
        queue.submit("a", Priority.LISTENER, client=_client("c"))
        queue.submit("b", Priority.LISTENER, client=_client("c"))  # c holds 2 of 1
        with pytest.raises(ClientBusyError):
            queue.admit(_client("c"))
        with pytest.raises(QueueFullError):  # 3 listeners' jobs, room for 2
            queue.admit(_client("d"))


@pytest.mark.anyio
async def test_the_queue_takes_upgrade_flags_only_when_told() -> None:
    async with _queue(_Runs(), max_active=1, max_queue=2) as queue:
        job, _ = queue.submit("a", Priority.UPGRADE)
        assert job.upgrade is False


@pytest.mark.parametrize(("slots", "share"), [(2, 1), (3, 2), (4, 3), (5, 4)])
@pytest.mark.anyio
async def test_a_client_may_hold_every_slot_but_one(slots: int, share: int) -> None:
    runs = _Runs()
    async with _queue(runs, max_active=slots, max_queue=8, per_client=9) as queue:
        for i in range(slots + 1):
            queue.submit(f"a{i}", Priority.LISTENER, client=_client("a"))
        await _settle()
        assert len(runs.started) == share
        await runs.release("a0")  # one done: exactly one more of a's may start
        assert runs.started == [f"a{i}" for i in range(share + 1)]


@pytest.mark.anyio
async def test_a_client_whose_work_is_done_has_no_head_start() -> None:
    runs = _Runs()
    async with _queue(runs, max_active=1, max_queue=8, per_client=9) as queue:
        queue.submit("b1", Priority.LISTENER, client=_client("b"))
        await _settle()
        await runs.release("b1")  # b ran one and has none running now
        queue.submit("hold", Priority.LISTENER, client=_client("x"))
        await _settle()
        queue.submit("a1", Priority.LISTENER, client=_client("a"))
        queue.submit("b2", Priority.LISTENER, client=_client("b"))
        await runs.release("hold")
        assert runs.started == ["b1", "hold", "a1"]  # the older ask goes first
