"""The request and response bodies of the HTTP API (pydantic models: the OpenAPI document
is made from them), and how a core view becomes an `ArticleOut`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.audio.formats import Format
from service.core.library import ArticleView
from service.http.hygiene import check_http_url, clean_text
from service.store.registry import SourceRecord
from service.text.lexicon import homophone_spelling, is_pinyin

_RATE = r"^[+-]?\d{1,3}%$"
_PITCH = r"^[+-]?\d{1,3}(Hz|%)$"
# A player's name for itself, so that a stream cut by a voice change can be resumed.
LISTENER = r"^[A-Za-z0-9_-]{8,64}$"
Listener = Annotated[str | None, Query(pattern=LISTENER)]
# Letters, digits, _ and - (Chinese too: 时政), spelt so that JSON Schema's (ECMA-262)
# regular expressions mean what Python's do.
CATEGORY = r"^[A-Za-z0-9_\u3400-\u9fff-]{1,64}$"


def _text_or_html(schema: dict[str, Any]) -> None:
    """In the schema as in the validator: exactly one of `text` and `html`, a string, or
    neither and a `url` to fetch the page from."""
    props = schema["properties"]
    for name in ("text", "html"):
        props[name] = {"type": "string", "title": props[name].get("title", name.title())}
    props["url"] = {
        "type": "string",
        "maxLength": 2048,
        "title": "Url",
        "description": "the page's URL; alone (no text or html), the page is fetched from it",
    }
    schema["oneOf"] = [
        {"required": ["text"]},
        {"required": ["html"]},
        {"required": ["url"], "not": {"anyOf": [{"required": ["text"]}, {"required": ["html"]}]}},
    ]


class ArticleIn(BaseModel):
    """An article to read: plain `text`, the page's `html`, or only its `url` (the page is
    fetched), plus how to read it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_text_or_html)
    title: str | None = Field(None, max_length=500)
    text: str | None = None
    html: str | None = None
    url: str | None = Field(None, max_length=2048)
    voice: str | None = Field(None, max_length=100)
    rate: str | None = Field(None, pattern=_RATE)
    pitch: str | None = Field(None, pattern=_PITCH)
    published_at: datetime | None = None
    publish: bool = False
    category: str | None = Field(None, pattern=CATEGORY)

    @field_validator("title")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        # (text and html are cleaned by extract(), in the parsing worker)
        return None if value is None else clean_text(value)

    @field_validator("published_at", mode="before")
    @classmethod
    def _iso_instant(cls, value: object) -> object:
        # As the schema says: an RFC 3339 string (pydantic alone would take a number too).
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string")
        return value

    @field_validator("published_at")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        # Stored and read back in UTC: year 1 at +11:49 is year 0 there, which no clock holds.
        if value is None:
            return value
        try:
            instant = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        except OverflowError:
            raise ValueError("is outside years 1 to 9999 in UTC") from None
        # The feed is newest first: an article dated in year 9999 would stay on top for good.
        if instant > datetime.now(UTC) + timedelta(days=1):
            raise ValueError("is more than a day in the future")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="before")
    @classmethod
    def _no_null_source(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("text", "html"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name}, when given, is a string")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ArticleIn:
        if self.text is not None and self.html is not None:
            raise ValueError("give exactly one of text or html (or a url alone)")
        if self.text is None and self.html is None and self.url is None:
            raise ValueError("give text, html, or the url of the page to fetch")
        return self


class ArticleOut(BaseModel):
    """An article's identity, state and where to fetch its files.

    The URLs name the stored rendering when there is one (immutable), else the stable
    URLs that stream the reading as it is made.
    """

    id: str
    status: str
    title: str | None
    url: str | None = None  # the page's (canonical) URL, when it has one
    voice: str
    degraded: str | None = None  # the fallback voice reading it while the asked-for one fails
    rate: str
    sentences: int
    duration_ms: int | None
    rendering: str | None  # the stored audio's render version (None: nothing stored yet)
    render_version: str  # what the audio should have now; differs while a re-render is due
    resume_at: int | None = None  # for ?listener=: the sentence where a cut stream resumes
    audio_url: str
    timings_url: str
    captions_url: str


def article_out(request: Request, view: ArticleView, resume_at: int | None = None) -> ArticleOut:
    """The API's view of an article."""
    rec = view.record

    def url(name: str) -> str:
        if view.rendering is not None:
            return str(
                request.url_for(f"rendering_{name}", article_id=rec.id, rendering=view.rendering)
            )
        return str(request.url_for(f"article_{name}", article_id=rec.id))

    return ArticleOut(
        id=rec.id,
        status=view.status.value,
        title=rec.title,
        url=rec.url,
        voice=rec.voice,
        degraded=rec.degraded,
        rate=rec.rate,
        sentences=len(rec.sentences),
        duration_ms=rec.duration_ms if view.rendering is not None else None,
        rendering=view.rendering,
        render_version=view.render_version,
        audio_url=url("audio"),
        timings_url=url("timings"),
        captions_url=url("captions"),
        resume_at=resume_at,
    )


class SourceIn(BaseModel):
    """A feed to follow."""

    model_config = ConfigDict(extra="forbid")
    feed_url: str = Field(..., max_length=2048)
    publish: bool = False  # publish each item to the podcast feed
    voice: str | None = Field(None, max_length=100)
    category: str | None = Field(None, pattern=CATEGORY)

    @field_validator("feed_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_http_url(value)


class SourceOut(BaseModel):
    """A source and how its polls go."""

    id: str
    feed_url: str
    publish: bool
    voice: str | None
    category: str | None
    created_at: datetime
    last_poll_at: datetime | None  # the last poll that ended, well or not
    next_poll_at: datetime
    last_error: str | None  # why the last poll (or an item in it) failed; None: it went well
    failures: int  # polls failed in a row: the next waits longer
    items: int  # items taken from the feed so far


class SourceList(BaseModel):
    sources: list[SourceOut]


def source_out(source: SourceRecord) -> SourceOut:
    return SourceOut(
        id=source.id,
        feed_url=source.feed_url,
        publish=source.publish,
        voice=source.voice,
        category=source.category,
        created_at=source.created_at,
        last_poll_at=source.polled_at,
        next_poll_at=source.next_poll_at,
        last_error=source.last_error,
        failures=source.failures,
        items=source.items,
    )


class LexiconIn(BaseModel):
    """How a written form is said: Chinese text, or pinyin with tone numbers (mao4 die2);
    for every article, or only for one source's (`source`, its id)."""

    model_config = ConfigDict(extra="forbid")
    spoken: str = Field(..., min_length=1, max_length=200)
    source: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")


class LexiconEntryOut(BaseModel):
    """A pronunciation. `layer`: `file` (the operator's LANGDU_LEXICON_FILE, read at start),
    `all` (every article) or `source` (that source's articles). `homophones`: for pinyin,
    what engines that take no pinyin are given (the offline neural voices read the pinyin)."""

    written: str
    spoken: str
    source: str | None
    layer: Literal["file", "all", "source"]
    homophones: str | None
    updated_at: datetime | None


class LexiconList(BaseModel):
    entries: list[LexiconEntryOut]


def lexicon_out(
    written: str, spoken: str, *, source: str | None, file: bool = False, at: datetime | None
) -> LexiconEntryOut:
    return LexiconEntryOut(
        written=written,
        spoken=spoken,
        source=source,
        layer="file" if file else "source" if source else "all",
        homophones=homophone_spelling(spoken) if is_pinyin(spoken) else None,
        updated_at=at,
    )


class PublishIn(BaseModel):
    """Optional category for the per-category feed."""

    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(None, pattern=CATEGORY)


class SpeechIn(BaseModel):
    """OpenAI's request body; `model` is accepted whatever it names."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., max_length=100)
    input: str = Field(..., min_length=1, max_length=4096)  # OpenAI's own limit
    voice: str = Field(..., max_length=100)
    response_format: Format = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)  # OpenAI's range
    # OpenAI's server-sent events are for its gpt-4o models only; raw audio is the default.
    stream_format: Literal["audio"] = "audio"


# --- listening analytics ---------------------------------------------------------------

EVENTS_MAX_BYTES = 64 * 1024  # a batch's body; more is 413
EVENTS_MAX = 500  # events in one batch


class EventIn(BaseModel):
    """One thing a listener did. `t`: when (ms since the epoch; within the last day and not
    ahead of the service's clock by more than 5 minutes). `position_ms`: where in the audio.
    `progress` reports what was heard since the last report: `listened_ms` of audio at
    `speed`, and `heard`, the indexes of the sentences heard (as in the timings)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["play", "pause", "seek", "speed", "progress", "ended", "download"]
    t: int = Field(..., ge=0, le=10**14)
    position_ms: int | None = Field(None, ge=0, le=86_400_000)
    listened_ms: int | None = Field(None, ge=0, le=3_600_000)
    speed: float | None = Field(None, ge=0.25, le=4.0)
    heard: list[Annotated[int, Field(ge=0, le=100_000)]] = Field(
        default_factory=list, max_length=5000
    )
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    degraded: bool | None = None

    @model_validator(mode="after")
    def _progress_only(self) -> EventIn:
        if self.type != "progress" and (self.heard or self.listened_ms):
            raise ValueError("heard and listened_ms belong to progress events")
        return self


class EventsIn(BaseModel):
    """A batch of one session's events for one article. `session`: a random id the
    player makes for one page view (nothing else identifies a listener). `client`:
    `player` (the 智能朗读 widget), `app` (an accessibility client) or `podcast` (a feed
    download: counted as a download, never as a play)."""

    model_config = ConfigDict(extra="forbid")
    article: str = Field(..., pattern=r"^[0-9a-f]{32}$")
    session: str = Field(..., pattern=r"^[A-Za-z0-9_-]{16,64}$")
    client: Literal["player", "app", "podcast"] = "player"
    events: list[EventIn] = Field(..., min_length=1, max_length=EVENTS_MAX)


class EventsAccepted(BaseModel):
    accepted: int


class FiguresOut(BaseModel):
    """Listening figures. `plays`: sessions that played; `sessions`: page views (and
    downloads) that reported anything; `completion`: sessions that reached 25, 50, 75 and
    100 % of the audio; `speeds`: ms listened at each speed; `voices`: plays by the voice
    heard; `degraded_plays`: plays of a fallback voice's reading."""

    plays: int
    sessions: int
    downloads: int
    listened_ms: int
    completion: dict[str, int]
    speeds: dict[str, int]
    voices: dict[str, int]
    degraded_plays: int


class DayOut(BaseModel):
    day: str
    plays: int
    sessions: int
    listened_ms: int


class ArticleStatsOut(FiguresOut):
    """One article's listening from `from` to `to` (UTC days, both included).
    `sentence_reach`: per sentence (as in the timings), the share of the sessions that
    played which heard it. `voice`: the voice asked for; `degraded`: set when the stored
    reading is a fallback voice's."""

    model_config = ConfigDict(populate_by_name=True)
    id: str
    title: str | None
    from_: str = Field(..., alias="from")
    to: str
    voice: str
    degraded: str | None
    sentence_reach: list[float]
    days: list[DayOut]


class ArticleLineOut(FiguresOut):
    id: str
    title: str | None


class StatsOut(FiguresOut):
    """Every article's listening from `from` to `to`: totals, each day, and the most
    played articles (at most `limit`)."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(..., alias="from")
    to: str
    days: list[DayOut]
    articles: list[ArticleLineOut]
