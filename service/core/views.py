"""What the core answers with: stored or live audio, an article's view, timings, episodes,
speech. Plain values: the HTTP layer turns them into responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from service.core.cluster import RemoteReading
from service.core.jobs import Job
from service.store.registry import ArticleRecord, Status


@dataclass(frozen=True, slots=True)
class Stored:
    """A complete rendering to answer with."""

    article_id: str
    rendering: str
    key: str
    etag: str
    degraded: bool


@dataclass(frozen=True, slots=True)
class Live:
    """A reading under way (here, or on a worker): listeners stream it as it is made."""

    job: Job | RemoteReading


@dataclass(frozen=True, slots=True)
class ArticleView:
    """An article as the outside sees it: the record, its status now, and the rendering
    its versioned URLs name (None while nothing is stored)."""

    record: ArticleRecord
    status: Status
    rendering: str | None
    render_version: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Sentence timings: of a stored rendering, or of a reading so far (`live`).

    `raw` is the JSON document as stored, served as it is; `document` parses it.
    """

    raw: bytes
    live: bool
    rendering: str | None

    def document(self) -> dict[str, Any]:
        """The timings as a dict (parsed on demand: most requests want the bytes)."""
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


@dataclass(frozen=True, slots=True)
class Episode:
    """A published article's podcast episode."""

    data: bytes
    etag: str
    final: bool  # made from the current rendering in the asked-for voice


@dataclass(frozen=True, slots=True)
class Speech:
    """Spoken text in a response format: the whole file when it was stored as it is asked
    for, else a stream made as the reading (and its conversion) goes."""

    media_type: str
    body: bytes | AsyncIterator[bytes]
