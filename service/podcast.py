"""Podcast episodes (loudness-normalized, ID3-tagged MP3) and the RSS feed that lists them."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from service.audio import AudioFormat, clip_from_mp3, encode_part, ffmpeg_exe
from service.engines.base import Clip
from service.errors import AudioError
from service.text.clean import clean_text

TARGET_LUFS = -16.0
_PEAK_LIMIT = 0.84  # about -1.5 dBFS: leaves room for the encoder's overshoot
_LOUDNESS = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf) LUFS", re.S)
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"


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
    from service.audio import _pydub

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


# --- the feed -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Channel:
    """The podcast as a whole."""

    title: str
    link: str
    description: str
    author: str
    image_url: str
    categories: tuple[str, ...]
    language: str
    explicit: bool
    feed_url: str


@dataclass(frozen=True, slots=True)
class Item:
    """One episode in the feed."""

    guid: str
    title: str
    description: str
    link: str
    published: datetime
    audio_url: str
    audio_bytes: int
    duration_ms: int
    transcript_url: str


def _duration(ms: int) -> str:
    s = round(ms / 1000)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def podcast_guid(feed_url: str) -> str:
    """Podcasting 2.0 channel GUID: UUIDv5 of the feed URL without scheme and trailing slash."""
    namespace = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
    bare = re.sub(r"^[a-z]+://", "", feed_url).rstrip("/")
    return str(uuid.uuid5(namespace, bare))


def render_feed(channel: Channel, items: Sequence[Item], *, timezone: str) -> bytes:
    """RSS 2.0 with the iTunes and Podcasting 2.0 namespaces; every string escaped."""
    ET.register_namespace("itunes", ITUNES)
    ET.register_namespace("podcast", PODCAST)
    ET.register_namespace("atom", ATOM)
    tz = ZoneInfo(timezone)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = ET.SubElement(rss, "channel")

    def text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
        # Escaping handles <, & and quotes; characters XML 1.0 cannot hold at all go.
        node = ET.SubElement(parent, tag, {k: clean_text(v) for k, v in attrs.items()})
        node.text = clean_text(value)
        return node

    text(ch, "title", channel.title)
    text(ch, "link", channel.link)
    text(ch, "description", channel.description)
    text(ch, "language", channel.language)
    ET.SubElement(
        ch,
        f"{{{ATOM}}}link",
        {"href": channel.feed_url, "rel": "self", "type": "application/rss+xml"},
    )
    text(ch, f"{{{ITUNES}}}author", channel.author)
    text(ch, f"{{{ITUNES}}}explicit", "true" if channel.explicit else "false")
    if channel.image_url:
        ET.SubElement(ch, f"{{{ITUNES}}}image", {"href": channel.image_url})
        image = ET.SubElement(ch, "image")
        text(image, "url", channel.image_url)
        text(image, "title", channel.title)
        text(image, "link", channel.link)
    for category in channel.categories:
        ET.SubElement(ch, f"{{{ITUNES}}}category", {"text": category})
    text(ch, f"{{{PODCAST}}}guid", podcast_guid(channel.feed_url))
    if items:
        text(ch, "lastBuildDate", format_datetime(max(i.published for i in items).astimezone(tz)))
    for item in items:
        node = ET.SubElement(ch, "item")
        text(node, "title", item.title)
        text(node, "description", item.description)
        text(node, "link", item.link)
        text(node, "guid", item.guid, isPermaLink="false")
        text(node, "pubDate", format_datetime(item.published.astimezone(tz)))
        ET.SubElement(
            node,
            "enclosure",
            {"url": item.audio_url, "length": str(item.audio_bytes), "type": "audio/mpeg"},
        )
        text(node, f"{{{ITUNES}}}duration", _duration(item.duration_ms))
        text(node, f"{{{ITUNES}}}explicit", "true" if channel.explicit else "false")
        ET.SubElement(
            node,
            f"{{{PODCAST}}}transcript",
            {"url": item.transcript_url, "type": "text/vtt", "language": "zh-cn"},
        )
    body: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return body


def feed_etag(body: bytes) -> str:
    """A strong validator for a rendered feed."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
