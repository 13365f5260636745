"""Assembling langdu from settings: engines, synthesizers, registry, blobs, the library.

`open_services` builds the complete container the lifespan owns (nothing in it starts as
None); `build_synthesizer` is the one way the service and the CLI make a synthesizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

from service.audio.episode import load_sting
from service.audio.mp3 import AudioFormat
from service.config import Settings
from service.core.articles import Limits, build_record
from service.core.artwork import Artwork, generated
from service.core.artwork import load as load_artwork
from service.core.cluster import SharedQueue, Worker
from service.core.episodes import Episodes, EpisodeStyle
from service.core.hotaudio import HotAudio
from service.core.legacy import move_first_release
from service.core.library import Library
from service.core.pipeline import PartCache, Pauses, Synthesizer, init_text_worker
from service.core.voices import VoiceCatalog
from service.engines import Engine, EngineFactory, engine_factory
from service.errors import (
    EngineUnavailableError,
    LangduError,
    OptionError,
    VoiceCatalogError,
)
from service.runtime.fetch import Fetcher
from service.runtime.fetch import networks as fetch_networks
from service.runtime.metrics import Metrics
from service.runtime.parsing import ParsePool
from service.runtime.respawn import RespawningPool
from service.store import Store, queue
from service.store.blobs import open_store
from service.store.queue.redis import RedisWork
from service.store.registry import Registry, connect
from service.text.chunks import Segmenter
from service.text.normalize import Normalizer, load_lexicon

log = logging.getLogger("langdu")


def file_lexicon(settings: Settings) -> dict[str, str]:
    """The operator's lexicon file (`LANGDU_LEXICON_FILE`), the base of the lexicon.

    Raises:
        ConfigError: the lexicon file is unusable.
    """
    return load_lexicon(settings.lexicon_file) if settings.lexicon_file else {}


def build_engines(
    catalog: VoiceCatalog,
    settings: Settings,
    extra: Mapping[str, EngineFactory] | None = None,
    *,
    required: Iterable[str] = (),
) -> tuple[VoiceCatalog, dict[str, Engine]]:
    """One engine object per engine the catalog names (nothing is started yet); every
    preset's options are checked by its engine. The voices of an optional engine that is
    not installed here are left out of the catalog returned (with a warning), unless a
    voice in `required` (the default and fallback voices) is one of them.

    Raises:
        VoiceCatalogError: a preset names an unknown engine, or options its engine refuses,
            or a required voice's engine is not installed.
    """
    engines: dict[str, Engine] = {}
    unavailable: dict[str, EngineUnavailableError] = {}
    for voice in catalog:
        if voice.engine in unavailable:
            continue
        if voice.engine not in engines:
            try:
                factory = engine_factory(voice.engine, extra)
            except VoiceCatalogError as exc:
                raise VoiceCatalogError(f"voice {voice.id!r}: {exc}") from None
            try:
                engines[voice.engine] = factory(settings)
            except EngineUnavailableError as exc:
                unavailable[voice.engine] = exc
                continue
        try:
            engines[voice.engine].check_options(voice.options())
        except OptionError as exc:
            raise VoiceCatalogError(f"voice {voice.id!r}: {exc}") from exc
    for voice_id in required:
        engine = catalog.get(voice_id).engine
        if engine in unavailable:
            raise EngineUnavailableError(f"voice {voice_id!r}: {unavailable[engine]}")
    for engine, reason in unavailable.items():
        log.warning("voices of the %s engine left out: %s", engine, reason)
        catalog = catalog.without(engine)
    return catalog, engines


def build_synthesizer(
    engine: Engine,
    settings: Settings,
    *,
    normalizer: Normalizer,
    segmenter: Segmenter,
    cache: PartCache | None = None,
    on_sentence: Callable[[bool], None] | None = None,
    text_process: Executor | None = None,
) -> Synthesizer:
    """The synthesizer for one engine, shaped by the settings (service and CLI alike)."""
    return Synthesizer(
        engine,
        normalizer=normalizer,
        segmenter=segmenter,
        audio_format=AudioFormat(
            sample_rate=engine.sample_rate, bitrate_kbps=settings.bitrate_kbps
        ),
        pauses=Pauses(settings.sentence_pause_ms, settings.paragraph_pause_ms),
        # Enough sentences in flight to keep every worker or connection busy.
        lookahead=4 * max(settings.workers, settings.edge_concurrency),
        audio_threads=settings.workers,
        cache=cache,
        on_sentence=on_sentence,
        text_process=text_process,
    )


def episode_style(settings: Settings) -> EpisodeStyle:
    """Episode tags, cover and stings from the settings (files are read once, at start).

    Raises:
        AudioError / OSError: a configured sting or cover cannot be read.
    """
    cover = settings.feed_cover_file.read_bytes() if settings.feed_cover_file else None
    return EpisodeStyle(
        artist=settings.feed_author,
        album=settings.feed_title,
        cover=cover,
        intro=load_sting(str(settings.feed_intro)) if settings.feed_intro else None,
        outro=load_sting(str(settings.feed_outro)) if settings.feed_outro else None,
        bitrate_kbps=settings.episode_bitrate_kbps,
    )


def channel_artwork(settings: Settings) -> Artwork:
    """The podcast's artwork: the operator's file (checked as directories check it), else
    langdu's own.

    Raises:
        OptionError: LANGDU_FEED_IMAGE_FILE cannot be read or is not square 1400-3000 px.
    """
    if settings.feed_image_file is None:
        return generated()
    try:
        return load_artwork(settings.feed_image_file)
    except ValueError as exc:
        raise OptionError(f"LANGDU_FEED_IMAGE_FILE: {exc}") from None


def page_fetcher(settings: Settings) -> Fetcher:
    """The fetcher of pages by URL, under the settings' allow list and limits."""
    return Fetcher(
        allow=fetch_networks(settings.fetch_allow),
        timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.fetch_max_bytes,
        max_redirects=settings.fetch_max_redirects,
    )


