"""Blobs as files under one directory (the embedded default): temp file, fsync, rename.

Temp files are named after the process writing them (`<name>.<pid>.<random>`), so a
process starting up removes only what a dead process left, never another's write under way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from service.errors import BackendUnavailableError
from service.store.blobs import check_key

_TMP = ".tmp"
_TEMP_NAME = re.compile(r"^.+\.(\d+)\.[a-z0-9_]+$")
_ABANDONED_S = 24 * 3600.0  # a temp file this old is abandoned, whoever wrote it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _stale(temp: Path) -> bool:
    """True for a temp file no live process is writing: its writer died (or it has been
    left for a day, or it is not named the way writers name them)."""
    match = _TEMP_NAME.match(temp.name)
    if match is None or int(match.group(1)) == os.getpid():
        return match is None
    try:
        old = time.time() - temp.stat().st_mtime > _ABANDONED_S
    except FileNotFoundError:
        return False
    return old or not _alive(int(match.group(1)))


class FileBlobs:
    """Each key is a file path under `root`; writes go through `root/.tmp` and a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / _TMP
        self._tmp.mkdir(parents=True, exist_ok=True)
        for temp in self._tmp.iterdir():  # left by a crash mid-write: never served
            if _stale(temp):
                with contextlib.suppress(OSError):
                    temp.unlink()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _written(self, final: Path, data: bytes) -> str:
        """`data` in a new temp file, on disk (fsync); its path."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"{final.name}.{os.getpid()}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def put(self, key: str, data: bytes) -> None:
        final = self._path(key)
        tmp = self._written(final, data)
        try:
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_new(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        tmp = self._written(final, data)
        try:
            try:
                os.link(tmp, final)  # fails if the name exists: the first writer wins
            except FileNotFoundError:  # another process tidied the empty folder away
                final.parent.mkdir(parents=True, exist_ok=True)
                os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return True

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes | None:
        try:
            with self._path(key).open("rb") as f:
                f.seek(start)
                return f.read(max(0, end - start))
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):  # tidy empty directories (not the root)
            parent = path.parent
            while parent != self.root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def ping(self) -> None:
        if not os.access(self._tmp, os.W_OK | os.X_OK):
            raise BackendUnavailableError(f"the audio folder {self.root} is not writable")

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        for dirpath, dirnames, names in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != _TMP]
            for name in names:
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        yield key, path.stat().st_size


def open_store(url: str) -> FileBlobs:
    """file:///absolute/dir."""
    return FileBlobs(Path(unquote(urlparse(url).path)))
