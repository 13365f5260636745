"""The audio store: atomic writes, part cache, size cap with LRU eviction; and the registry."""

from __future__ import annotations

import os
import time

import pytest

from service.audio import AudioFormat, encode_part
from service.db import QUEUED, READY, SYNTHESIZING, ArticleRecord, Registry
from service.errors import LangduError
from service.store import Store, part_key

FMT = AudioFormat(sample_rate=22050)


def _part(ms: int = 200):
    return encode_part(b"\x10\x00" * (22050 * ms // 1000), FMT)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path, max_bytes=10**9)
    target = store.article_path("a" * 32, "mp3")

    def crash() -> None:
        with store.writer(target) as out:
            out.write(b"half an article")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash()
    assert not target.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_stale_temp_files_are_removed_at_start(tmp_path):
    (tmp_path / "tmp").mkdir(parents=True)
    (tmp_path / "tmp" / "x.mp3.123").write_bytes(b"partial")
    Store(tmp_path, max_bytes=10**9)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_parts_round_trip_and_damaged_parts_are_misses(tmp_path):
    store = Store(tmp_path, max_bytes=10**9)
    part = _part()
    key = part_key("espeak", "cmn", "+0%", "你好")
    assert store.get_part(key) is None
    store.put_part(key, part)
    assert store.get_part(key) == part
    path = next((tmp_path / "parts").rglob("*.part"))
    path.write_bytes(path.read_bytes()[:-7])
    assert store.get_part(key) is None and not path.exists()


def test_size_cap_evicts_least_recently_used_first(tmp_path):
    part = _part(500)
    size = len(part.data) + 12
    store = Store(tmp_path, max_bytes=int(size * 3.5))
    keys = [part_key(i) for i in range(3)]
    for i, key in enumerate(keys):
        store.put_part(key, part)
        os.utime(next((tmp_path / "parts").rglob(f"{key}.part")), (1000 + i, 1000 + i))
    assert store.get_part(keys[0]) is not None  # used now: the most recent
    store.put_part(part_key(3), part)
    assert store.size <= store.max_bytes
    assert store.get_part(keys[1]) is None, "the least recently used part went first"
    assert store.get_part(keys[0]) is not None and store.get_part(part_key(3)) is not None


def test_article_files_are_evicted_together(tmp_path):
    store = Store(tmp_path, max_bytes=2900)
    old, new = "a" * 32, "b" * 32
    for kind in ("json", "vtt", "mp3"):
        store.write(store.article_path(old, kind), b"x" * 500)
    past = time.time() - 3600
    for p in (tmp_path / "articles").iterdir():
        os.utime(p, (past, past))
    for kind in ("json", "vtt", "mp3"):
        store.write(store.article_path(new, kind), b"y" * 500)
    assert not store.has_article(old) and not any((tmp_path / "articles").glob(f"{old}.*"))
    assert store.has_article(new)


def _record(article_id: str = "c" * 32) -> ArticleRecord:
    return ArticleRecord(id=article_id, title="标题", url=None, voice="cmn-offline", rate="+0%",
                         pitch="+0Hz", status=QUEUED, sentences=((0, "标题"), (1, "正文。")))


def test_registry_adds_once_and_tracks_status(tmp_path):
    reg = Registry.connect(f"sqlite:///{tmp_path / 'r.db'}")
    rec, created = reg.add(_record())
    assert created and rec.sentences == ((0, "标题"), (1, "正文。")) and rec.created_at
    _, again = reg.add(_record())
    assert not again
    reg.set_status(rec.id, READY, duration_ms=1234, size=999)
    got = reg.get(rec.id)
    assert got is not None and (got.status, got.duration_ms, got.bytes) == (READY, 1234, 999)
    assert reg.get("d" * 32) is None
    reg.close()


def test_registry_requeues_work_interrupted_by_a_crash(tmp_path):
    path = tmp_path / "r.db"
    reg = Registry(path)
    reg.add(_record())
    reg.set_status("c" * 32, SYNTHESIZING)
    reg.close()
    reopened = Registry(path)
    got = reopened.get("c" * 32)
    assert got is not None and got.status == QUEUED


def test_only_sqlite_urls_are_accepted(tmp_path):
    with pytest.raises(LangduError, match="unsupported database"):
        Registry.connect("postgresql://localhost/langdu")
