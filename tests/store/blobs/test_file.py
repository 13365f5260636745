"""Blobs on local disk: atomic puts, ranges, listing, and keys that cannot escape the root."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from service.store.blobs import open_store
from service.store.blobs.file import FileBlobs


def test_put_get_range_size_list_delete(tmp_path):
    blobs = open_store(tmp_path.as_uri())
    assert isinstance(blobs, FileBlobs)
    assert blobs.get("renders/a/r1.mp3") is None and blobs.size("x") is None
    blobs.put("renders/a/r1.mp3", b"0123456789")
    blobs.put("parts/ab/abc.part", b"xyz")
    assert blobs.get("renders/a/r1.mp3") == b"0123456789"
    assert blobs.read_range("renders/a/r1.mp3", 2, 5) == b"234"
    assert blobs.read_range("renders/a/nope.mp3", 0, 1) is None
    assert blobs.size("renders/a/r1.mp3") == 10 and blobs.exists("parts/ab/abc.part")
    assert sorted(blobs.list()) == [("parts/ab/abc.part", 3), ("renders/a/r1.mp3", 10)]
    assert list(blobs.list("renders/")) == [("renders/a/r1.mp3", 10)]
    blobs.put("renders/a/r1.mp3", b"new")
    assert blobs.get("renders/a/r1.mp3") == b"new"
    blobs.delete("renders/a/r1.mp3")
    blobs.delete("renders/a/r1.mp3")  # gone already: no error
    assert not blobs.exists("renders/a/r1.mp3") and not (tmp_path / "renders").exists()


def test_a_failed_put_leaves_the_old_blob_and_no_temp_file(tmp_path, monkeypatch):
    blobs = FileBlobs(tmp_path)
    blobs.put("a/b", b"old")

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        blobs.put("a/b", b"new and half written")
    assert blobs.get("a/b") == b"old"
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_temp_files_left_by_a_crash_are_removed_at_start(tmp_path):
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "x.mp3.123").write_bytes(b"partial")
    blobs = FileBlobs(tmp_path)
    assert list((tmp_path / ".tmp").iterdir()) == [] and list(blobs.list()) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "A/b", ".tmp/x", "a//b", ""])
def test_keys_cannot_escape_the_root(tmp_path, key):
    with pytest.raises(ValueError, match="bad blob key"):
        FileBlobs(tmp_path).put(key, b"x")


def test_unknown_storage_schemes_are_refused():
    with pytest.raises(ConfigError, match="unsupported storage URL gs"):
        open_store("gs://bucket/prefix")
    with pytest.raises(ConfigError, match="names its bucket"):
        open_store("s3:///prefix")


def test_a_start_leaves_the_writes_of_live_processes_alone(tmp_path):
    """Two processes may share the folder: one starting must not delete what the other
    is writing, only what a dead process (or a very old write) left."""
    import os
    import subprocess
    import sys
    import time

    tmp = tmp_path / ".tmp"
    tmp.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        writing = tmp / f"r1.mp3.{other.pid}.abc123_x"
        abandoned = tmp / f"r2.mp3.{dead.pid}.def456_y"
        ancient = tmp / f"r3.mp3.{other.pid}.ghi789_z"
        for f in (writing, abandoned, ancient):
            f.write_bytes(b"partial")
        day_ago = time.time() - 2 * 24 * 3600
        os.utime(ancient, (day_ago, day_ago))
        FileBlobs(tmp_path)
        assert sorted(p.name for p in tmp.iterdir()) == [writing.name]
    finally:
        other.kill()
        other.wait()
