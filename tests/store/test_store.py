"""The audio store over blobs: part cache, renderings, episodes, LRU eviction by the index."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.audio.mp3 import AudioFormat, encode_part
from service.store import Store, audio_key, part_key, timings_key
from service.store.blobs.file import FileBlobs
from service.store.registry import ArticleRecord, Finished
from service.store.registry.sqlite import SqliteRegistry
from tests.store.sql import run_sql

FMT = AudioFormat(sample_rate=22050)


def _part(ms: int = 200):
    return encode_part(b"\x10\x00" * (22050 * ms // 1000), FMT)


@pytest.fixture
def parts(tmp_path):
    reg = SqliteRegistry(tmp_path / "r.db")
    yield FileBlobs(tmp_path / "blobs"), reg
    reg.close()


def test_parts_round_trip_and_damaged_parts_are_misses(parts, tmp_path):
    blobs, reg = parts
    store = Store(blobs, reg, max_bytes=10**9)
    part = _part()
    key = part_key("espeak", "cmn", "+0%", "你好")
    assert store.get_part(key) is None
    store.put_part(key, part)
    assert store.get_part(key) == part
    path = next((tmp_path / "blobs" / "parts").rglob("*.part"))
    path.write_bytes(path.read_bytes()[:-7])
    assert store.get_part(key) is None and not path.exists()
    assert store.size == 0


def test_size_cap_evicts_least_recently_used_first(parts):
    blobs, reg = parts
    part = _part(500)
    size = len(part.data) + 12
    store = Store(blobs, reg, max_bytes=int(size * 3.5))
    keys = [part_key(i) for i in range(3)]
    for i, key in enumerate(keys):
        store.put_part(key, part)
        run_sql(reg, "UPDATE blobs SET used_at=? WHERE key LIKE ?", (1000 + i, f"%{key}%"))
    store._touched.clear()
    assert store.get_part(keys[0]) is not None  # used now: the most recent
    store.put_part(part_key(3), part)
    assert store.over_cap
    assert store.evict() == []  # parts only: no rendering went
    assert store.size <= store.max_bytes and not store.over_cap
    assert store.get_part(keys[1]) is None, "the least recently used part went first"
    assert store.get_part(keys[0]) is not None and store.get_part(part_key(3)) is not None


def test_a_rendering_is_evicted_whole(parts):
    blobs, reg = parts
    store = Store(blobs, reg, max_bytes=1800)
    old, new = "a" * 32, "b" * 32
    for article_id in (old, new):
        reg.add(
            ArticleRecord(
                id=article_id,
                title=None,
                url=None,
                voice="v",
                rate="+0%",
                pitch="+0Hz",
                sentences=((0, "x"),),
            )
        )
    store.put_rendering(old, "r1", audio=b"x" * 800, timings=b"{}" * 200)
    reg.finish(old, Finished(rendering="r1", degraded=None, duration_ms=1, size=800))
    run_sql(reg, "UPDATE blobs SET used_at=1")
    store.put_rendering(new, "r1", audio=b"y" * 800, timings=b"{}" * 200)
    assert store.evict() == [(old, "r1")]
    assert not store.has_rendering(old, "r1") and not blobs.exists(audio_key(old, "r1"))
    assert store.has_rendering(new, "r1")


@pytest.mark.parametrize("damaged", ["audio", "timings"])
def test_a_damaged_rendering_is_deleted_with_its_partner(parts, tmp_path, damaged):
    blobs, reg = parts
    store = Store(blobs, reg, max_bytes=10**9)
    told: list[str] = []
    store.on_damage = told.append
    article = "c" * 32
    store.put_rendering(article, "r1", audio=b"a" * 800, timings=b'{"sentences": []}')
    store.put_rendering(article, "r2", audio=b"b" * 800, timings=b'{"sentences": []}')
    key = audio_key(article, "r1") if damaged == "audio" else timings_key(article, "r1")
    path = next(p for p in (tmp_path / "blobs").rglob("*") if p.as_posix().endswith(key))
    path.write_bytes(path.read_bytes()[:-1])
    assert store.read(key) is None
    # neither half of r1 is left (a rendering's audio without its timings is never served)
    assert not blobs.exists(audio_key(article, "r1"))
    assert not blobs.exists(timings_key(article, "r1"))
    assert told == [key] and store.has_rendering(article, "r2")  # the other one is intact
    assert store.size == 800 + len(b'{"sentences": []}')  # r2 alone


def test_episodes_are_never_evicted(parts):
    blobs, reg = parts
    store = Store(blobs, reg, max_bytes=1000)
    store.put_episode("a" * 32, "r1", b"e" * 5000)
    store.put_part(part_key(1), _part(100))
    assert not store.over_cap and store.evict() == []
    assert blobs.exists("episodes/" + "a" * 32 + "/r1.mp3") and store.size < 1000


def test_reconcile_indexes_blobs_a_crash_left_unindexed(parts):
    blobs, reg = parts
    blobs.put("renders/" + "a" * 32 + "/r1.mp3", b"x" * 100)  # stored, then the crash
    store = Store(blobs, reg, max_bytes=10**6)
    assert store.size == 0
    assert store.reconcile() == 1 and store.size == 100
    blobs.delete("renders/" + "a" * 32 + "/r1.mp3")  # lost behind our back
    assert store.reconcile() == 1 and store.size == 0


# --- the store's promises one by one (sizes chosen by hand, so every boundary is exact) ---


def _store(parts: tuple[FileBlobs, SqliteRegistry], max_bytes: int = 10**9) -> Store:
    blobs, reg = parts
    return Store(blobs, reg, max_bytes=max_bytes)


def _renderings(store: Store, count: int, size: int = 100) -> list[str]:
    """`count` renderings of `size` bytes (audio and timings), oldest use first."""
    ids = [f"{i:032x}" for i in range(count)]
    for i, article in enumerate(ids):
        store.put_rendering(article, "r1", audio=b"a" * (size - 10), timings=b"t" * 10)
        run_sql(
            store._index, "UPDATE blobs SET used_at=? WHERE key LIKE ?", (1000 + i, f"%{article}%")
        )
    return ids


def test_a_parts_key_and_place_are_stable_across_releases(parts: Any) -> None:
    # cached parts outlive upgrades: the key and the blob's place may never change
    key = part_key("espeak", "cmn", "+0%", "你好")
    assert key == "2468ea21621939c71c3420ed740ae82059e7d849"
    store = _store(parts)
    store.put_part(key, _part())
    assert [k for k, _ in parts[0].list()] == [f"parts/24/{key}.part"]


def test_the_size_counts_replacements_once_and_episodes_never(parts: Any) -> None:
    store = _store(parts)
    store.put_rendering("a" * 32, "r1", audio=b"a" * 300, timings=b"t" * 20)
    assert store.size == 320
    parts[0].put(audio_key("a" * 32, "r1"), b"damaged")  # no longer what was stored
    store.put_rendering("a" * 32, "r1", audio=b"a" * 100, timings=b"t" * 20)  # replaced
    assert store.size == 120
    assert store.read(audio_key("a" * 32, "r1")) == b"a" * 100
    store.put_episode("a" * 32, "r1", b"e" * 5000)
    store.put_episode("a" * 32, "r1", b"e" * 7000)
    assert store.size == 120


def test_the_first_writer_of_a_key_wins_and_the_index_follows_the_stored_bytes(
    parts: Any, tmp_path: Any
) -> None:
    """Two processes writing one key: the second's blob write fails before the first has
    indexed its digest. Whatever the order, the digest recorded is that of the bytes stored,
    so the blob is never condemned as damaged (and never read again in a loop)."""
    blobs, reg = parts
    other = SqliteRegistry(tmp_path / "r.db")  # another process's connections
    first, second = _store(parts), Store(FileBlobs(blobs.root), other, max_bytes=10**9)
    key = audio_key("a" * 32, "r1")
    original = blobs.put_new
    order: list[str] = []

    def first_writer(k: str, data: bytes) -> bool:
        won: bool = original(k, data)
        order.append("first wrote")
        second._put(k, b"second" * 50, group="renders/a/r1")  # loses, indexes what is there
        order.append("second indexed")
        return won

    blobs.put_new = first_writer
    first._put(key, b"first" * 50, group="renders/a/r1")
    blobs.put_new = original
    assert order == ["first wrote", "second indexed"]
    assert first.read(key) == b"first" * 50 and second.read(key) == b"first" * 50
    assert reg.blob_digest(key) == (250, hashlib.sha256(b"first" * 50).hexdigest())
    assert first.size == 250 and reg.blob_bytes() == 250


@pytest.mark.parametrize(
    "stored",
    [b"a" * 101, b"a" * 99, b"a" * 92 + b"damaged!"],
    ids=["a byte longer", "a byte shorter", "same length, other bytes"],
)
def test_a_blob_is_served_only_if_its_length_and_digest_match(parts: Any, stored: bytes) -> None:
    blobs, _ = parts
    store = _store(parts)
    store.put_rendering("a" * 32, "r1", audio=b"a" * 100, timings=b"t" * 10)
    key = audio_key("a" * 32, "r1")
    assert store.read(key) == b"a" * 100
    blobs.put(key, stored)
    assert store.read(key) is None and not blobs.exists(key)


def test_blobs_without_a_recorded_digest_are_checked_by_length(parts: Any) -> None:
    blobs, reg = parts
    store = _store(parts)
    for key, data in (("parts/aa/a.part", b"a" * 10), ("parts/bb/b.part", b"b" * 10)):
        blobs.put(key, data)
        reg.blob_added(key, size=10, group=key, evictable=True)  # stored by an old release
    assert store.read("parts/aa/a.part") == b"a" * 10
    blobs.put("parts/bb/b.part", b"b" * 11)
    assert store.read("parts/bb/b.part") is None
    blobs.put("parts/aa/a.part", b"a" * 9)  # shorter is damaged too
    assert store.read("parts/aa/a.part") is None


def test_a_blob_not_indexed_yet_is_read_as_it_is(parts: Any) -> None:
    blobs, _ = parts
    blobs.put("parts/cc/c.part", b"c" * 10)  # a crash before it was indexed
    assert _store(parts).read("parts/cc/c.part") == b"c" * 10


def test_a_part_that_is_not_a_part_is_a_miss_and_removed(parts: Any) -> None:
    blobs, _ = parts
    key = part_key("x")
    blobs.put(f"parts/{key[:2]}/{key}.part", b"not an mp3 part")
    store = _store(parts)
    assert store.get_part(key) is None
    assert not blobs.exists(f"parts/{key[:2]}/{key}.part")


def test_a_rendering_is_there_only_with_both_files(parts: Any) -> None:
    blobs, _ = parts
    store = _store(parts)
    store.put_rendering("a" * 32, "r1", audio=b"a" * 100, timings=b"t" * 10)
    assert store.has_rendering("a" * 32, "r1")
    blobs.delete(timings_key("a" * 32, "r1"))
    assert not store.has_rendering("a" * 32, "r1")


def test_reconcile_groups_a_renderings_files_and_leaves_episodes_alone(parts: Any) -> None:
    blobs, reg = parts
    article = "d" * 32
    blobs.put(audio_key(article, "r1"), b"a" * 90)
    blobs.put(timings_key(article, "r1"), b"t" * 10)
    blobs.put(f"episodes/{article}/r1.mp3", b"e" * 500)
    blobs.put("parts/ee/e.part", b"p" * 7)
    store = Store(blobs, reg, max_bytes=150)
    assert store.reconcile() == 3 and store.size == 107
    groups = {g.group: sorted(g.keys) for g in reg.least_recent(limit=10)}
    assert groups == {  # a rendering is one group, evicted whole; the episode is not cached
        f"renders/{article}/r1": sorted([audio_key(article, "r1"), timings_key(article, "r1")]),
        "parts/ee/e.part": ["parts/ee/e.part"],
    }


def test_reconcile_drops_every_entry_whose_blob_is_gone(parts: Any) -> None:
    blobs, _ = parts
    store = _store(parts)
    ids = _renderings(store, 120, size=20)
    for article in ids:
        blobs.delete(audio_key(article, "r1"))
    assert store.reconcile() == 120 and store.size == 120 * 10


def _scrubbed(parts: Any) -> tuple[Store, list[str]]:
    """Three renderings; in key order: .json (10 bytes), .mp3 (90 bytes), and so on. The
    first .mp3 is damaged and the second .json is gone."""
    blobs, _ = parts
    store = _store(parts)
    ids = _renderings(store, 3, size=100)
    keys = [k for article in ids for k in (timings_key(article, "r1"), audio_key(article, "r1"))]
    blobs.put(keys[1], b"?" * 90)
    blobs.delete(keys[2])
    return store, keys


@pytest.mark.parametrize(
    ("budget", "stops_at", "damaged"),
    [(1, 0, 0), (10, 0, 0), (11, 1, 1), (100, 1, 1), (101, 2, 1), (110, 2, 1), (111, 3, 1)],
)
def test_scrub_stops_once_its_budget_is_read(
    parts: Any, budget: int, stops_at: int, damaged: int
) -> None:
    store, keys = _scrubbed(parts)
    assert store.scrub(max_bytes=budget) == (keys[stops_at], damaged)


def test_scrub_resumes_after_a_key_and_says_when_it_reached_the_end(parts: Any) -> None:
    store, keys = _scrubbed(parts)
    assert store.scrub(after=keys[2], max_bytes=10**9) == ("", 0)  # the rest is healthy
    assert store.scrub(max_bytes=10**9) == ("", 1)
    assert not parts[0].exists(keys[0]), "the damaged .mp3's .json went with it"


def test_make_room_evicts_least_recent_groups_until_enough_is_freed(parts: Any) -> None:
    blobs, _ = parts
    store = _store(parts)
    ids = _renderings(store, 6, size=100)
    assert store.make_room(0) == 0 and store.size == 600
    assert store.make_room(1) == 100 and not store.has_rendering(ids[0], "r1")
    assert store.make_room(100) == 100 and not store.has_rendering(ids[1], "r1")
    assert store.make_room(101) == 200 and store.has_rendering(ids[4], "r1")
    assert store.make_room(10**6) == 200 and store.size == 0  # all there was
    assert not any(True for _ in blobs.list("renders/"))


class _FullDisk(FileBlobs):
    """A disk that is full for the first `full` writes."""

    def __init__(self, root: Path, full: int, errno_: int = errno.ENOSPC) -> None:
        super().__init__(root)
        self.full = full
        self.errno = errno_

    def put(self, key: str, data: bytes) -> None:
        if self.full:
            self.full -= 1
            raise OSError(self.errno, os.strerror(self.errno))
        super().put(key, data)

    def put_new(self, key: str, data: bytes) -> bool:
        if self.full:
            self.full -= 1
            raise OSError(self.errno, os.strerror(self.errno))
        return super().put_new(key, data)


def test_a_full_disk_frees_twice_the_write_and_a_margin(
    parts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, reg = parts
    store = Store(_FullDisk(tmp_path / "full", full=0), reg, max_bytes=10**9)
    wanted: list[int] = []
    make_room = store.make_room

    def recorded(n: int) -> int:
        wanted.append(n)
        return make_room(n)

    monkeypatch.setattr(store, "make_room", recorded)
    ids = _renderings(store, 2, size=100)
    store.blobs.full = 1  # type: ignore[attr-defined]
    timings = b"t" * (3 * 1024**2)  # twice this shares bits with the 4 MiB margin
    store.put_rendering("f" * 32, "r1", audio=b"a" * 1000, timings=timings)
    assert wanted == [2 * len(timings) + 4 * 1024**2]  # the timings were written first
    assert store.has_rendering("f" * 32, "r1") and not store.has_rendering(ids[1], "r1")
    assert store.size == 1000 + len(timings)


def test_evict_goes_to_90_percent_of_the_cap_and_reports_renderings(
    parts: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(parts, max_bytes=1000)
    ids = _renderings(store, 10, size=100)
    assert store.size == 1000 and not store.over_cap  # at the cap is not over it
    store.put_rendering("e" * 32, "r1", audio=b"a" * 90, timings=b"t" * 10)
    assert store.over_cap
    with caplog.at_level(logging.INFO, logger="langdu.store"):
        assert store.evict() == [(ids[0], "r1"), (ids[1], "r1")]  # 1100 -> 900, not below
    assert store.size == 900 and "evicted 200 bytes of cached audio" in caplog.text


def test_evict_with_nothing_over_the_cap_logs_nothing(
    parts: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(parts, max_bytes=1000)
    _renderings(store, 2, size=100)
    with caplog.at_level(logging.INFO, logger="langdu.store"):
        assert store.evict() == []
    assert "evicted" not in caplog.text and store.size == 200


class _Index:
    """Just enough of a registry to count the recency writes."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []

    def blob_bytes(self) -> int:
        return 0

    def blobs_used(self, keys: list[str], at: object) -> None:
        self.writes.append(list(keys))


