"""Shared fixtures: the sample page, a synthesizer on the real offline engine, MP3 decoding."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LANGDU_SHARED", ROOT.parent / "shared"))


def _shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.fail(f"shared test data missing: {path} (set LANGDU_SHARED)")
    return path


@pytest.fixture(scope="session")
def sample_txt() -> Path:
    return _shared_file("fixtures/anning-page.txt")


@pytest.fixture(scope="session")
def sample_html() -> Path:
    return _shared_file("fixtures/anning-page.html")


@pytest.fixture(scope="session")
def cases_tsv() -> Path:
    return _shared_file("tn/cases.tsv")


def _ffmpeg_pcm(mp3: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", *extra, "-i", "pipe:0"]
    return subprocess.run(
        [*command, "-f", "s16le", "-ac", "1", "pipe:1"],
        input=mp3,
        capture_output=True,
        check=True,
    )


def decoded_samples(mp3: bytes) -> tuple[int, int]:
    """Decode MP3 bytes with the bundled ffmpeg: (samples, sample rate). Fails on bad data."""
    import imageio_ffmpeg

    proc = _ffmpeg_pcm(mp3, "-xerror")
    assert not proc.stderr, proc.stderr.decode(errors="replace")
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", "pipe:0"], input=mp3[:4096], capture_output=True
    )
    rate = 22050
    for token in probe.stderr.decode(errors="replace").split(","):
        if token.strip().endswith("Hz"):
            rate = int(token.strip().split()[0])
    return len(proc.stdout) // 2, rate


_DEMUXERS = {"mp3": "mp3", "opus": "ogg", "aac": "aac", "flac": "flac"}


def decoded_seconds(data: bytes, fmt: str) -> float:
    """Decode audio in one of OpenAI's response formats (pcm: 24 kHz 16-bit mono samples)
    with the bundled ffmpeg; its length in seconds. Fails on bad data."""
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return len(data) / 2 / 24000
    if fmt == "wav":  # streamed: sizes "until the end" (0xFFFFFFFF), which ffmpeg calls corrupt
        import io
        import wave

        with wave.open(io.BytesIO(data)) as w:
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
            rate: int = w.getframerate()
            return len(w.readframes(10**9)) / 2 / rate
    import imageio_ffmpeg

    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-xerror", "-f", _DEMUXERS[fmt]]
    proc = subprocess.run(
        [*ffmpeg, "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "24000", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
    )
    assert not proc.stderr, proc.stderr.decode(errors="replace")
    return len(proc.stdout) / 2 / 24000


def decoded_pcm(mp3: bytes) -> bytes:
    return _ffmpeg_pcm(mp3).stdout


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
