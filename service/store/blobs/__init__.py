"""Keyed blob storage: the bytes of audio, timings and episodes, and nothing else.

One interface (`BlobStore`), chosen by the storage URL's scheme: `file:///path` (local disk,
the embedded default) and `s3://bucket/prefix` (an S3-compatible object store, the cluster's)
are built in; another backend is one new module `service/store/blobs/<scheme>.py` with an
`open_store(url)`. Blobs carry no status: what is current is the registry's to say. A put is
atomic: a reader sees the old bytes, the new bytes, or nothing, never a part. Every key
langdu writes names immutable content, so the store writes with `put_new`: the first writer
of a key wins, on one machine or many.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from service.store.backends import backend_module

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")


def check_key(key: str) -> str:
    """A blob key: lower-case path segments of [a-z0-9._-], none starting with a dot.

    Raises:
        ValueError: anything else (a key never comes from a client unchecked).
    """
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"bad blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Bytes by key. Calls block: run them off the event loop."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, atomically (replacing what was there)."""

    def put_new(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` unless a blob is there already (atomically: of two
        writers, one wins). Returns False, leaving the stored blob, if one was there."""

    def get(self, key: str) -> bytes | None:
        """The whole blob, or None if there is none."""

    def read_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of the blob, or None if there is none."""

    def size(self, key: str) -> int | None:
        """The blob's length in bytes, or None if there is none."""

    def exists(self, key: str) -> bool:
        """True if the blob is stored."""

    def delete(self, key: str) -> None:
        """Remove the blob (no error if it is already gone)."""

    def ping(self) -> None:
        """Reach the store (without writing).

        Raises:
            BackendUnavailableError: it cannot be used now.
        """

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key, size) of every blob whose key starts with `prefix`."""


def open_store(url: str) -> BlobStore:
    """The blob store named by a URL (file:///var/lib/langdu/blobs).

    Raises:
        ConfigError: no backend for that scheme.
    """
    module = backend_module("service.store.blobs", url, what="storage", example="file:///path")
    store: BlobStore = module.open_store(url)
    return store


__all__ = ["BlobStore", "check_key", "open_store"]
