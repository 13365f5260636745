"""The synthesizer: article sentences in, ordered MP3 parts out, with bounded parallelism."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from service.audio.mp3 import AudioFormat, Mp3Part, render_speech, silence_part
from service.audio.mp3 import warm_up as audio_warm_up
from service.audio.timings import SentenceAudio
from service.engines.base import Clip, Engine, SpeechOptions, parse_rate
from service.errors import NothingToSpeakError, StorageFullError
from service.text.align import PlacedWord, place_words
from service.text.chunks import Segmenter, chunk, utf8_len
from service.text.extract import Article
from service.text.lexicon import Lexicon
from service.text.normalize import Normalizer, is_speakable
from service.text.sentences import Sentence, split_sentences

log = logging.getLogger("langdu.pipeline")
_PART_VERSION = 2  # bump when rendering changes, so cached parts are not reused (2: words)


def init_text_worker(parent: int, preload_jieba: bool) -> None:
    """Initializer of the text front-end's worker processes (service.text.frontend), which
    also encode sentences: the audio code is loaded and run once before the first one."""
    from service.text import frontend

    frontend.init(parent, preload_jieba)
    audio_warm_up()


def placed_words(original: str, spoken: str, speech: Mp3Part) -> tuple[PlacedWord, ...]:
    """The words the engine timed in `spoken`, placed on the text as printed."""
    marks = [(m.offset, m.length, m.start_ms, m.end_ms) for m in speech.words]
    return tuple(place_words(original, spoken, marks)) if marks else ()


def speech_part(
    clips: Sequence[Clip], fmt: AudioFormat, offsets: Sequence[int], original: str, spoken: str
) -> tuple[Mp3Part, tuple[PlacedWord, ...]]:
    """A sentence's encoded speech and its placed words (run in a worker: both are CPU work
    that would otherwise hold the event loop)."""
    speech = render_speech(clips, fmt, offsets)
    return speech, placed_words(original, spoken, speech)


def _cached_part(
    cache: PartCache, key: str, original: str, spoken: str
) -> tuple[Mp3Part, tuple[PlacedWord, ...]] | None:
    speech = cache.get_part(key)
    return None if speech is None else (speech, placed_words(original, spoken, speech))


def split_article(article: Article) -> list[Sentence]:
    """The article's speakable sentences in reading order; paragraph 0 is the title if any.

    Raises:
        NothingToSpeakError: no sentence has a character an engine can pronounce.
    """
    out: list[Sentence] = []
    for p_index, paragraph in enumerate(article.blocks()):
        for sentence in split_sentences(paragraph.text):
            for text in bounded(sentence):
                if is_speakable(text):
                    out.append(Sentence(index=len(out), paragraph=p_index, text=text))
    if not out:
        raise NothingToSpeakError("the text has no speakable characters")
    return out


MAX_SENTENCE_CHARS = 200
_CLAUSE_END = "，、；：,;:）)」』”"


def bounded(sentence: str, limit: int = MAX_SENTENCE_CHARS) -> list[str]:
    """A sentence longer than `limit` characters, cut into pieces that are not: after the
    last clause mark in the second half of each piece, else at the last space, else at the
    limit. Bounds the audio (and the memory) one sentence takes, and a highlight's length."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(c) for c in _CLAUSE_END) + 1
        if cut <= limit // 2:
            cut = window.rfind(" ") + 1
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


_CLAUSE_PAUSE = 0.4  # of a sentence pause, after a first piece that ends at a clause mark
_CLAUSE_MARKS = "，；：、,;:"
_MIN_PIECE = 4  # said characters: a shorter piece is not worth a part of its own
# A slow engine's first pieces, in said characters: the first is made in well under a
# second; each next one in less time than the ones before it take to play.
LEAD_LIMITS = (6, 14, 30)
# Words that lean on the next word (a cut after them sounds broken: 明显的|区域) or on the
# one before (明显|的区域): no cut between words next to them.
_LEANS_ON_NEXT = frozenset("的之和与及或在对把被将向从为于以由跟同给让比")
_LEANS_ON_PREVIOUS = frozenset("的地得了着过们吗呢吧啊呀等")


