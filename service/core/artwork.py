"""The podcast's channel artwork: a generated square PNG by default, or the operator's image.

Podcast directories (Apple's, Podcast Index's) want a square JPEG or PNG of 1400-3000 px
behind a URL ending in .png or .jpg. Without one a feed is refused, so langdu draws its own:
a sound wave on the accent colour of the player, written by hand (zlib, no image library).
An image given by `LANGDU_FEED_IMAGE_FILE` is checked against the same rules at start-up.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MIN_PX, MAX_PX = 1400, 3000
SIZE = 1400
_BACKGROUND = (0xB3, 0x26, 0x1E)  # the player's accent red
_INK = (0xFF, 0xFF, 0xFF)
# Bar heights, as a share of the drawing's height: one spoken phrase, rising and falling.
_BARS = (0.22, 0.42, 0.7, 0.5, 0.86, 0.62, 0.34, 0.56, 0.28)


@dataclass(frozen=True, slots=True)
class Artwork:
    """An image ready to serve."""

    body: bytes
    media_type: str  # image/png or image/jpeg
    width: int
    height: int
    etag: str = field(init=False)  # a strong validator, computed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"')

    @property
    def extension(self) -> str:
        return "png" if self.media_type == "image/png" else "jpg"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bar_spans(y: int, size: int) -> list[tuple[int, int]]:
    """The x spans [from, to) the bars cover on row y: rounded vertical bars, centred."""
    count = len(_BARS)
    width = size * 0.045
    gap = size * 0.03
    left = (size - (count * width + (count - 1) * gap)) / 2
    middle = size / 2
    radius = width / 2
    spans = []
    for i, share in enumerate(_BARS):
        half = share * size * 0.3
        top, bottom = middle - half, middle + half
        if not top <= y + 0.5 <= bottom:
            continue
        x0 = left + i * (width + gap)
        # The caps: a half circle at each end.
        at = y + 0.5
        dy = max(top + radius - at, at - (bottom - radius), 0.0)
        if dy > radius:
            continue
        inset = radius - math.sqrt(radius * radius - dy * dy)
        spans.append((round(x0 + inset), round(x0 + width - inset)))
    return spans


def _ring(y: int, size: int) -> list[tuple[int, int]]:
    """The x spans of a thin ring around the wave, on row y."""
    centre, outer, inner = size / 2, size * 0.42, size * 0.40
    dy = abs(y + 0.5 - centre)
    if dy > outer:
        return []
    out_half = math.sqrt(outer * outer - dy * dy)
    if dy > inner:
        return [(round(centre - out_half), round(centre + out_half))]
    in_half = math.sqrt(inner * inner - dy * dy)
    return [
        (round(centre - out_half), round(centre - in_half)),
        (round(centre + in_half), round(centre + out_half)),
    ]


@functools.cache
def generated(size: int = SIZE) -> Artwork:
    """langdu's own artwork: a size x size RGB PNG."""
    background, ink = bytes(_BACKGROUND), bytes(_INK)
    rows = []
    for y in range(size):
        row = bytearray(background * size)
        for x0, x1 in _ring(y, size) + _bar_spans(y, size):
            x0, x1 = max(0, x0), min(size, x1)
            if x1 > x0:
                row[x0 * 3 : x1 * 3] = ink * (x1 - x0)
        rows.append(b"\x00" + bytes(row))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
    return Artwork(body, "image/png", size, size)


def measure(data: bytes) -> tuple[str, int, int]:
    """(media type, width, height) of a PNG or JPEG; ValueError for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8"):
        at = 2
        while at + 4 <= len(data):
            if data[at] != 0xFF:
                raise ValueError("a damaged JPEG")
            marker = data[at + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                at += 2
                continue
            (length,) = struct.unpack(">H", data[at + 2 : at + 4])
            # Start of frame (baseline, progressive ...), not DHT/JPG/DAC.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[at + 5 : at + 9])
                return "image/jpeg", width, height
            at += 2 + length
        raise ValueError("a JPEG without a frame header")
    raise ValueError("not a PNG or JPEG image")


def load(path: Path) -> Artwork:
    """The operator's artwork, checked as directories check it; ValueError says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    media_type, width, height = measure(data)
    if width != height:
        raise ValueError(f"{path}: {width}x{height} px; podcast artwork must be square")
    if not MIN_PX <= width <= MAX_PX:
        raise ValueError(f"{path}: {width} px; podcast artwork must be {MIN_PX}-{MAX_PX} px")
    return Artwork(data, media_type, width, height)