def test_a_blob_is_touched_at_most_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _Index()
    store = Store(FileBlobs(tmp_path), index, max_bytes=1)  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr("service.store.time.monotonic", lambda: clock[0])
    store.touch("a", "b")
    store.touch("a")
    clock[0] = 1060.0  # exactly a minute: not yet
    store.touch("a", "c")
    clock[0] = 1060.5
    store.touch("a", "c")
    assert index.writes == [["a", "b"], ["c"], ["a"]]


def test_the_recency_memory_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _Index()
    store = Store(FileBlobs(tmp_path), index, max_bytes=1)  # type: ignore[arg-type]
    monkeypatch.setattr("service.store.time.monotonic", lambda: 1000.0)
    store.touch(*(f"k{i}" for i in range(100_000)))
    store.touch("k0")  # 100,000 remembered: kept, so no second write
    assert len(index.writes) == 1
    store.touch("new")  # 100,001: forgotten, so the next touch writes again
    store.touch("k0")
    assert [len(w) for w in index.writes] == [100_000, 1, 1]


def test_evict_lands_at_or_just_under_90_percent(parts: Any) -> None:
    store = _store(parts, max_bytes=1000)
    ids = _renderings(store, 21, size=50)  # 1050 bytes in groups of 50
    assert store.evict() == [(article, "r1") for article in ids[:3]]
    assert store.size == 900


