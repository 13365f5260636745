"""Audio the first release stored under paths (`<data dir>/audio/`), moved into the blob
store at start-up so an upgraded deployment serves it at once.

The first release kept each finished article as `audio/articles/<id>.mp3` with its
timings (`.json`) and captions (`.vtt`), and each published article's episode as
`audio/episodes/<id>.mp3`. The registry's migration (revision 0002) marked those
articles evicted: without this move they were read again, and their episodes answered
404 until then. Here each one becomes a rendering named `first-release-<digest>`: stored
through the store (length and SHA-256 recorded), read back and compared by digest, and
only then recorded in the registry and deleted from the old folder. An article that
newer audio has replaced, or that the registry does not know, has nothing to move: its
files go. Sentence parts (keyed another way) and unfinished writes were cache and go
too; a file that does not check out is left where it is and named in the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from service.audio.mp3 import mp3_frames
from service.errors import AudioError
from service.store import Store, audio_key, episode_key, timings_key
from service.store.registry import Finished, Registry

log = logging.getLogger("langdu.legacy")

_ID = re.compile(r"^[0-9a-f]{32}$")
_KINDS = ("mp3", "json", "vtt", "degraded")
RENDERING_PREFIX = "first-release-"


@dataclass
class Moved:
    """What one start-up's move did."""

    renderings: int = 0
    episodes: int = 0
    removed: int = 0  # files of replaced or unknown articles, old parts and writes
    kept: int = 0  # files left in place: they did not check out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def playing_ms(data: bytes) -> int:
    """An MP3's playing time: its MP3 frames, after an ID3v2 tag (and before ID3v1)."""
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for b in data[6:10]:
            size = (size << 7) | (b & 0x7F)
        start = 10 + size + (10 if data[5] & 0x10 else 0)
    end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
    frames, per_frame, rate = mp3_frames(data[start:end])
    return frames * per_frame * 1000 // rate


def move_first_release(root: Path, registry: Registry, store: Store) -> Moved:
    """Move what the first release left under `root` (`<data dir>/audio`) into `store`.
    Safe to run from several processes at once (one moves, the others wait) and again
    after a crash (an article half moved is moved again: its keys take the same bytes)."""
    moved = Moved()
    articles = root / "articles"
    if not articles.is_dir():
        return moved
    with (root / ".moving").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for mp3 in sorted(articles.glob("*.mp3")):
            if _ID.fullmatch(mp3.stem):
                _move_article(root, mp3.stem, registry, store, moved)
        for cache in ("parts", "tmp"):
            if (root / cache).is_dir():
                moved.removed += sum(1 for p in (root / cache).rglob("*") if p.is_file())
                shutil.rmtree(root / cache, ignore_errors=True)
        for folder in (articles, root / "episodes"):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when nothing was left in it
        leftover = [p for p in root.iterdir() if p.name != ".moving"]
        if not leftover:
            (root / ".moving").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                root.rmdir()
    if moved.renderings or moved.removed or moved.kept:
        log.info(
            "first release's audio in %s: %d renderings and %d episodes moved into the blob"
            " store, %d files removed, %d left (see above)",
            root,
            moved.renderings,
            moved.episodes,
            moved.removed,
            moved.kept,
        )
    return moved


def _remove(paths: list[Path], moved: Moved) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            moved.removed += 1


def _move_article(
    root: Path, article_id: str, registry: Registry, store: Store, moved: Moved
) -> None:
    files = [root / "articles" / f"{article_id}.{kind}" for kind in _KINDS]
    episode = root / "episodes" / f"{article_id}.mp3"
    rec = registry.get(article_id)
    if rec is None or (
        rec.rendering is not None and not rec.rendering.startswith(RENDERING_PREFIX)
    ):
        _remove([*files, episode], moved)  # unknown, or read again since: nothing to keep
        return
    audio, timings_path = files[0].read_bytes(), files[1]
    try:
        timings = timings_path.read_bytes()
        doc = json.loads(timings)
        duration_ms = int(doc["duration_ms"])
        if not isinstance(doc.get("sentences"), list):
            raise ValueError("no sentences")
        playing_ms(audio)  # a run of MP3 frames
    except (OSError, ValueError, KeyError, TypeError, AudioError) as exc:
        log.warning("article %s: first-release audio not moved (%s); left", article_id, exc)
        moved.kept += 1
        return
    rendering = RENDERING_PREFIX + _digest(audio)[:12]
    store.put_rendering(article_id, rendering, audio=audio, timings=timings)
    if not _same(store, audio_key(article_id, rendering), audio) or not _same(
        store, timings_key(article_id, rendering), timings
    ):
        log.warning("article %s: first-release audio did not read back whole; left", article_id)
        moved.kept += 1
        return
    registry.finish(
        article_id,
        Finished(
            rendering=rendering,
            degraded=rec.degraded,
            duration_ms=duration_ms,
            size=len(audio),
            upgrade_at=rec.upgrade_at,
            upgrade_delay_s=rec.upgrade_delay_s,
        ),
    )
    moved.renderings += 1
    if rec.published and episode.is_file():
        data = episode.read_bytes()
        try:
            length_ms = playing_ms(data)
        except AudioError as exc:
            log.warning("article %s: first-release episode not moved (%s)", article_id, exc)
            moved.kept += 1
            _remove(files, moved)
            return
        store.put_episode(article_id, rendering, data)
        if not _same(store, episode_key(article_id, rendering), data):
            log.warning("article %s: first-release episode did not read back whole", article_id)
            moved.kept += 1
            _remove(files, moved)
            return
        registry.set_episode(article_id, rendering=rendering, size=len(data), duration_ms=length_ms)
        moved.episodes += 1
        _remove([episode], moved)
    elif episode.exists():
        _remove([episode], moved)  # not published any more: its episode is not served
    _remove(files, moved)


def _same(store: Store, key: str, data: bytes) -> bool:
    """Whether the store gives back `data` under `key`: its read checks the SHA-256 it
    recorded on the way in (a damaged blob reads as None), then the bytes are compared."""
    return store.read(key) == data