@dataclass(frozen=True, slots=True)
class Services:
    """Everything long-lived a request may use; built complete and closed by the lifespan."""

    settings: Settings
    catalog: VoiceCatalog
    registry: Registry
    store: Store
    hot_audio: HotAudio
    metrics: Metrics
    engines: Mapping[str, Engine]
    synthesizers: Mapping[str, Synthesizer]
    library: Library
    text_process: Executor | None = None  # the text front-end's worker (service.text.frontend)
    work: RedisWork | None = None  # the cluster's shared queue (LANGDU_QUEUE_URL)
    artwork: Artwork = field(default_factory=generated)  # the podcast's channel image
    fetcher: Fetcher | None = None  # pages by URL (service.runtime.fetch)


async def open_services(
    settings: Settings,
    metrics: Metrics,
    extra_engines: Mapping[str, EngineFactory] | None = None,
    *,
    reads: bool = True,
    sources: bool = True,
) -> Services:
    """Build everything, warm the default voice's engine, and reconcile unfinished work.

    `reads=False` is a replica of the cluster (a queue URL is set): it admits, queues and
    serves, and `langdu worker`s read, so its engines and text workers are never started.
    `sources=False` (a worker) leaves the feeds' polling to the processes that serve.

    Raises:
        LangduError: the settings, the voice catalog or a backend is unusable.
    """
    catalog = VoiceCatalog.load(settings.voices_dir)
    required = [
        settings.default_voice,
        *settings.fallback_voices,
    ]
    catalog, engines = build_engines(catalog, settings, extra_engines, required=required)
    default_voice = catalog.get(settings.default_voice)
    for voice_id in settings.fallback_voices:
        catalog.get(voice_id)
    registry = await asyncio.to_thread(connect, settings.database)
    work = None
    try:
        if settings.queue_url:
            work = queue.connect(settings.queue_url, prefix=settings.queue_prefix)
            await work.ping()
        blobs = await asyncio.to_thread(open_store, settings.storage)
        store = await asyncio.to_thread(
            Store,
            blobs,
            registry,
            max_bytes=settings.cache_max_bytes,
        )
        lexicon = await asyncio.to_thread(file_lexicon, settings)
        segmenter = Segmenter()
        normalizer = Normalizer(segmenter=segmenter)
        # Pure functions of their input: a call whose worker died is run again.
        text_process = (
            RespawningPool(
                settings.workers,
                initializer=init_text_worker,
                initargs=(os.getpid(), settings.preload_jieba),
                name="langdu-text",
            )
            if settings.text_process and reads
            else None
        )
        synthesizers = {
            name: build_synthesizer(
                engine,
                settings,
                normalizer=normalizer,
                segmenter=segmenter,
                cache=store,
                on_sentence=metrics.sentence_lookup,
                text_process=text_process,
            )
            for name, engine in engines.items()
        }
        hot = HotAudio(store, max_bytes=settings.memory_cache_bytes)
        episodes = Episodes(
            store=store,
            registry=registry,
            style=await asyncio.to_thread(episode_style, settings),
            executor=text_process,
        )
        shared = (
            None
            if work is None
            else SharedQueue(work, max_active=settings.max_jobs, max_queue=settings.max_queue)
        )
        if shared is not None and not reads:
            episodes.delegate = shared.make_episode  # a replica: the workers make them
        # Parsing workers load the extractor as they start, not on the first article.
        parse = ParsePool(settings.parse_workers, preload=(build_record.__module__,))
        fetcher = page_fetcher(settings) if settings.fetch_pages else None
        library = Library(
            registry=registry,
            store=store,
            hot=hot,
            catalog=catalog,
            default_voice=default_voice.id,
            engines=engines,
            synthesizers=synthesizers,
            episodes=episodes,
            metrics=metrics,
            fallback_voices=settings.fallback_voices,
            upgrade_after_s=settings.upgrade_after_s,
            max_active=settings.max_jobs,
            max_queue=settings.max_queue,
            limits=Limits(
                max_chars=settings.max_article_chars, max_digits=settings.max_number_digits
            ),
            parse=parse,
            scrub_every_s=settings.scrub_every_s,
            shared=shared,
            fetcher=fetcher,
            source_poll_s=settings.source_poll_s,
            source_max_items=settings.source_max_items,
            lexicon=lexicon,
            lexicon_file=settings.lexicon_file,
            max_conversions=settings.max_conversions,
            events_keep_days=settings.events_keep_days,
            # Listening events are taken in a worker process of their own when parsing is
            # (it opens the registry again: not for a database only this process can see).
            events_database=(
                settings.database
                if settings.parse_workers > 0 and ":memory:" not in settings.database
                else None
            ),
        )
        await parse.warm_up()
        if reads:
            await _warm_up(settings, catalog, synthesizers, engines)
        # Other engines start their workers or connections on first use.
    except BaseException:
        registry.close()
        if work is not None:
            await work.aclose()
        raise
    # Audio the first release kept under paths is moved into the blob store before the
    # first request (its episodes are served from the first second) and before reconcile
    # (which would read those articles again).
    try:
        await asyncio.to_thread(move_first_release, settings.data_dir / "audio", registry, store)
    except (OSError, LangduError) as exc:  # tried again at the next start; nothing is lost
        log.warning("first release's audio not moved yet: %s", exc)
    services = Services(
        settings=settings,
        catalog=catalog,
        registry=registry,
        store=store,
        hot_audio=hot,
        metrics=metrics,
        engines=engines,
        synthesizers=synthesizers,
        library=library,
        text_process=text_process,
        work=work,
        artwork=channel_artwork(settings),
        fetcher=fetcher,
    )
    await library.start(sources=sources)
    return services