def test_another_process_s_writes_count_once_the_size_is_refreshed(
    parts: Any, tmp_path: Any
) -> None:
    """In a cluster every worker writes to one cache: each sees the others' bytes when it
    counts again (after each reading), so the cap holds for the whole cache."""
    blobs, _ = parts
    mine = _store(parts, max_bytes=500)
    other = Store(FileBlobs(blobs.root), SqliteRegistry(tmp_path / "r.db"), max_bytes=500)
    other.put_rendering("b" * 32, "r1", audio=b"b" * 390, timings=b"t" * 10)
    mine.put_rendering("a" * 32, "r1", audio=b"a" * 190, timings=b"t" * 10)
    assert mine.size == 200 and not mine.over_cap  # it only counted its own
    assert mine.refresh_size() == 600 and mine.over_cap
    assert mine.evict() == [("b" * 32, "r1")]  # the least recently used went: the other's


def test_reconciling_while_another_process_writes_loses_no_digest(parts: Any) -> None:
    """A cluster's reconcile lists blobs, then reads the index: a writer between the two must
    neither lose its index entry nor have its digest overwritten."""
    blobs, reg = parts
    store = _store(parts)
    store.put_part(part_key(1), _part())
    written_since = f"parts/{part_key(2)[:2]}/{part_key(2)}.part"
    listed = blobs.list

    def list_then_another_writes(prefix: str = "") -> Iterator[tuple[str, int]]:
        found = list(listed(prefix))
        _store(parts).put_part(part_key(2), _part())  # after the listing, before the index
        return iter(found)

    blobs.list = list_then_another_writes
    assert store.reconcile() == 0  # nothing was missing, nothing unindexed
    blobs.list = listed
    _size, digest = reg.blob_digest(written_since)
    assert digest is not None  # still indexed, with its writer's digest
    # A blob found but never indexed is indexed without a digest, and only once.
    orphan = f"parts/{part_key(3)[:2]}/{part_key(3)}.part"
    blobs.put(orphan, b"x" * 10)
    assert store.reconcile() == 1 and store.reconcile() == 0
    assert reg.blob_digest(orphan) == (10, None)