def _said(text: str) -> int:
    """About how many syllables `text` is read as (a digit: two, punctuation: none)."""
    return sum(2 if c.isdigit() else 1 for c in text if c.isalnum())


def _clause_ends(text: str) -> list[int]:
    """Where a clause ends: after a clause mark (not the comma of 1,000), or after a space
    between two phrases (a headline's 强化党建引领 推动争先进位)."""
    ends = []
    for at, ch in enumerate(text[:-1]):
        nxt = text[at + 1]
        mark = ch in _CLAUSE_MARKS and not (ch == "," and nxt.isdigit())
        gap = ch.isspace() and not nxt.isspace() and at > 0 and not text[at - 1].isspace()
        if mark or gap:
            ends.append(at + 1)
    return ends


def lead_pieces(sentence: Sentence, words: Sequence[str] | None = None) -> list[Sentence]:
    """The first sentence of a reading by a slow engine, cut into pieces that grow (at
    most LEAD_LIMITS said characters, the rest whole): at the last clause end that fits,
    else between the last jieba `words` that fit (when given), else (first piece only) at
    the first clause end. Each piece says at least _MIN_PIECE syllables; joined, the pieces
    are the sentence."""
    text = sentence.text
    clauses = _clause_ends(text)
    bounds, at = [], 0
    for word, nxt in itertools.pairwise(words or ()):
        at += len(word)
        if word not in _LEANS_ON_NEXT and nxt[:1] not in _LEANS_ON_PREVIOUS:
            bounds.append(at)
    if words is not None and sum(map(len, words)) != len(text):
        bounds = []  # not this sentence's words
    cuts: list[int] = []
    start = 0
    for limit in LEAD_LIMITS:
        if _said(text[start:]) <= limit:
            break

        def fits(at: int, start: int = start, limit: int = limit) -> bool:
            said = _said(text[start:at])
            return _MIN_PIECE <= said <= limit and _said(text[at:]) >= _MIN_PIECE

        cut = max((at for at in clauses if at > start and fits(at)), default=None)
        if cut is None:
            cut = max((at for at in bounds if at > start and fits(at)), default=None)
        if cut is None and not cuts:  # no word boundary known: the first clause, if any
            cut = next(
                (
                    at
                    for at in clauses
                    if _said(text[:at]) >= _MIN_PIECE and _said(text[at:]) >= _MIN_PIECE
                ),
                None,
            )
        if cut is None:
            break
        cuts.append(cut)
        start = cut
    edges = [0, *cuts, len(text)]
    return [
        Sentence(index=sentence.index, paragraph=sentence.paragraph, text=text[a:b])
        for a, b in itertools.pairwise(edges)
    ]


def _set(event: asyncio.Event, _: object) -> None:
    event.set()


def _ends_clause(piece: str) -> bool:
    return piece[-1:].isspace() or piece[-1:] in _CLAUSE_MARKS


class PartCache(Protocol):
    """Where finished sentence parts are kept between articles (service.store.Store)."""

    def get_part(self, key: str) -> Mp3Part | None: ...

    def put_part(self, key: str, part: Mp3Part) -> None: ...


@dataclass(frozen=True, slots=True)
class Pauses:
    """Silence after a sentence, and after the last sentence of a paragraph or heading."""

    sentence_ms: int = 300
    paragraph_ms: int = 700


def _located(text: str, chunks: Sequence[str]) -> list[tuple[int, str]]:
    """Each chunk with where it starts in `text` (chunks are pieces of it, in order)."""
    out = []
    cursor = 0
    for c in chunks:
        at = text.find(c, cursor)
        if at < 0:
            at = cursor  # the chunker trimmed or rewrote it: best effort
        out.append((at, c))
        cursor = at + len(c)
    return out


