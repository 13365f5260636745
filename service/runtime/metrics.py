"""Prometheus metrics, in a registry owned by one app (tests run several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The counters /metrics exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "langdu_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.cache = Counter(
            "langdu_cache", "Cache lookups", ["kind", "result"], registry=self.registry
        )
        self.synthesis_seconds = Histogram(
            "langdu_synthesis_seconds",
            "Wall time of one article's synthesis",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 60, 120, 300),
            registry=self.registry,
        )
        self.syntheses = Counter(
            "langdu_syntheses", "Article syntheses by outcome", ["outcome"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "langdu_queue_depth", "Articles waiting for synthesis", registry=self.registry
        )
        self.engine_errors = Counter(
            "langdu_engine_errors", "Failed syntheses", ["engine"], registry=self.registry
        )
        self.degraded = Counter(
            "langdu_degraded",
            "Articles read by the fallback voice",
            ["engine"],
            registry=self.registry,
        )
        self.engine_retries = Gauge(
            "langdu_engine_retries",
            "Chunks asked again, by engine",
            ["engine"],
            registry=self.registry,
        )
        self.damaged = Counter(
            "langdu_blobs_damaged",
            "Stored objects that failed their length/SHA-256 check (deleted, never served)",
            ["kind"],
            registry=self.registry,
        )
        # Listening analytics: no per-article labels (an article id is unbounded).
        self.listening_events = Counter(
            "langdu_listening_events",
            "Listening events taken from players, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.listening_plays = Counter(
            "langdu_listening_plays",
            "Sessions that started playing (counted when rolled up)",
            registry=self.registry,
        )
        self.listening_refused = Counter(
            "langdu_listening_batches_refused",
            "Event batches refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self._audio_children: dict[tuple[str, str, int], tuple[Counter, Counter]] = {}

    def engine_failed(self, engine: str) -> None:
        """An engine could not finish an article (it was read by the fallback voice)."""
        self.engine_errors.labels(engine).inc()
        self.degraded.labels(engine).inc()

    def sentence_lookup(self, hit: bool) -> None:
        """Count one per-sentence cache lookup."""
        self.cache.labels("sentence", "hit" if hit else "miss").inc()

    def audio_served(self, route: str, method: str, status: int) -> None:
        """Count a finished-audio request answered from memory (a cache hit)."""
        key = (route, method, status)
        children = self._audio_children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.cache.labels("audio", "hit"),
            )
            self._audio_children[key] = children
        for child in children:
            child.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
