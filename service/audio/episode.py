"""Podcast episode audio: loudness-normalized (EBU R128), ID3-tagged MP3, with optional stings."""

from __future__ import annotations

import io
import re
import subprocess
from dataclasses import dataclass

from service.audio.clip import Clip
from service.audio.mp3 import AudioFormat, clip_from_mp3, encode_part, ffmpeg_exe
from service.errors import AudioError
from service.text.clean import clean_text

TARGET_LUFS = -16.0
_PEAK_LIMIT = 0.84  # about -1.5 dBFS: leaves room for the encoder's overshoot
_LOUDNESS = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf) LUFS", re.S)


@dataclass(frozen=True, slots=True)
class EpisodeTags:
    """What an episode file says about itself (ID3v2)."""

    title: str
    artist: str
    album: str
    date: str  # YYYY-MM-DD
    cover: bytes | None = None  # PNG or JPEG


@dataclass(frozen=True, slots=True)
class Episode:
    """A finished episode file: its bytes (tags included) and playing time."""

    data: bytes
    duration_ms: int
    loudness_lufs: float


def normalize_loudness(
    pcm: bytes, rate: int, *, target: float = TARGET_LUFS
) -> tuple[bytes, float]:
    """Bring 16-bit mono PCM to `target` LUFS integrated (EBU R128), peaks limited.

    A gain, then a look-ahead limiter, measured in the same ffmpeg pass; the limiter takes a
    little loudness off the loudest peaks, so the gain is corrected until within 0.2 LU.

    Raises:
        AudioError: ffmpeg failed, or the audio is silent.
    """
    measured = measure_loudness(pcm, rate)
    gain = target - measured
    out, level = pcm, measured
    for _ in range(4):
        out, level = _gain_limit(pcm, rate, gain)
        if abs(level - target) <= 0.2:
            break
        gain += target - level
    return out, level


def measure_loudness(pcm: bytes, rate: int) -> float:
    """Integrated loudness (LUFS) of 16-bit mono PCM.

    Raises:
        AudioError: ffmpeg failed, or the audio is silent.
    """
    return _run_ebur128(pcm, rate, "", output=False)[1]


def _gain_limit(pcm: bytes, rate: int, gain_db: float) -> tuple[bytes, float]:
    chain = f"volume={gain_db:.3f}dB,alimiter=limit={_PEAK_LIMIT}:level=false:attack=5:release=50,"
    return _run_ebur128(pcm, rate, chain, output=True)


def _run_ebur128(pcm: bytes, rate: int, chain: str, *, output: bool) -> tuple[bytes, float]:
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        "-f",
        "s16le",
        "-ar",
        str(rate),
        "-ac",
        "1",
        "-i",
        "pipe:0",
        "-af",
        f"{chain}ebur128=framelog=quiet",
        "-ar",
        str(rate),
        "-f",
        "s16le",
        "pipe:1" if output else "-",
    ]
    if not output:
        cmd[-2:] = ["null", "-"]
    try:
        proc = subprocess.run(cmd, input=pcm, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise AudioError(f"loudness pass failed: {exc}") from exc
    m = _LOUDNESS.search(proc.stderr.decode("utf-8", "replace"))
    if m is None or m.group(1) == "-inf":
        raise AudioError("cannot measure loudness (silent audio?)")
    return proc.stdout, float(m.group(1))


def make_episode(
    article_mp3: bytes,
    tags: EpisodeTags,
    *,
    intro: Clip | None = None,
    outro: Clip | None = None,
    bitrate_kbps: int = 64,
) -> Episode:
    """The article's audio as a podcast episode: stings, -16 LUFS, MP3, ID3v2 tags.

    Raises:
        AudioError: decoding, loudness or encoding failed.
    """
    speech = clip_from_mp3(article_mp3)
    rate = speech.sample_rate
    gap = b"\0\0" * (rate * 6 // 10)
    pieces = [
        _resample(intro, rate) + gap if intro else b"",
        speech.pcm,
        gap + _resample(outro, rate) if outro else b"",
    ]
    pcm, level = normalize_loudness(b"".join(pieces), rate)
    part = encode_part(pcm, AudioFormat(sample_rate=rate, bitrate_kbps=bitrate_kbps))
    return Episode(
        data=_tag(part.data, tags), duration_ms=round(part.duration_ms), loudness_lufs=level
    )


def _resample(clip: Clip, rate: int) -> bytes:
    if clip.sample_rate == rate:
        return clip.pcm
    from service.audio.mp3 import _pydub

    seg = _pydub()(data=clip.pcm, sample_width=2, frame_rate=clip.sample_rate, channels=1)
    return bytes(seg.set_frame_rate(rate).raw_data)


def _tag(mp3: bytes, tags: EpisodeTags) -> bytes:
    from mutagen.id3 import APIC, ID3, TALB, TDRC, TIT2, TPE1

    id3 = ID3()
    id3.add(TIT2(encoding=3, text=clean_text(tags.title)))
    id3.add(TPE1(encoding=3, text=clean_text(tags.artist)))
    id3.add(TALB(encoding=3, text=clean_text(tags.album)))
    id3.add(TDRC(encoding=3, text=tags.date))
    if tags.cover:
        mime = "image/png" if tags.cover.startswith(b"\x89PNG") else "image/jpeg"
        id3.add(APIC(encoding=3, mime=mime, type=3, desc="cover", data=tags.cover))
    out = io.BytesIO(mp3)
    id3.save(out, v2_version=3)
    return out.getvalue()


def load_sting(path: str) -> Clip:
    """An intro/outro sound file (anything ffmpeg reads), decoded to mono PCM.

    Raises:
        AudioError: the file is missing or not audio.
    """
    try:
        proc = subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                path,
                "-f",
                "s16le",
                "-ac",
                "1",
                "-ar",
                "22050",
                "pipe:1",
            ],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise AudioError(f"cannot read sting {path}: {exc}") from exc
    if not proc.stdout:
        raise AudioError(f"sting {path} holds no audio")
    return Clip(pcm=proc.stdout, sample_rate=22050)