def test_a_later_writer_of_a_sound_blob_keeps_its_bytes(parts: Any) -> None:
    """Writers of one key in turn: the first indexed its digest; the second's different
    bytes are not written, and the index keeps the first's (nothing is condemned)."""
    blobs, reg = parts
    store = _store(parts)
    key = audio_key("a" * 32, "r1")
    store._put(key, b"first" * 20, group="renders/a/r1")
    _store(parts)._put(key, b"second!" * 20, group="renders/a/r1")
    assert blobs.get(key) == b"first" * 20 and store.read(key) == b"first" * 20
    assert reg.blob_digest(key) == (100, hashlib.sha256(b"first" * 20).hexdigest())


@pytest.mark.parametrize("damage", [b"short", b"x" * 500], ids=["shorter", "longer"])
def test_damaged_bytes_under_a_key_are_replaced_by_the_next_writer(
    parts: Any, damage: bytes
) -> None:
    blobs, _ = parts
    store = _store(parts)
    key = audio_key("a" * 32, "r1")
    store._put(key, b"a" * 100, group="renders/a/r1")
    blobs.put(key, damage)  # the disk changed what was stored
    store._put(key, b"a" * 100, group="renders/a/r1")
    assert blobs.get(key) == b"a" * 100 and store.read(key) == b"a" * 100


