"""The part codec: one sentence's cached audio as a self-describing blob.

LDP2 | rate u32 | content samples u32 | words length u32 | words (JSON) | MP3 frames
LDP1 | rate u32 | content samples u32 | MP3 frames                      (read only: no words)
"""

from __future__ import annotations

import json
import struct

from service.audio.clip import WordMark
from service.audio.mp3 import Mp3Part, mp3_frames
from service.errors import AudioError

_PART_MAGIC = b"LDP2"
_PART_MAGIC_V1 = b"LDP1"


def encode_part(part: Mp3Part) -> bytes:
    """A part's blob (always the current version)."""
    words = json.dumps(
        [[w.offset, w.length, w.start_ms, w.end_ms] for w in part.words], separators=(",", ":")
    ).encode()
    header = (
        _PART_MAGIC
        + struct.pack("<III", part.sample_rate, part.content_samples, len(words))
        + words
    )
    return header + part.data


def decode_part(raw: bytes) -> Mp3Part:
    """The part a blob holds.

    Raises:
        AudioError: not a part blob, or its header or MP3 frames are damaged.
    """
    try:
        words: tuple[WordMark, ...] = ()
        if raw[:4] == _PART_MAGIC:
            rate, content, size = struct.unpack_from("<III", raw, 4)
            words = tuple(WordMark(*w) for w in json.loads(raw[16 : 16 + size]))
            data = raw[16 + size :]
        elif raw[:4] == _PART_MAGIC_V1:
            rate, content = struct.unpack_from("<II", raw, 4)
            data = raw[12:]
        else:
            raise AudioError("bad part header")
        frames, spf, _ = mp3_frames(data)
    except (struct.error, ValueError, TypeError) as exc:
        raise AudioError(f"damaged part: {exc}") from exc
    return Mp3Part(
        data=data,
        sample_rate=rate,
        samples=frames * spf,
        content_samples=content,
        words=words,
    )
