"""The `langdu` command line: synth | normalize | voices."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from pydantic import ValidationError

from service import __version__
from service.config import Settings, get_settings
from service.core.pipeline import split_article
from service.core.voices import Voice, VoiceCatalog
from service.errors import DecodeError, InputError, LangduError, OptionError
from service.text.sentences import Sentence

if TYPE_CHECKING:
    from service.audio.timings import Timeline
    from service.engines import Engine

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every langdu entry point answers bad input.
        self.exit(EXIT_USAGE, f"langdu: error: {message} (see --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="langdu", description="朗读 — read Chinese news articles aloud.")
    parser.add_argument("--version", action="version", version=f"langdu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = sub.add_parser(
        "synth",
        help="read an article (.txt/.html file or - for stdin) aloud",
        description="Read an article aloud into an MP3, with optional sentence timings and "
        "captions. Bad input ends with one line and exit code 2, and leaves no file behind.",
    )
    synth.add_argument(
        "input",
        help="article file (.txt or .html), - for stdin, or an http(s) URL of the page",
    )
    synth.add_argument("-o", "--output", help="MP3 to write (default: INPUT with .mp3; - = stdout)")
    synth.add_argument("--voice", help="voice id (see `langdu voices`)")
    synth.add_argument("--rate", help="speaking rate, e.g. +20%% or -10%%")
    synth.add_argument("--pitch", help="pitch offset, e.g. +10Hz or -5%%")
    synth.add_argument("--timings", metavar="OUT.json", help="write sentence timings as JSON")
    synth.add_argument("--vtt", metavar="OUT.vtt", help="write WebVTT captions")
    synth.add_argument(
        "--format",
        choices=("auto", "text", "html"),
        default="auto",
        help="how to read INPUT (default: by extension, else sniffed)",
    )
    synth.add_argument(
        "--encoding",
        help="input text encoding (default: detected; UTF-8, the page's declaration, GB18030 ...)",
    )
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    sub.add_parser(
        "normalize",
        help="print the spoken form of stdin, line for line",
        description="Read UTF-8 text on stdin and print what the voice is given to say: "
        "numbers, dates, units and the lexicon spelled out, one output line per input line.",
    )
    serve = sub.add_parser(
        "serve",
        help="run the HTTP service (demo page at /)",
        description="Run the HTTP service: the API, the 智能朗读 player and its demo page at /, "
        "the podcast feed. Every other setting comes from LANGDU_* environment variables "
        "(see the README's Configuration).",
    )
    serve.add_argument("--host", help="interface to listen on (default: LANGDU_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: LANGDU_PORT, 8000)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the registry and audio are kept (default: LANGDU_DATA_DIR, ./data)",
    )
    worker = sub.add_parser(
        "worker",
        help="read the articles queued by the cluster's replicas (needs LANGDU_QUEUE_URL)",
        description="Take readings from the shared queue (LANGDU_QUEUE_URL), "
        "LANGDU_MAX_JOBS at a time, until SIGTERM; same settings as serve.",
    )
    worker.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (default: none)"
    )
    voices = sub.add_parser(
        "voices",
        help="list the voice catalog",
        description="List the voice catalog: each voice's id, language, gender, engine and "
        "description (* marks the default voice), with its licence and source where it has them.",
    )
    voices.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `langdu` console script; returns the exit code."""
    args = _build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"langdu: error: {_setting_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "synth":
            return _cmd_synth(args, settings)
        if args.command == "normalize":
            return _cmd_normalize()
        if args.command == "serve":
            return _cmd_serve(args, settings)
        if args.command == "worker":
            return _cmd_worker(args, settings)
        return _cmd_voices(args, settings)
    except (InputError, OptionError, LangduError) as exc:
        code = EXIT_USAGE if _is_bad_input(exc) else EXIT_FAILURE
        print(f"langdu: error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("langdu: interrupted", file=sys.stderr)
        return 130


def _setting_error(exc: ValidationError) -> str:
    """The first bad setting, in one line, by its environment variable's name."""
    first = exc.errors()[0]
    name = "LANGDU_" + "_".join(str(p) for p in first.get("loc", ())).upper()
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{name}: {message}"


def _is_bad_input(exc: LangduError) -> bool:
    from service.errors import UnknownVoiceError

    return isinstance(exc, InputError | OptionError | UnknownVoiceError)


# --- synth --------------------------------------------------------------------------------


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _output_path(args: argparse.Namespace) -> str:
    if args.output:
        return str(args.output)
    if args.input == "-":
        raise InputError("reading from stdin needs -o OUT.mp3 (or -o - for stdout)")
    if _is_url(args.input):
        # The page's own name, in the current directory: .../2019/0809/8512.html -> 8512.mp3
        from urllib.parse import urlsplit

        parts = urlsplit(args.input)
        stem = Path(parts.path.rstrip("/")).stem or (parts.hostname or "article")
        return stem + ".mp3"
    return str(Path(args.input).with_suffix(".mp3"))


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _fetch(url: str, settings: Settings) -> tuple[bytes, str | None]:
    """The page at `url` (the service's fetching rules) and its declared charset."""
    from service.services import page_fetcher

    async def fetch() -> tuple[bytes, str | None]:
        fetcher = page_fetcher(settings)
        try:
            page = await fetcher.fetch(url)
        finally:
            await fetcher.aclose()
        return page.body, page.charset

    return asyncio.run(fetch())


def load_sentences(
    data: bytes, *, fmt: str = "auto", name: str = "", encoding: str | None = None
) -> list[Sentence]:
    """Bytes of a page -> its speakable sentences.

    Raises:
        DecodeError: the bytes are not text in the expected encoding.
        EmptyArticleError: there is no text.
        NothingToSpeakError: there is text but nothing speakable.
    """
    from service.text.extract import decode, extract

    html: bool | None = {"html": True, "text": False}.get(fmt)
    if html is None and name:
        suffix = Path(name).suffix.lower()
        html = True if suffix in {".html", ".htm", ".xhtml"} else None
    return split_article(extract(decode(data, charset=encoding), html=html))


def _cmd_synth(args: argparse.Namespace, settings: Settings) -> int:
    catalog = VoiceCatalog.load(settings.voices_dir)
    voice = catalog.get(args.voice or settings.default_voice)
    engine = _engine(voice, settings)
    engine.check_options(voice.options(rate=args.rate, pitch=args.pitch))
    output = _output_path(args)
    if _is_url(args.input):
        data, charset = _fetch(args.input, settings)
        fmt = "html" if args.format == "auto" else args.format
        sentences = load_sentences(data, fmt=fmt, encoding=args.encoding or charset)
    else:
        sentences = load_sentences(
            _read_input(args.input),
            fmt=args.format,
            name="" if args.input == "-" else args.input,
            encoding=args.encoding,
        )
    progress = _Progress(len(sentences), enabled=not args.quiet and sys.stderr.isatty())
    with _atomic_output(output) as out:
        timeline = asyncio.run(
            _synthesize(sentences, voice, engine, args, settings, out, progress.update)
        )
        # Sidecars are written inside the same transaction: all files appear, or none.
        sidecars: list[tuple[str, str]] = []
        if args.timings:
            sidecars.append(
                (
                    args.timings,
                    json.dumps(timeline.to_json(voice=voice.id), ensure_ascii=False, indent=1),
                )
            )
        if args.vtt:
            from service.audio.timings import to_vtt

            sidecars.append((args.vtt, to_vtt(timeline.sentences)))
        for path, text in sidecars:
            _write_atomic(path, text.encode("utf-8"))
    progress.done(timeline.duration_ms)
    return 0


def _engine(voice: Voice, settings: Settings) -> Engine:
    """The engine a voice preset names, as the service builds it (nothing started yet)."""
    from service.engines import engine_factory

    return engine_factory(voice.engine)(settings)


async def _synthesize(
    sentences: list[Sentence],
    voice: Voice,
    engine: Engine,
    args: argparse.Namespace,
    settings: Settings,
    out: IO[bytes],
    on_progress: Callable[[int, int], None],
) -> Timeline:
    from service.audio.timings import Timeline
    from service.services import build_synthesizer, file_lexicon
    from service.text.chunks import Segmenter
    from service.text.lexicon import Lexicon
    from service.text.normalize import Normalizer

    segmenter = Segmenter()
    synth = build_synthesizer(
        engine, settings, normalizer=Normalizer(segmenter=segmenter), segmenter=segmenter
    )
    lexicon = Lexicon(file_lexicon(settings))
    timeline = Timeline()
    # Worker processes start and the grammars load while the first sentences are spoken.
    warming = asyncio.ensure_future(
        asyncio.gather(engine.warm_up(), synth.warm_up(segmenter=False))
    )
    try:
        options = voice.options(rate=args.rate, pitch=args.pitch)
        async for part in synth.render(sentences, options, lexicon):
            out.write(part.speech.data)
            if part.pause is not None:
                out.write(part.pause.data)
            timeline.add(part)
            on_progress(part.sentence.index + 1, timeline.duration_ms)
        await warming
    finally:
        synth.close()
        if not warming.done():
            warming.cancel()
        await asyncio.gather(warming, return_exceptions=True)
        await engine.aclose()
    return timeline


@contextlib.contextmanager
def _atomic_output(path: str) -> Iterator[IO[bytes]]:
    """Write to a temp file beside `path`, renamed into place only when everything succeeded."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"output {path} is a directory")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.",
            suffix=".part",
            dir=target.parent if str(target.parent) else ".",
        )
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_atomic(path: str, data: bytes) -> None:
    with _atomic_output(path) as out:
        out.write(data)


class _Progress:
    """A one-line progress report on stderr when it is a terminal."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._total = total
        self._enabled = enabled
        self._started = time.monotonic()

    def update(self, done: int, audio_ms: int) -> None:
        if self._enabled:
            m, s = divmod(audio_ms // 1000, 60)
            sys.stderr.write(f"\r朗读 {done}/{self._total} sentences, {m}:{s:02d} of audio")
            sys.stderr.flush()

    def done(self, audio_ms: int) -> None:
        if self._enabled:
            m, s = divmod(audio_ms // 1000, 60)
            took = time.monotonic() - self._started
            sys.stderr.write(
                f"\r朗读 {self._total} sentences, {m}:{s:02d} of audio in {took:.1f} s\n"
            )


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from service.http import server
    from service.http.admission import Identity
    from service.http.app import create_asgi

    if args.port is not None and not 0 <= args.port <= 65535:
        raise OptionError(f"port {args.port} is out of range")
    if args.data_dir is not None:
        if args.data_dir.exists() and not args.data_dir.is_dir():
            raise OptionError(f"--data-dir {args.data_dir} is not a directory")
        settings = settings.model_copy(update={"data_dir": args.data_dir})
    from service.services import build_engines, channel_artwork, file_lexicon
    from service.store.backends import backend_module

    # Fail fast, with one line, on what the lifespan would only report as a traceback.
    catalog = VoiceCatalog.load(settings.voices_dir)
    catalog.get(settings.default_voice)
    build_engines(catalog, settings, required=[settings.default_voice])
    file_lexicon(settings)
    channel_artwork(settings)
    backend_module(
        "service.store.registry", settings.database, what="database", example="sqlite:///"
    )
    backend_module("service.store.blobs", settings.storage, what="storage", example="file:///")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per page or feed fetched
    host, port = args.host or settings.host, settings.port if args.port is None else args.port
    print(f"langdu {__version__}: http://{host}:{port}/", file=sys.stderr)
    server.run(
        create_asgi(settings),
        host=host,
        port=port,
        access_log=settings.access_log,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=settings.max_connections,
        max_per_client=settings.max_connections_per_client,
        identity=Identity.build(settings.api_keys, settings.trusted_proxies),
    )
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import logging

    from service.services import run_worker

    if not settings.queue_url:
        raise OptionError("langdu worker needs a queue: set LANGDU_QUEUE_URL=redis://host:6379/0")
    port = args.metrics_port
    if port is not None and not 0 < port <= 65535:
        raise OptionError(f"metrics port {port} is out of range")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per page or feed fetched
    asyncio.run(run_worker(settings, metrics_port=port))
    return 0


# --- normalize, voices --------------------------------------------------------------------


def _cmd_normalize() -> int:
    from service.text.normalize import Normalizer

    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"stdin is not valid UTF-8 (bad byte at offset {exc.start})") from exc
    normalizer = Normalizer()
    out = sys.stdout
    # One output line per input line, always: other tools pair them up by position.
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        spoken = normalizer.normalize(line.rstrip("\r"))
        out.write(spoken.replace("\n", " ") + "\n")
    out.flush()
    return 0


def _cmd_voices(args: argparse.Namespace, settings: Settings) -> int:
    catalog = VoiceCatalog.load(settings.voices_dir)
    if args.json:
        print(json.dumps([v.public() for v in catalog], ensure_ascii=False, indent=1))
        return 0
    width = max(len(v.id) for v in catalog)
    for v in catalog:
        mark = "*" if v.id == settings.default_voice else " "
        print(
            f"{mark} {v.id:<{width}}  {v.language:<6} {v.gender:<7} {v.engine:<7} {v.description}"
        )
        if v.licence:
            print(f"  {'':<{width}}  licence: {v.licence}")
        if v.source:
            print(f"  {'':<{width}}  source: {v.source}")
    return 0