class TextWork:
    """A synthesizer's text front-end: normalization (with the lexicon), chunking and jieba's
    words, on one thread of its own or in the text worker processes (`remote`)."""

    def __init__(
        self,
        normalizer: Normalizer,
        segmenter: Segmenter,
        *,
        budget: int,
        pinyin: bool,
        remote: Executor | None,
    ) -> None:
        self._normalizer = normalizer
        self._segmenter = segmenter
        self._budget = budget  # the engine's chunk budget
        # Engines whose front end reads pinyin ({mao4 die2}) get the lexicon's pinyin as it is.
        self._pinyin = pinyin
        # The text front-end in a worker process (service.text.frontend), when given one.
        self._remote_text = remote
        self._text_pool = ThreadPoolExecutor(1, thread_name_prefix="langdu-text")
        self._segmenter_loading = False

    @property
    def remote(self) -> Executor | None:
        """The text worker processes, if the text work is done there."""
        return self._remote_text

    async def warm_up(self, *, segmenter: bool, text_workers: int, pool: Executor) -> None:
        """Load the grammars and (when asked) jieba's dictionary (on `pool`); with a text
        process pool, start every one of its `text_workers` processes."""
        loop = asyncio.get_running_loop()
        jobs: list[asyncio.Future[Any]] = []
        if self._remote_text is None:
            jobs.append(loop.run_in_executor(self._text_pool, self._normalizer.warm_up))
        if self._remote_text is not None:
            jobs.append(asyncio.ensure_future(self._warm_text_workers(segmenter, text_workers)))
        elif segmenter:
            jobs.append(loop.run_in_executor(pool, self._segmenter.warm_up))
        await asyncio.gather(*jobs)

    async def _warm_text_workers(self, segmenter: bool, workers: int) -> None:
        """Ask the text pool until `workers` different processes have answered (a worker
        takes work only once initialized; a fast one may answer every call of a round)."""
        from service.text import frontend

        assert self._remote_text is not None
        loop = asyncio.get_running_loop()
        ready: set[int] = set()
        for _ in range(600):  # ~30 s at most: then the rest starts on first use
            ready.update(
                await asyncio.gather(
                    *(
                        loop.run_in_executor(self._remote_text, frontend.warm_up, segmenter)
                        for _ in range(max(1, workers))
                    )
                )
            )
            if len(ready) >= max(1, workers):
                return
            await asyncio.sleep(0.05)

    def may_need_segmenter(self, sentences: Sequence[Sentence]) -> bool:
        # A digit can grow to ~9 bytes when read out (一千零…): a generous upper bound of the
        # spoken form's size, so that jieba is loaded only for articles that may need it.
        budget = self._budget
        return any(
            utf8_len(s.text) + 8 * sum(c.isdigit() for c in s.text) > budget for s in sentences
        )

    def load_segmenter_soon(self) -> None:
        """Start loading jieba's dictionary (~0.8 s, a few hundred MB) on a thread of its
        own, once: sentences too long for one chunk wait for it, the others do not."""
        if self._segmenter_loading or self._segmenter.loaded:
            return
        self._segmenter_loading = True

        def load() -> None:
            self._segmenter.warm_up()
            # Millions of long-lived objects: keep full collections from re-scanning them.
            gc.collect()
            gc.freeze()

        threading.Thread(target=load, name="langdu-jieba", daemon=True).start()

    async def spoken(self, text: str, lexicon: Lexicon) -> str:
        """The spoken form of `text`, the entries of `lexicon` it holds applied."""
        loop = asyncio.get_running_loop()
        mine = lexicon.within(text)
        if self._remote_text is not None:
            from service.text import frontend

            entries = tuple(mine.entries.items())
            return await loop.run_in_executor(
                self._remote_text, frontend.normalize, text, entries, self._pinyin
            )
        normalize = functools.partial(self._normalizer.normalize, pinyin=self._pinyin)
        return await loop.run_in_executor(self._text_pool, normalize, text, mine)

    async def chunks_of(self, spoken: str) -> list[str]:
        """A spoken form in engine-sized chunks."""
        loop = asyncio.get_running_loop()
        if self._remote_text is not None:
            from service.text import frontend

            budget = self._budget
            return await loop.run_in_executor(self._remote_text, frontend.chunks, spoken, budget)
        return await loop.run_in_executor(self._text_pool, self._chunks, spoken)

    async def words(self, text: str, extra: Sequence[str] = ()) -> list[str] | None:
        """jieba's words of `text` (`extra` known as words too: the lexicon's forms), or
        None while its dictionary is not loaded (the first audio never waits for it)."""
        if self._remote_text is not None:
            from service.text import frontend

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._remote_text, frontend.words, text, tuple(extra))
        if not self._segmenter.loaded:
            return None
        return self._segmenter.words_with(text, extra) if extra else self._segmenter.words(text)

    def _chunks(self, spoken: str) -> list[str]:
        """Text thread: a sentence's spoken form in engine-sized chunks."""
        budget = self._budget
        if utf8_len(spoken) <= budget:
            return [spoken]
        return chunk(spoken, budget=budget, segmenter=self._segmenter)

    def close(self) -> None:
        self._text_pool.shutdown(wait=False, cancel_futures=True)


