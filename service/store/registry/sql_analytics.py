"""The registry's listening analytics in SQL: events appended as players post them, and the
roll-up that folds them into each session and each article's day (a part of SqlRegistry
kept apart so that each stays short enough to read).

A session's row remembers what it has already added to its day, so a later event adds only
the difference: days are never recomputed, and events and sessions can be deleted when
they are old without changing a figure. The roll-up reads events by id up to a fence (on
PostgreSQL, a moment's exclusive lock on the table: every id below it is committed) and
moves its watermark under a row lock, so replicas rolling up at once count each event once.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from service.store.registry import ListeningDay, ListeningEvent
from service.store.registry.schema import (
    _ms,
    articles,
    listening_daily,
    listening_events,
    listening_rollup,
    listening_sessions,
)

DAY_MS = 86_400_000
_EVENT_COLUMNS = (
    "article_id",
    "session",
    "kind",
    "at",
    "received_at",
    "position_ms",
    "listened_ms",
    "speed",
    "heard",
    "voice",
    "degraded",
    "client",
)


def day_of(ms: int) -> str:
    """The UTC day (YYYY-MM-DD) of an instant in milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def speed_name(speed: float | None) -> str:
    return format(speed if speed else 1.0, "g")


@dataclass
class Session:
    """What one session has added to its day's figures."""

    day: str
    last_at: int = 0
    played: bool = False
    downloads: int = 0
    listened_ms: int = 0
    furthest_ms: int = 0
    ended: bool = False
    quartile: int = 0
    heard: set[int] = field(default_factory=set)
    speeds: Counter[str] = field(default_factory=Counter)
    voices: Counter[str] = field(default_factory=Counter)
    degraded: int = 0

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> Session:
        return cls(
            day=row["day"],
            last_at=int(row["last_at"]),
            played=bool(row["played"]),
            downloads=int(row["downloads"]),
            listened_ms=int(row["listened_ms"]),
            furthest_ms=int(row["furthest_ms"]),
            ended=bool(row["ended"]),
            quartile=int(row["quartile"]),
            heard=set(json.loads(row["heard"])),
            speeds=Counter(json.loads(row["speeds"])),
            voices=Counter(json.loads(row["voices"])),
            degraded=int(row["degraded"]),
        )

    def copy(self) -> Session:
        return Session(
            self.day,
            self.last_at,
            self.played,
            self.downloads,
            self.listened_ms,
            self.furthest_ms,
            self.ended,
            self.quartile,
            set(self.heard),
            Counter(self.speeds),
            Counter(self.voices),
            self.degraded,
        )

    def take(self, event: sa.RowMapping) -> None:
        """Fold one event in (events in the order they were received)."""
        kind = event["kind"]
        self.last_at = max(self.last_at, int(event["at"]))
        if event["position_ms"] is not None:
            self.furthest_ms = max(self.furthest_ms, int(event["position_ms"]))
        if kind == "play" and not self.played:
            self.played = True
            self.voices[event["voice"] or "unknown"] += 1
            self.degraded += int(bool(event["degraded"]))
        elif kind == "download":
            self.downloads += 1
        elif kind == "ended":
            self.ended = True
        elif kind == "progress":
            self.played = True  # its play may have been in a batch that never arrived
            listened = int(event["listened_ms"] or 0)
            self.listened_ms += listened
            if listened:
                self.speeds[speed_name(event["speed"])] += listened
            self.heard.update(json.loads(event["heard"] or "[]"))

    def reached(self, duration_ms: int | None) -> int:
        """Quarters of the audio reached (4: to the end)."""
        if not self.played:
            return 0
        if self.ended:
            return 4
        if not duration_ms:
            return self.quartile
        return max(self.quartile, min(4, 4 * self.furthest_ms // duration_ms))

    def row(self, article_id: str, session: str) -> dict[str, Any]:
        return {
            "article_id": article_id,
            "session": session,
            "day": self.day,
            "last_at": self.last_at,
            "played": self.played,
            "downloads": self.downloads,
            "listened_ms": self.listened_ms,
            "furthest_ms": self.furthest_ms,
            "ended": self.ended,
            "quartile": self.quartile,
            "heard": json.dumps(sorted(self.heard)),
            "speeds": json.dumps(dict(sorted(self.speeds.items()))),
            "voices": json.dumps(dict(sorted(self.voices.items()))),
            "degraded": self.degraded,
        }


@dataclass
class Day:
    """An article's day as it is being changed."""

    counts: Counter[str] = field(default_factory=Counter)
    reach: list[int] = field(default_factory=list)
    speeds: Counter[str] = field(default_factory=Counter)
    voices: Counter[str] = field(default_factory=Counter)

    _COUNTS = (
        "sessions",
        "plays",
        "downloads",
        "listened_ms",
        "q25",
        "q50",
        "q75",
        "q100",
        "degraded",
    )

    @classmethod
    def from_row(cls, row: sa.RowMapping | None) -> Day:
        if row is None:
            return cls()
        return cls(
            Counter({k: int(row[k]) for k in cls._COUNTS}),
            list(json.loads(row["reach"])),
            Counter(json.loads(row["speeds"])),
            Counter(json.loads(row["voices"])),
        )

    def add(self, before: Session | None, after: Session) -> None:
        """Add what `after` holds beyond `before` (None: the session is new)."""
        old = before or Session(day=after.day)
        self.counts["sessions"] += before is None
        self.counts["plays"] += after.played - old.played
        self.counts["downloads"] += after.downloads - old.downloads
        self.counts["listened_ms"] += after.listened_ms - old.listened_ms
        self.counts["degraded"] += after.degraded - old.degraded
        for q, name in enumerate(("q25", "q50", "q75", "q100"), start=1):
            self.counts[name] += (after.quartile >= q) - (old.quartile >= q)
        for index in after.heard - old.heard:
            if index >= len(self.reach):
                self.reach.extend([0] * (index + 1 - len(self.reach)))
            self.reach[index] += 1
        self.speeds.update(after.speeds)
        self.speeds.subtract(old.speeds)
        self.voices.update(after.voices)
        self.voices.subtract(old.voices)

    def row(self, article_id: str, day: str) -> dict[str, Any]:
        return {
            "article_id": article_id,
            "day": day,
            **{k: self.counts[k] for k in self._COUNTS},
            "reach": json.dumps(self.reach),
            "speeds": json.dumps({k: v for k, v in sorted(self.speeds.items()) if v}),
            "voices": json.dumps({k: v for k, v in sorted(self.voices.items()) if v}),
        }


def _day(row: sa.RowMapping) -> ListeningDay:
    return ListeningDay(
        article_id=row["article_id"],
        day=row["day"],
        sessions=int(row["sessions"]),
        plays=int(row["plays"]),
        downloads=int(row["downloads"]),
        listened_ms=int(row["listened_ms"]),
        quartiles=(int(row["q25"]), int(row["q50"]), int(row["q75"]), int(row["q100"])),
        reach=tuple(json.loads(row["reach"])),
        speeds=json.loads(row["speeds"]),
        voices=json.loads(row["voices"]),
        degraded=int(row["degraded"]),
    )


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = 400) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AnalyticsSql:
    """Listening events, sessions and days; SqlRegistry supplies the connection."""

    _insert: Any
    engine: sa.Engine
    _events_sql: tuple[str, bool] | None = None

    def _rows(self, statement: sa.Executable) -> list[sa.RowMapping]:
        raise NotImplementedError

    def _begin(self) -> contextlib.AbstractContextManager[sa.Connection]:
        raise NotImplementedError

    def add_events(self, events: Sequence[ListeningEvent], received_at: datetime) -> None:
        if not events:
            return
        received = _ms(received_at)
        sql, positional = self._event_insert()
        rows = [
            (
                e.article_id,
                e.session,
                e.kind,
                _ms(e.at),
                received,
                e.position_ms,
                e.listened_ms,
                e.speed,
                "[" + ",".join(map(str, e.heard)) + "]" if e.heard else None,
                e.voice,
                e.degraded,
                e.client,
            )
            for e in events
        ]
        # A named paramstyle (PostgreSQL's drivers) takes each row by its columns' names.
        params: list[Any] = (
            rows if positional else [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows]
        )
        with self._begin() as conn:
            # The driver's own executemany: players post events all day long, and the
            # statement's SQL and parameters are the same every time.
            conn.exec_driver_sql(sql, params)

    def _event_insert(self) -> tuple[str, bool]:
        """The events' INSERT in this database's SQL, and whether its driver takes each
        row's values by position (in _EVENT_COLUMNS' order)."""
        if self._events_sql is None:
            compiled = sa.insert(listening_events).compile(
                dialect=self.engine.dialect, column_keys=list(_EVENT_COLUMNS)
            )
            order = compiled.positiontup
            if order is not None and tuple(order) != _EVENT_COLUMNS:
                raise RuntimeError(f"listening_events' INSERT takes {order}")
            self._events_sql = (str(compiled), order is not None)
        return self._events_sql

    def _fence(self) -> int:
        """The highest event id below which every event is committed."""
        with self._begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Waits for inserts under way; ids handed out after it are higher.
                conn.execute(sa.text("LOCK TABLE listening_events IN EXCLUSIVE MODE"))
            return int(conn.execute(sa.select(sa.func.max(listening_events.c.id))).scalar() or 0)

    def roll_up(self, now: datetime, keep_days: int, limit: int = 20_000) -> tuple[int, int]:
        fence = self._fence()
        folded = plays = 0
        with self._begin() as conn:
            conn.execute(
                self._insert(listening_rollup).values(id=1, upto=0).on_conflict_do_nothing()
            )
            upto = int(
                conn.execute(
                    sa.select(listening_rollup.c.upto)
                    .where(listening_rollup.c.id == 1)
                    .with_for_update()  # replicas take turns; the second sees the first's
                ).scalar_one()
            )
            if fence > upto:
                events = list(
                    conn.execute(
                        sa.select(listening_events)
                        .where(listening_events.c.id > upto, listening_events.c.id <= fence)
                        .order_by(listening_events.c.id)
                        .limit(limit)
                    ).mappings()
                )
                if events:
                    plays = self._fold(conn, events)
                    conn.execute(
                        sa.update(listening_rollup)
                        .where(listening_rollup.c.id == 1)
                        .values(upto=events[-1]["id"])
                    )
                    folded = len(events)
        self._prune(_ms(now) or 0, keep_days)
        return folded, plays

    def _fold(self, conn: sa.Connection, events: list[sa.RowMapping]) -> int:
        """Fold `events` into their sessions and days; the sessions that started playing."""
        by_session: dict[tuple[str, str], list[sa.RowMapping]] = {}
        for event in events:
            by_session.setdefault((event["article_id"], event["session"]), []).append(event)
        keys = list(by_session)
        known: dict[tuple[str, str], Session] = {}
        for part in _chunks(keys):
            for row in conn.execute(
                sa.select(listening_sessions).where(
                    sa.tuple_(listening_sessions.c.article_id, listening_sessions.c.session).in_(
                        part
                    )
                )
            ).mappings():
                known[(row["article_id"], row["session"])] = Session.from_row(row)
        article_ids = sorted({a for a, _ in keys})
        durations: dict[str, int | None] = {}
        for ids in _chunks(article_ids):
            for row in conn.execute(
                sa.select(articles.c.id, articles.c.duration_ms).where(articles.c.id.in_(ids))
            ).mappings():
                durations[row["id"]] = row["duration_ms"]
        days: dict[tuple[str, str], Day] = {}
        sessions: list[dict[str, Any]] = []
        changes: list[tuple[tuple[str, str], Session | None, Session]] = []
        for (article_id, session), evs in by_session.items():
            before = known.get((article_id, session))
            after = before.copy() if before else Session(day=day_of(int(evs[0]["at"])))
            for event in evs:
                after.take(event)
            after.quartile = after.reached(durations.get(article_id))
            sessions.append(after.row(article_id, session))
            changes.append(((article_id, after.day), before, after))
        touched = sorted({key for key, _, _ in changes})
        for part in _chunks(touched):
            for row in conn.execute(
                sa.select(listening_daily).where(
                    sa.tuple_(listening_daily.c.article_id, listening_daily.c.day).in_(part)
                )
            ).mappings():
                days[(row["article_id"], row["day"])] = Day.from_row(row)
        for key, before, after in changes:
            days.setdefault(key, Day()).add(before, after)
        self._upsert(conn, listening_sessions, ["article_id", "session"], sessions)
        self._upsert(
            conn,
            listening_daily,
            ["article_id", "day"],
            [day.row(article_id, d) for (article_id, d), day in days.items()],
        )
        return sum(after.played and not (before and before.played) for _, before, after in changes)

    def _upsert(
        self, conn: sa.Connection, table: sa.Table, key: list[str], rows: list[dict[str, Any]]
    ) -> None:
        for part in _chunks(rows, 200):
            insert = self._insert(table)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c[k] for k in key],
                    set_={c.name: insert.excluded[c.name] for c in table.c if c.name not in key},
                ),
                list(part),
            )

    def _prune(self, now_ms: int, keep_days: int) -> None:
        """Events already rolled up and sessions past their last event, older than kept."""
        before = now_ms - keep_days * DAY_MS
        with self._begin() as conn:
            upto = (
                sa.select(listening_rollup.c.upto)
                .where(listening_rollup.c.id == 1)
                .scalar_subquery()
            )
            conn.execute(
                sa.delete(listening_events).where(
                    listening_events.c.received_at < before, listening_events.c.id <= upto
                )
            )
            conn.execute(sa.delete(listening_sessions).where(listening_sessions.c.last_at < before))

    def listening_days(self, article_id: str | None, first: str, last: str) -> list[ListeningDay]:
        query = sa.select(listening_daily).where(
            listening_daily.c.day >= first, listening_daily.c.day <= last
        )
        if article_id is not None:
            query = query.where(listening_daily.c.article_id == article_id)
        rows = self._rows(query.order_by(listening_daily.c.article_id, listening_daily.c.day))
        return [_day(r) for r in rows]
