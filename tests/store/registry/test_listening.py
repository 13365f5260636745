"""The registry's listening analytics on both backends: events folded into sessions and days
exactly once (whichever process rolls up, however they interleave), and old events deleted
without changing a figure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.store.registry import ArticleRecord, Finished, ListeningEvent, Registry, connect
from service.store.registry.sql import SqlRegistry

ARTICLE = "d" * 32
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
DAY = NOW.strftime("%Y-%m-%d")


@pytest.fixture
def reg(db_url) -> Iterator[Registry]:
    registry = connect(db_url)
    registry.add(
        ArticleRecord(
            id=ARTICLE,
            title="标题",
            url=None,
            voice="cmn-offline",
            rate="+0%",
            pitch="+0Hz",
            sentences=tuple((i, f"第{i}句。") for i in range(8)),
        )
    )
    registry.finish(ARTICLE, Finished(rendering="r1", duration_ms=40_000, size=1000, degraded=None))
    yield registry
    registry.close()


def _ev(session: str, kind: str, s: int = 0, **kw: object) -> ListeningEvent:
    return ListeningEvent(
        article_id=ARTICLE,
        session=session,
        kind=kind,
        at=NOW + timedelta(seconds=s),
        **kw,  # type: ignore[arg-type]
    )


def _heard(session: str, sentences: list[int], ms: int, position: int, speed: float = 1.0):
    return _ev(
        session,
        "progress",
        heard=tuple(sentences),
        listened_ms=ms,
        position_ms=position,
        speed=speed,
    )


def test_a_session_reported_in_several_batches_counts_once(reg):
    reg.add_events([_ev("a" * 16, "play", voice="cmn-offline", position_ms=0)], NOW)
    reg.add_events([_heard("a" * 16, [0, 1, 2], 12_000, 12_000)], NOW)
    assert reg.roll_up(NOW, 30) == (2, 1)
    # Later: the same session hears 2 again and 3 at 1.5x, then stops at the half.
    reg.add_events([_heard("a" * 16, [2, 3], 6_000, 21_000, 1.5), _ev("a" * 16, "pause")], NOW)
    reg.add_events(
        [_ev("b" * 16, "play", voice="cmn-offline"), _heard("b" * 16, [0], 3000, 3000)], NOW
    )
    reg.add_events([_ev("c" * 16, "download")], NOW)
    assert reg.roll_up(NOW, 30) == (5, 1)
    assert reg.roll_up(NOW, 30) == (0, 0)
    [day] = reg.listening_days(ARTICLE, DAY, DAY)
    assert (day.sessions, day.plays, day.downloads) == (3, 2, 1)
    assert day.listened_ms == 21_000
    assert day.reach == (2, 1, 1, 1)
    assert day.quartiles == (1, 1, 0, 0)  # a reached 21 s of 40: past the half
    assert day.speeds == {"1": 15_000, "1.5": 6_000}
    assert day.voices == {"cmn-offline": 2}


def test_ended_is_complete_and_days_are_utc(reg):
    late = datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)
    reg.add_events([ListeningEvent(ARTICLE, "e" * 16, "play", late)], NOW)
    reg.add_events([ListeningEvent(ARTICLE, "e" * 16, "ended", late + timedelta(seconds=40))], NOW)
    reg.roll_up(NOW, 30)
    days = reg.listening_days(None, "2026-12-05", "2026-12-06")
    assert [(d.day, d.plays, d.quartiles) for d in days] == [("2026-12-05", 1, (1, 1, 1, 1))]
    assert reg.listening_days(ARTICLE, "2026-12-06", "2026-12-07") == []


def _count(reg: Registry, table: str) -> int:
    assert isinstance(reg, SqlRegistry)
    with reg.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_old_events_are_deleted_after_the_roll_up_and_the_figures_stay(reg):
    reg.add_events([_ev("a" * 16, "play"), _heard("a" * 16, [0, 1], 5000, 5000)], NOW)
    later = NOW + timedelta(days=31)
    assert reg.roll_up(NOW + timedelta(days=1), 30) == (2, 1)
    assert _count(reg, "listening_events") == 2  # rolled up, but not old yet
    reg.roll_up(later, 30)
    assert _count(reg, "listening_events") == 0
    assert _count(reg, "listening_sessions") == 0
    [day] = reg.listening_days(ARTICLE, DAY, DAY)
    assert (day.plays, day.listened_ms, day.reach) == (1, 5000, (1, 1))


def test_events_not_yet_rolled_up_are_kept_however_old(reg):
    reg.add_events([_ev("a" * 16, "play")], NOW - timedelta(days=40))
    assert isinstance(reg, SqlRegistry)
    reg._prune(int(NOW.timestamp() * 1000), 30)  # before any roll-up: nothing goes
    assert _count(reg, "listening_events") == 1
    assert reg.roll_up(NOW, 30) == (1, 1)
    assert _count(reg, "listening_events") == 0


def test_processes_rolling_up_at_once_count_each_event_once(db_url, reg):
    """Writers and roll-ups interleaved from several connections (replicas)."""
    others = [connect(db_url) for _ in range(2)] if db_url.startswith("postgres") else [reg, reg]
    sessions = [f"{i:016x}" for i in range(40)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(registry: Registry, mine: list[str]) -> None:
        try:
            for s in mine:
                registry.add_events([_ev(s, "play"), _heard(s, [0, 1, 2], 1000, 1000)], NOW)
                registry.add_events([_heard(s, [3], 500, 1500)], NOW)
        except BaseException as exc:
            errors.append(exc)

    def roll(registry: Registry) -> None:
        try:
            while not stop.is_set():
                registry.roll_up(NOW, 30, limit=7)
        except BaseException as exc:
            errors.append(exc)

    writers = [
        threading.Thread(target=write, args=(others[i % 2], sessions[i::2])) for i in range(2)
    ]
    rollers = [threading.Thread(target=roll, args=(r,)) for r in (reg, *others)]
    for t in writers + rollers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in rollers:
        t.join()
    while reg.roll_up(NOW, 30)[0]:
        pass
    assert not errors, errors
    [day] = reg.listening_days(ARTICLE, DAY, DAY)
    assert (day.sessions, day.plays, day.listened_ms) == (40, 40, 60_000)
    assert day.reach == (40, 40, 40, 40)
    if db_url.startswith("postgres"):
        for r in others:
            r.close()