def test_a_blob_indexed_without_a_digest_is_kept_and_its_digest_learned(parts: Any) -> None:
    """A blob reconciled at start (indexed, no digest yet) is sound as far as anyone can
    tell: a writer with other bytes keeps it and records the digest of what is stored."""
    blobs, reg = parts
    store = _store(parts)
    key = f"parts/{part_key(7)[:2]}/{part_key(7)}.part"
    blobs.put(key, b"found" * 10)
    assert store.reconcile() == 1 and reg.blob_digest(key) == (50, None)
    store._put(key, b"other" * 12, group=key)
    assert blobs.get(key) == b"found" * 10
    assert reg.blob_digest(key) == (50, hashlib.sha256(b"found" * 10).hexdigest())


class _GoneThenRewritten(FileBlobs):
    """A key that seems taken, is gone when read, and is written by a third party right
    before our own write: ours must overwrite it, so that the index tells the truth."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.raced = False

    def put_new(self, key: str, data: bytes) -> bool:
        if not self.raced:
            return False  # someone had written it ...
        return super().put_new(key, data)

    def get(self, key: str) -> bytes | None:
        if not self.raced:
            self.raced = True
            FileBlobs.put(self, key, b"third party")  # ... gone, then a third writes
            return None
        return super().get(key)


def test_a_key_found_gone_is_written_over_whatever_came_since(parts: Any, tmp_path: Path) -> None:
    _, reg = parts
    blobs = _GoneThenRewritten(tmp_path / "race")
    store = Store(blobs, reg, max_bytes=10**9)
    key = audio_key("a" * 32, "r1")
    store._put(key, b"ours" * 10, group="renders/a/r1")
    assert blobs.get(key) == b"ours" * 10
    assert reg.blob_digest(key) == (40, hashlib.sha256(b"ours" * 10).hexdigest())
