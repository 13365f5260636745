"""The audio store over blobs: part cache, renderings, episodes, LRU eviction by the index."""

from __future__ import annotations

import pytest

from service.audio.mp3 import AudioFormat, encode_part
from service.store import Store, audio_key, part_key, timings_key
from service.store.blobs.file import FileBlobs
from service.store.registry import ArticleRecord, Finished
from service.store.registry.sqlite import SqliteRegistry

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
        reg._db.execute("UPDATE blobs SET used_at=? WHERE key LIKE ?", (1000 + i, f"%{key}%"))
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
    reg._db.execute("UPDATE blobs SET used_at=1")
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
