"""Shared fixtures: the sample page, a synthesizer on the real offline engine, MP3 decoding."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
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


def ebur128(audio: bytes) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBFS) of encoded audio, measured by
    ffmpeg's ebur128 filter: an independent meter, not langdu's own level control."""
    import re

    import imageio_ffmpeg

    log = subprocess.run(
        [
            *(imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i", "pipe:0"),
            *("-af", "ebur128=peak=true", "-f", "null", "-"),
        ],
        input=audio,
        capture_output=True,
        check=True,
    ).stderr.decode(errors="replace")
    summary = log[log.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


def decoded_pcm(mp3: bytes) -> bytes:
    return _ffmpeg_pcm(mp3).stdout


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Under CI=1 (set by .ci/run) nothing is skipped quietly: a test skipped for a missing
# browser, model, mount or package fails, with the reason it gave.
_STRICT_NOTE = "skipped under CI=1, where a missing browser, model or mount is a failure"


def _strict(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{_STRICT_NOTE}: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _strict(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _strict(outcome.get_result())  # type: ignore[attr-defined]