async def _warm_up(
    settings: Settings,
    catalog: VoiceCatalog,
    synthesizers: Mapping[str, Synthesizer],
    engines: Mapping[str, Engine],
) -> None:
    """Grammars, the default engine and (unless told not to) jieba load now, not on the
    first request (without the preload, jieba loads when an article may need it); the
    fallback voices' engines too, so that they are ready when needed."""
    default_engine = catalog.get(settings.default_voice).engine
    synth = synthesizers[default_engine]
    await asyncio.gather(
        synth.warm_up(segmenter=settings.preload_jieba, text_workers=settings.workers),
        synth.engine.warm_up(),
    )
    ready = {default_engine}
    for voice_id in settings.fallback_voices:
        fallback = catalog.get(voice_id).engine
        if fallback not in ready:
            ready.add(fallback)
            await engines[fallback].warm_up()


async def close_services(services: Services) -> None:
    """Stop the jobs, the engines and their threads; close the registry."""
    await services.library.aclose()
    for synth in services.synthesizers.values():
        synth.close()
    if services.text_process is not None:
        services.text_process.shutdown(wait=False, cancel_futures=True)
    await asyncio.gather(*(e.aclose() for e in services.engines.values()), return_exceptions=True)
    with contextlib.suppress(Exception):
        services.registry.close()
    if services.work is not None:
        await services.work.aclose()
    if services.fetcher is not None:
        await services.fetcher.aclose()


async def run_worker(
    settings: Settings,
    extra_engines: Mapping[str, EngineFactory] | None = None,
    *,
    metrics_port: int | None = None,
) -> None:
    """`langdu worker`: read the cluster's queued articles until SIGTERM or SIGINT (a
    reading in hand goes back to the queue for another worker); its Prometheus metrics on
    `metrics_port` (on LANGDU_HOST) when given.

    Raises:
        OptionError: no queue URL is set.
        LangduError: the settings, the voice catalog or a backend is unusable.
    """
    if not settings.queue_url:
        raise OptionError("langdu worker needs a queue: set LANGDU_QUEUE_URL=redis://host:6379/0")
    metrics = Metrics()
    services = await open_services(settings, metrics, extra_engines, sources=False)
    assert services.work is not None
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host, registry=metrics.registry)
    rendering = services.library.rendering
    worker = Worker(
        services.work,
        rendering.run,
        slots=settings.max_jobs,
        episode=services.library.make_episode,
        outdated=lambda: rendering.outdated,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    working = asyncio.create_task(worker.run(), name="langdu-worker")
    stopping = asyncio.create_task(stop.wait())
    log.info("langdu worker: %d slots on %s", settings.max_jobs, settings.queue_prefix)
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, stopping):
            task.cancel()
        await asyncio.gather(working, stopping, return_exceptions=True)
        await close_services(services)
