"""Listening: what a listener pressing play gets (stored audio, or the reading as it is made),
timings of what is heard, where a cut stream resumes, and speech in any response format.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator

from service.audio.formats import OUTPUTS, Format, convert, needs_conversion, once
from service.core.articles import plain_article
from service.core.cluster import RemoteReading
from service.core.context import Context
from service.core.intake import Intake
from service.core.rendering import Rendering
from service.core.views import Live, Speech, Stored, Timings
from service.errors import LangduError, QueueFullError
from service.store import audio_key
from service.store.registry import Priority

_MAX_CUTS = 10_000
_CUT_KEPT_S = 6 * 3600.0  # how long another replica can tell a cut listener where to resume
CONVERSION_WAIT_S = 2.0  # how long a request waits for a free conversion before a 503


class Listening:
    """Answers listeners; remembers where cut streams resume."""

    def __init__(
        self, ctx: Context, rendering: Rendering, intake: Intake, max_conversions: int = 4
    ) -> None:
        self._ctx = ctx
        self._conversions = asyncio.Semaphore(max_conversions)  # ffmpeg processes at once
        self._rendering = rendering
        self._intake = intake
        # (article, listener) -> sentences heard before the reading started over in the
        # fallback voice: where that listener's player resumes. In a cluster also kept in
        # Redis: the player may ask another replica.
        self._cuts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._writes: set[asyncio.Task[None]] = set()

    async def listen(self, article_id: str, client: str = "") -> Stored | Live:
        """What a listener pressing play gets: stored audio, or the reading as it is made.

        Raises:
            NotFoundError: no such article. QueueFullError: it must be read and cannot be now.
        """
        rec = await self._ctx.record(article_id)
        found = await self._rendering.want_audio(rec, Priority.LISTENER, client)
        self._ctx.metrics.cache.labels(
            "audio", "hit" if isinstance(found, Stored) else "miss"
        ).inc()
        return found

    def note_cut(self, article_id: str, listener: str, sentences: int) -> None:
        """A listener's stream ended early because the article started over in another
        voice, after `sentences` whole sentences."""
        self._cuts[(article_id, listener)] = sentences
        while len(self._cuts) > _MAX_CUTS:
            self._cuts.popitem(last=False)
        shared = self._rendering.shared
        if shared is not None:
            task = asyncio.get_running_loop().create_task(
                shared.work.set_value(
                    f"cut:{article_id}:{listener}", str(sentences), ttl_s=_CUT_KEPT_S
                )
            )
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def resume_at(self, article_id: str, listener: str | None) -> int | None:
        """Where a listener whose stream was cut resumes (None: it was not cut)."""
        if listener is None:
            return None
        found = self._cuts.get((article_id, listener))
        shared = self._rendering.shared
        if found is None and shared is not None:
            value = await shared.work.value(f"cut:{article_id}:{listener}")
            found = None if value is None else int(value)
        return found

    async def stored_audio(self, article_id: str, rendering: str) -> bytes | None:
        """One rendering's MP3 if it is still stored (old renderings stay until evicted)."""
        return await self._ctx.hot.get(audio_key(article_id, rendering))

    async def audio_location(self, article_id: str, rendering: str, expires_s: int) -> str | None:
        """A presigned URL of one rendering's MP3 in the object store, valid `expires_s`
        seconds (None: not stored, or a store that cannot presign)."""
        blobs = self._ctx.store.blobs
        presign = getattr(blobs, "presign", None)
        key = audio_key(article_id, rendering)
        if presign is None or not await asyncio.to_thread(blobs.exists, key):
            return None
        url: str = await asyncio.to_thread(presign, key, expires_s)
        return url

    async def timings(self, article_id: str, rendering: str | None = None) -> Timings | None:
        """Timings of a given rendering (None if it is gone), or of what the stable URLs
        serve now: the stored rendering, else the reading so far.

        Raises:
            NotFoundError: no such article. QueueFullError: it must be read and cannot be now.
        """
        store = self._ctx.store
        if rendering is not None:
            raw = await asyncio.to_thread(store.timings, article_id, rendering)
            return None if raw is None else Timings(raw, False, rendering)
        rec = await self._ctx.record(article_id)
        found = await self._rendering.want_audio(rec, Priority.LISTENER)
        if isinstance(found, Stored):
            raw = await asyncio.to_thread(store.timings, article_id, found.rendering)
            if raw is not None:
                return Timings(raw, False, found.rendering)
            found = Live(await self._rendering.submit(rec, Priority.LISTENER))
        job = found.job
        document = job.timeline.to_json(voice=job.voice or rec.voice)
        return Timings(json.dumps(document, ensure_ascii=False).encode("utf-8"), True, None)

    async def wait(self, article_id: str) -> None:
        """Until the article's current reading (if any) has finished."""
        job = self._rendering.queue.get(article_id)
        if job is not None:
            await job.wait()
        elif self._rendering.shared is not None:
            rec = await self._ctx.record(article_id)
            if rec.work is not None:
                reading = RemoteReading(
                    self._rendering.shared.work, rec.id, self._rendering.render_version(rec)
                )
                await reading.wait()

    async def speak(
        self,
        text: str,
        *,
        voice: str,
        rate: str,
        response_format: Format,
        tempo: float = 1.0,
        client: str = "",
    ) -> Speech:
        """`text` read in `voice` at `rate`, in `response_format`, time-stretched by `tempo`
        (pitch kept): the stored file when nothing needs converting, else a stream.

        Raises:
            InputError: nothing to read. UnknownVoiceError / OptionError: bad voice options.
            QueueFullError / ClientBusyError: no room to read it now, or (after waiting
            CONVERSION_WAIT_S) to convert it. AudioError: the conversion cannot start.
            LangduError: the audio was not kept.
        """
        output = OUTPUTS[response_format]
        converted = needs_conversion(response_format, tempo)
        if not converted:
            found = await self._spoken(text, voice, rate, client)
            if isinstance(found, Live):
                return Speech(output.media_type, found.job.stream())
            return Speech(output.media_type, await self._kept(found))
        # A conversion is taken before anything is read: a request that cannot have one
        # is refused before it costs any synthesis.
        try:
            await asyncio.wait_for(self._conversions.acquire(), CONVERSION_WAIT_S)
        except TimeoutError:
            raise QueueFullError(
                "every audio conversion is in use; try again shortly, or ask for mp3 at a"
                " speed of 0.5 to 3"
            ) from None
        try:
            found = await self._spoken(text, voice, rate, client)
            source = (
                found.job.stream() if isinstance(found, Live) else once(await self._kept(found))
            )
        except BaseException:
            self._conversions.release()
            raise
        # Started here (its first chunk made), the conversion gives its place back when it
        # ends, fails or is dropped unread (the event loop closes a dropped generator).
        converting = _released(convert(source, response_format, tempo), self._conversions)
        return Speech(output.media_type, await _primed(converting))

    async def _spoken(self, text: str, voice: str, rate: str, client: str) -> Stored | Live:
        view, _ = await self._intake.register(
            voice=voice, article=plain_article(text), rate=rate, client=client
        )
        return await self.listen(view.record.id, client)

    async def _kept(self, found: Stored) -> bytes:
        mp3 = await self.stored_audio(found.article_id, found.rendering)
        if mp3 is None:
            raise LangduError("the audio was not kept; try again")
        return mp3


async def _released(chunks: AsyncIterator[bytes], held: asyncio.Semaphore) -> AsyncIterator[bytes]:
    """`chunks`, giving `held` (acquired by the caller) back once they end, fail or are
    closed."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        held.release()


async def _primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already made: a conversion that cannot start is an
    error answer, not an empty 200."""
    first = await anext(chunks, b"")

    async def replay() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return replay()
