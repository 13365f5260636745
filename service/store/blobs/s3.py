"""Blobs in an S3-compatible bucket (the cluster configuration), through obstore.

`s3://bucket[/prefix]`; the endpoint, region and credentials come from the standard
variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`),
and an `http://` endpoint is allowed (a server on loopback). A PUT is atomic in S3: a reader
sees the old object, the new one or none, never a part; `put_new` is a conditional PUT
(`If-None-Match: *`), so two writers of one key cannot both win. Needs the `cluster`
extra: `pip install 'langdu[cluster]'`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from service.errors import BackendUnavailableError, ConfigError
from service.store.blobs import check_key

_UNAVAILABLE = "the object store is unavailable; try again later"


class S3Blobs:
    """Each key is an object under `prefix` in `bucket`."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        from obstore.store import S3Store

        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._store = S3Store(
            bucket,
            prefix=self.prefix or None,
            client_options={
                "allow_http": endpoint.startswith("http://"),
                "timeout": "30s",
                "connect_timeout": "5s",
            },
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=20)},
        )

    @contextlib.contextmanager
    def _calling(self) -> Iterator[None]:
        """obstore's failures as langdu's: a missing object is the caller's to handle;
        anything else means the store cannot be used now."""
        import obstore.exceptions as errors

        try:
            yield
        except FileNotFoundError:
            raise
        except errors.BaseError as exc:
            raise BackendUnavailableError(_UNAVAILABLE) from exc

    def put(self, key: str, data: bytes) -> None:
        import obstore

        with self._calling():
            obstore.put(self._store, check_key(key), data)

    def put_new(self, key: str, data: bytes) -> bool:
        import obstore
        import obstore.exceptions as errors

        try:
            with self._calling():
                obstore.put(self._store, check_key(key), data, mode="create")
        except BackendUnavailableError as exc:
            if isinstance(exc.__cause__, errors.AlreadyExistsError | errors.PreconditionError):
                return False
            raise
        return True

    def get(self, key: str) -> bytes | None:
        import obstore

        try:
            with self._calling():
                return bytes(obstore.get(self._store, check_key(key)).bytes())
        except FileNotFoundError:
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes | None:
        import obstore

        size = None
        if end <= start or start > 0:
            size = self.size(key)
            if size is None:
                return None
            if start >= min(end, size):
                return b""
        try:
            with self._calling():
                return bytes(obstore.get_range(self._store, check_key(key), start=start, end=end))
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        import obstore

        try:
            with self._calling():
                meta: Any = obstore.head(self._store, check_key(key))
        except FileNotFoundError:
            return None
        return int(meta["size"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def delete(self, key: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError), self._calling():
            obstore.delete(self._store, check_key(key))

    def ping(self) -> None:
        self.exists("ping")  # reaching the bucket is enough: the object need not exist

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        import obstore

        # obstore lists by whole path segments: ask for the folder, filter on the rest.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else None
        with self._calling():
            for batch in obstore.list(self._store, prefix=folder):
                for meta in batch:
                    key = str(meta["path"])
                    if key.startswith(prefix):
                        yield key, int(meta["size"])

    def presign(self, key: str, expires_s: int) -> str:
        """A URL anyone may GET the object with, for `expires_s` seconds."""
        import obstore

        with self._calling():
            return str(
                obstore.sign(self._store, "GET", check_key(key), timedelta(seconds=expires_s))
            )


def open_store(url: str) -> S3Blobs:
    """s3://bucket[/prefix].

    Raises:
        ConfigError: obstore is not installed, or the URL names no bucket.
    """
    if importlib.util.find_spec("obstore") is None:
        raise ConfigError("an s3:// storage URL needs obstore: pip install 'langdu[cluster]'")
    parsed = urlparse(url)
    if not parsed.netloc:
        raise ConfigError(f"an s3:// storage URL names its bucket: s3://bucket/prefix, not {url!r}")
    return S3Blobs(parsed.netloc, parsed.path)
