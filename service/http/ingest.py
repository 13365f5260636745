"""Listening events taken ahead of the framework: `POST /v1/events` is the busiest write a
news site sends (every player, every half minute), so its bodies go as they are to the
events worker (service.core.ledger), which parses, checks and stores them, and are
answered here: the event loop that serves audio spends almost nothing on them.

The framework's route (routes/analytics.py) documents the endpoint and answers the same
batches the same way where this front is not in place (an app without its lifespan, or a
content type the route refuses in its own words).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.ledger import Batch, Ledger
from service.core.library import Library
from service.errors import LangduError
from service.http.hygiene import BadJSON, check_json, read_body
from service.http.problems import invalid, langdu_problem, problem
from service.http.schemas import EventsIn
from service.store.registry import ListeningEvent, utc_now

EVENTS_PATH = "/v1/events"
_JSON_TYPES = frozenset({b"application/json", b"text/plain"})  # sendBeacon sends text/plain


def batch_of(body: EventsIn) -> Batch:
    """A validated post as the events it holds."""
    return Batch(
        article_id=body.article,
        session=body.session,
        client=body.client,
        events=tuple(
            ListeningEvent(
                article_id=body.article,
                session=body.session,
                kind=e.type,
                at=datetime.fromtimestamp(e.t / 1000, UTC),
                client=body.client,
                position_ms=e.position_ms,
                listened_ms=e.listened_ms,
                speed=e.speed,
                heard=tuple(sorted(set(e.heard))),
                voice=e.voice,
                degraded=e.degraded,
            )
            for e in body.events
        ),
    )


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a batch's body was refused: 400 (not strict JSON) or 422 (fields)."""

    status: int
    detail: str
    errors: tuple[dict[str, Any], ...] = ()


def take(ledger: Ledger, body: bytes, now: datetime) -> dict[str, int] | Refused:
    """On the events worker: read a posted body and keep its events; how many of each
    kind were kept, or why the body was refused.

    Raises:
        NotFoundError: no such article.
        InputError: events the article or the clock refuses (see Ledger.store).
    """
    read = read_batch(body)
    if isinstance(read, Refused):
        return read
    return ledger.store(read, now)


def read_batch(body: bytes) -> Batch | Refused:
    """The body checked as strict JSON and validated, as a Batch."""
    try:
        value = check_json(body)
    except BadJSON as exc:
        return Refused(400, str(exc))
    try:
        events = EventsIn.model_validate(value)
    except ValidationError as exc:
        errors = tuple(
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        )
        return Refused(422, "", errors)
    return batch_of(events)


class EventsFront:
    """ASGI, inside admission (a flood is refused before its body is read) and ahead of
    the framework: answer `POST /v1/events` with JSON or text/plain bodies; pass
    everything else on to `app`.

    `limit` wraps the answering app (the body limit, the request metrics), so the front's
    answers are limited and counted as the framework's are.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        library: Callable[[], Library | None],
        limit: Callable[[ASGIApp], ASGIApp],
        cors_origins: Sequence[str],
    ) -> None:
        self.app = app
        self._library = library
        self._answer = limit(self._ingest)
        self._any_origin = "*" in cors_origins
        self._origins = frozenset(o.encode() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != EVENTS_PATH
            or self._library() is None
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in _JSON_TYPES and not content_type.endswith(b"+json"):
            await self.app(scope, receive, send)
            return
        scope["langdu.route"] = EVENTS_PATH
        origin = headers.get(b"origin", b"")
        if origin and (self._any_origin or origin in self._origins):
            allow = b"*" if self._any_origin else origin

            async def cors(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message)
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"access-control-allow-origin", allow),
                        *([] if self._any_origin else [(b"vary", b"Origin")]),
                    ]
                await send(message)

            await self._answer(scope, receive, cors)
        else:
            await self._answer(scope, receive, send)

    async def _ingest(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if body is None:
            return  # the client left (or the body limit answered it already)
        library = self._library()
        if library is None:  # shutting down between the check and now
            await problem(503, "Unavailable", "the service is stopping")(scope, receive, send)
            return
        try:
            kept = await library.analytics.worker.run(take, body, utc_now())
        except LangduError as exc:
            await langdu_problem(exc)(scope, receive, send)
            return
        if isinstance(kept, Refused):
            if kept.status == 400:
                response = problem(400, "Malformed JSON", kept.detail)
            else:
                response = invalid(list(kept.errors))
            await response(scope, receive, send)
            return
        accepted = library.analytics.counted(kept)
        answer = json.dumps({"accepted": accepted}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})
