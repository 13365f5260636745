"""The blob store's contract, run against every backend: local files and S3 (SeaweedFS)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from service.store.blobs import BlobStore, open_store
from tests.servers import s3_environment


@pytest.fixture(params=["file", "s3"])
def blobs(request, tmp_path, monkeypatch) -> Iterator[BlobStore]:
    if request.param == "file":
        yield open_store(tmp_path.as_uri())
    else:
        yield open_store(s3_environment(monkeypatch))


def test_put_get_range_size_list_delete(blobs):
    assert blobs.get("renders/a/r1.mp3") is None and blobs.size("x") is None
    assert not blobs.exists("renders/a/r1.mp3")
    blobs.put("renders/a/r1.mp3", b"0123456789")
    blobs.put("parts/ab/abc.part", b"xyz")
    blobs.put("parts/b0/b0c.part", b"")
    assert blobs.get("renders/a/r1.mp3") == b"0123456789"
    assert blobs.get("parts/b0/b0c.part") == b""
    assert blobs.read_range("renders/a/r1.mp3", 2, 5) == b"234"
    assert blobs.read_range("renders/a/r1.mp3", 8, 20) == b"89"  # clipped at the end
    assert blobs.read_range("renders/a/r1.mp3", 12, 20) == b""
    assert blobs.read_range("renders/a/r1.mp3", 0, 0) == b""
    assert blobs.read_range("renders/a/nope.mp3", 0, 1) is None
    assert blobs.size("renders/a/r1.mp3") == 10 and blobs.exists("parts/ab/abc.part")
    assert sorted(blobs.list()) == [
        ("parts/ab/abc.part", 3),
        ("parts/b0/b0c.part", 0),
        ("renders/a/r1.mp3", 10),
    ]
    assert list(blobs.list("renders/")) == [("renders/a/r1.mp3", 10)]
    assert list(blobs.list("parts/a")) == [("parts/ab/abc.part", 3)]  # a prefix, not a folder
    blobs.put("renders/a/r1.mp3", b"new")
    assert blobs.get("renders/a/r1.mp3") == b"new"
    blobs.delete("renders/a/r1.mp3")
    blobs.delete("renders/a/r1.mp3")  # gone already: no error
    assert not blobs.exists("renders/a/r1.mp3") and blobs.get("renders/a/r1.mp3") is None


def test_put_new_lets_exactly_one_of_many_writers_win(blobs):
    assert blobs.put_new("parts/cd/cd.part", b"first") is True
    assert blobs.put_new("parts/cd/cd.part", b"second") is False
    assert blobs.get("parts/cd/cd.part") == b"first"

    results: dict[int, bool] = {}
    start = threading.Barrier(8)

    def write(i: int) -> None:
        start.wait()
        results[i] = blobs.put_new("renders/x/r.mp3", f"writer {i}".encode() * 1000)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [winner] = [i for i, won in results.items() if won]
    assert blobs.get("renders/x/r.mp3") == f"writer {winner}".encode() * 1000


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "A/b", ".tmp/x", "a//b", ""])
def test_keys_are_checked(blobs, key):
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.put(key, b"x")
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.put_new(key, b"x")
