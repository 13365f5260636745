"""Audio in the formats OpenAI's speech endpoint offers, converted as it streams.

Our audio is MP3 (stored renderings, live readings). Every other format, and any speed
outside what the engines speak natively, goes through one ffmpeg process (the binary of the
imageio-ffmpeg wheel): MP3 bytes in on its stdin as they arrive, the asked-for format out
of its stdout as it is made, so a reading still in progress streams in every format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from service.errors import AudioError

log = logging.getLogger("langdu.formats")

Format = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

SAMPLE_RATE = 24000  # what OpenAI documents for pcm; every converted format uses it
_CHUNK = 16384


@dataclass(frozen=True, slots=True)
class Output:
    media_type: str
    args: tuple[str, ...]  # ffmpeg's output options


OUTPUTS: dict[str, Output] = {
    "mp3": Output("audio/mpeg", ("-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")),
    "opus": Output("audio/ogg", ("-c:a", "libopus", "-b:a", "32k", "-f", "ogg")),
    "aac": Output("audio/aac", ("-c:a", "aac", "-b:a", "64k", "-f", "adts")),
    "flac": Output("audio/flac", ("-c:a", "flac", "-f", "flac")),
    # Streamed: the RIFF and data sizes are 0xFFFFFFFF ("until the end"), as OpenAI's are.
    "wav": Output("audio/wav", ("-c:a", "pcm_s16le", "-f", "wav")),
    # Raw samples: 24 kHz, signed 16-bit little-endian, mono, no header.
    "pcm": Output("audio/pcm", ("-c:a", "pcm_s16le", "-f", "s16le")),
}


def tempo_filter(tempo: float) -> str:
    """ffmpeg's atempo chain for a tempo factor (each stage takes 0.5 .. 2.0)."""
    stages: list[float] = []
    while tempo < 0.5:
        stages.append(0.5)
        tempo /= 0.5
    while tempo > 2.0:
        stages.append(2.0)
        tempo /= 2.0
    stages.append(tempo)
    return ",".join(f"atempo={s:.6g}" for s in stages if abs(s - 1.0) > 1e-9) or "anull"


def needs_conversion(fmt: str, tempo: float) -> bool:
    """Whether MP3 audio must go through ffmpeg to be answered as `fmt` at `tempo`."""
    return fmt != "mp3" or abs(tempo - 1.0) > 1e-9


def _command(fmt: str, tempo: float) -> list[str]:
    from service.audio.mp3 import ffmpeg_exe

    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-f",
        "mp3",
        "-i",
        "pipe:0",
        "-vn",
        "-map_metadata",
        "-1",
        "-af",
        f"{tempo_filter(tempo)},aresample={SAMPLE_RATE}",
        "-ac",
        "1",
        "-flush_packets",
        "1",
        "-fflags",
        "+bitexact",
        *OUTPUTS[fmt].args,
        "pipe:1",
    ]


async def convert(mp3: AsyncIterator[bytes], fmt: str, tempo: float = 1.0) -> AsyncIterator[bytes]:
    """Convert an MP3 byte stream to `fmt` at `tempo`, yielding output as ffmpeg makes it.

    Raises:
        AudioError: ffmpeg could not be started or failed (after what it had made).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *_command(fmt, tempo),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise AudioError(f"the audio converter could not start: {exc}") from exc
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

    async def feed() -> None:
        try:
            async for chunk in mp3:
                stdin.write(chunk)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return  # ffmpeg stopped (it says why on stderr)
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                stdin.close()

    feeder = asyncio.create_task(feed())
    errors = asyncio.create_task(stderr.read())
    try:
        while chunk := await stdout.read(_CHUNK):
            yield chunk
        await feeder  # the source's own error (a failed reading) comes out here
        code = await proc.wait()
        if code != 0:
            message = (await errors).decode(errors="replace").strip().splitlines()
            raise AudioError(f"audio conversion failed: {message[-1] if message else code}")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for task in (feeder, errors):
            task.cancel()
        await asyncio.gather(feeder, errors, return_exceptions=True)


async def once(data: bytes) -> AsyncIterator[bytes]:
    """A stored file as a byte stream."""
    yield data