class Synthesizer:
    """Runs sentences through normalize -> chunk -> engine -> audio, in order, overlapped.

    Up to `lookahead` sentences are in flight at once; their chunks queue at the engine
    (which bounds its own parallelism). The text front-end (wetext, jieba) runs on one
    thread of its own and audio rendering on `audio_threads`, never on the event loop.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        normalizer: Normalizer,
        segmenter: Segmenter,
        audio_format: AudioFormat,
        pauses: Pauses,
        lookahead: int = 8,
        audio_threads: int = 2,
        cache: PartCache | None = None,
        on_sentence: Callable[[bool], None] | None = None,
        text_process: Executor | None = None,
    ) -> None:
        self._engine = engine
        # Engines slower than real time on a small machine stream the first sentence in
        # growing pieces (lead_pieces).
        self._first_piece = bool(getattr(engine, "first_piece", False))
        self._normalizer = normalizer
        self._textwork = TextWork(
            normalizer,
            segmenter,
            budget=engine.chunk_budget,
            pinyin=bool(getattr(engine, "reads_pinyin", False)),
            remote=text_process,
        )
        self._format = audio_format
        self._pauses = pauses
        self._lookahead = max(1, lookahead)
        self._audio_pool = ThreadPoolExecutor(audio_threads, thread_name_prefix="langdu-audio")
        # Encoded once (a few ms each), so a finished sentence never waits for its pause.
        self._silence = {
            ms: silence_part(ms, audio_format)
            for ms in {pauses.sentence_ms, pauses.paragraph_ms}
            if ms > 0
        }
        self._cache = cache
        self._versions: dict[SpeechOptions, str] = {}
        self._on_sentence = on_sentence  # told, per sentence, whether the cache had it

    @property
    def engine(self) -> Engine:
        """The engine this synthesizer speaks with."""
        return self._engine

    async def warm_up(self, *, segmenter: bool = True, text_workers: int = 1) -> None:
        """Load the grammars, the audio libraries and (unless told not to) jieba's dictionary.
        With a text process pool of `text_workers` processes, every one of them is started
        and has run its initializer before this returns: one still loading (jieba, the
        audio code) when the first reading comes would slow its first audio down.

        The command line skips jieba: it loads on the first sentence too long for one chunk.
        """
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            loop.run_in_executor(self._audio_pool, audio_warm_up),
            self._textwork.warm_up(
                segmenter=segmenter, text_workers=text_workers, pool=self._audio_pool
            ),
        )

    def part_key(self, spoken: str, options: SpeechOptions) -> str:
        """Cache key of a sentence's audio: everything that shapes it, and nothing else."""
        from service.store import part_key

        return part_key(
            _PART_VERSION,
            self._engine.name,
            self._engine.version,
            options.voice,
            options.rate,
            options.pitch,
            *options.extra,  # nothing for engines without preset options: keys unchanged
            self._format,
            spoken,
        )

    def _shaping(self) -> tuple[object, ...]:
        """What shapes every reading here besides text and voice options: code, engine,
        rules and audio settings."""
        return (
            _PART_VERSION,
            self._engine.name,
            self._engine.version,
            self._normalizer.version,
            self._format,
            self._pauses,
        )

    @property
    def fingerprint(self) -> str:
        """A short name for `_shaping` (each render version starts from the same fields)."""
        from service.store import part_key

        return part_key(*self._shaping())

    def render_version(self, options: SpeechOptions) -> str:
        """A short name for everything that shapes an article's audio besides its text:
        rules (normalizer and lexicon), engine and voice, audio format and pauses.

        Same text + same render version = same audio; a new one means reading again.
        (An article some lexicon entries apply to: `article_version`.)
        """
        from service.store import part_key

        known = self._versions.get(options)
        if known is not None:
            return known  # asked on every request for an article: hash once per voice
        scaled = () if options.rate == "+0%" else self._pause_ms(options)  # pauses follow rate
        digest = part_key(
            *self._shaping(),
            options.voice,
            options.rate,
            options.pitch,
            *scaled,
            *options.extra,
        )
        if len(self._versions) > 10_000:  # rates and pitches come from clients
            self._versions.clear()
        version = self._versions[options] = "r" + digest[:12]
        return version

    def article_version(self, options: SpeechOptions, lexicon: Lexicon) -> str:
        """The render version of an article read with `lexicon` (the entries whose written
        form it holds): an article no entry touches keeps `render_version`, so a change to
        the lexicon re-reads only the articles holding the word."""
        base = self.render_version(options)
        if not lexicon:
            return base
        from service.store import part_key

        return "r" + part_key(base, lexicon.digest)[:12]

    def _pause_ms(self, options: SpeechOptions) -> tuple[int, int]:
        """The pauses after a sentence and after a paragraph at the options' rate: a faster
        reading pauses for less (OpenAI's speed 2.0 is twice as fast, pauses included)."""
        speed = parse_rate(options.rate)
        return (
            round(self._pauses.sentence_ms / speed),
            round(self._pauses.paragraph_ms / speed),
        )

    async def _render(
        self,
        sentence: Sentence,
        nxt: Sentence | None,
        options: SpeechOptions,
        *,
        lead: bool,
        turn: tuple[asyncio.Event | None, asyncio.Event],
        lexicon: Lexicon,
    ) -> SentenceAudio:
        loop = asyncio.get_running_loop()
        spoken = await self._textwork.spoken(sentence.text, lexicon)
        key = self.part_key(spoken, options) if self._cache is not None else ""
        found = None
        if self._cache is not None:
            found = await loop.run_in_executor(
                self._audio_pool, _cached_part, self._cache, key, sentence.text, spoken
            )
            if self._on_sentence is not None:
                self._on_sentence(found is not None)
        chunks = []
        if found is None:
            chunks = [
                (at, c)
                for at, c in _located(spoken, await self._textwork.chunks_of(spoken))
                if is_speakable(c)
            ]
        # The engine is asked in reading order, whatever order the text work finished in:
        # a later sentence's long chunks never queue ahead of an earlier piece. (`mine`
        # says: this sentence and all before it have asked.)
        before, mine = turn
        if before is not None:
            await before.wait()
        if found is None:
            asked = asyncio.gather(*(self._engine.synthesize(c, options) for _, c in chunks))
            mine.set()
            clips: list[Clip] = await asked
            # Encoding holds the interpreter lock: in the text process when there is one.
            encoder = self._textwork.remote or self._audio_pool
            found = await loop.run_in_executor(
                encoder,
                speech_part,
                clips,
                self._format,
                [at for at, _ in chunks],
                sentence.text,
                spoken,
            )
            if self._cache is not None:
                try:
                    await loop.run_in_executor(
                        self._audio_pool, self._cache.put_part, key, found[0]
                    )
                except (OSError, StorageFullError) as exc:  # a cache: the reading goes on
                    log.warning("sentence part not cached: %s", exc)
        pause = None
        if nxt is not None:
            sentence_ms, paragraph_ms = self._pause_ms(options)
            ms = paragraph_ms if nxt.paragraph != sentence.paragraph else sentence_ms
            if lead:  # a pause inside the sentence (the engine's own is trimmed)
                ms = round(sentence_ms * _CLAUSE_PAUSE) if _ends_clause(sentence.text) else 0
            if ms > 0:
                pause = self._silence.get(ms)
                if pause is None:  # another rate's pause: a few ms to encode, then kept
                    pause = await loop.run_in_executor(
                        self._audio_pool, silence_part, ms, self._format
                    )
                    if len(self._silence) < 1000:
                        self._silence[ms] = pause
        speech, words = found
        return SentenceAudio(
            sentence=sentence, spoken=spoken, speech=speech, pause=pause, words=words, lead=lead
        )

    async def render(
        self,
        sentences: Sequence[Sentence],
        options: SpeechOptions,
        lexicon: Lexicon | None = None,
    ) -> AsyncIterator[SentenceAudio]:
        """Yield each sentence's audio in order, as soon as it and all before it are done,
        said as `lexicon`'s entries say where they apply.

        Raises:
            EngineError: the engine failed on a chunk.
            AudioError: stitching or encoding failed.
            OptionError: the options are invalid for the engine.
        """
        pending: dict[int, asyncio.Task[SentenceAudio]] = {}
        lexicon = lexicon or Lexicon()
        if self._textwork.remote is None and self._textwork.may_need_segmenter(sentences):
            self._textwork.load_segmenter_soon()  # (a text process loads its own on first need)
        leads = 0
        if self._first_piece and sentences:
            # A slow engine's first audio: the first sentence in growing pieces, each made
            # (and streamed) alone.
            first = sentences[0].text
            words = await self._textwork.words(first, list(lexicon.within(first).entries))
            pieces = lead_pieces(sentences[0], words)
            sentences, leads = [*pieces, *sentences[1:]], len(pieces) - 1

        turns = [asyncio.Event() for _ in sentences]

        def schedule(i: int) -> None:
            if i < len(sentences) and i not in pending:
                nxt = sentences[i + 1] if i + 1 < len(sentences) else None
                turn = (turns[i - 1] if i else None, turns[i])
                task = asyncio.create_task(
                    self._render(
                        sentences[i], nxt, options, lead=i < leads, turn=turn, lexicon=lexicon
                    )
                )
                # (also when cached or failed) the next sentence may ask now
                task.add_done_callback(functools.partial(_set, turns[i]))
                pending[i] = task

        try:
            # A first piece is made alone: the model runs on every core, and the text work
            # of the sentences after it (a few ms each, at a higher priority) would stall
            # its threads just when a listener waits for the first audio.
            for i in range(1 if leads else min(self._lookahead, len(sentences))):
                schedule(i)
            for i in range(len(sentences)):
                schedule(i)
                result = await pending.pop(i)
                for ahead in range(i + 1, i + 1 + self._lookahead):
                    schedule(ahead)
                yield result
        finally:
            for task in pending.values():
                task.cancel()
            for task in pending.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def close(self) -> None:
        """Stop the text and audio threads (the engine is closed by its owner)."""
        self._textwork.close()
        self._audio_pool.shutdown(wait=False, cancel_futures=True)
