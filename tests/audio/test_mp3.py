"""Audio parts: exact lengths, loudness, joins, and real MP3 that ffmpeg decodes."""

from __future__ import annotations

import array
import math

import pytest

from service.audio.mp3 import (
    ENCODER_DELAY,
    AudioFormat,
    clip_from_mp3,
    encode_part,
    mp3_frames,
    render_speech,
    silence_part,
)
from service.engines.base import Clip
from service.errors import AudioError
from tests.conftest import decoded_pcm, decoded_samples

RATE = 22050
FMT = AudioFormat(sample_rate=RATE)


def _tone(ms: int, amplitude: float, *, lead_ms: int = 0, tail_ms: int = 0) -> Clip:
    n = RATE * ms // 1000
    samples = array.array("h", [0] * (RATE * lead_ms // 1000))
    samples.extend(
        int(amplitude * 32767 * math.sin(2 * math.pi * 220 * i / RATE)) for i in range(n)
    )
    samples.extend([0] * (RATE * tail_ms // 1000))
    return Clip(samples.tobytes(), RATE)


def _rms_dbfs(pcm: bytes) -> float:
    a = array.array("h")
    a.frombytes(pcm)
    rms = math.sqrt(sum(x * x for x in a) / len(a))
    return 20 * math.log10(rms / 32768)


def test_part_length_is_exact_and_matches_what_ffmpeg_decodes():
    part = encode_part(_tone(1000, 0.5).pcm, FMT)
    frames, spf, rate = mp3_frames(part.data)
    assert (spf, rate) == (576, RATE)
    samples, decoded_rate = decoded_samples(part.data)
    assert decoded_rate == RATE
    assert samples == part.samples == frames * spf
    assert part.samples >= ENCODER_DELAY + part.content_samples


def test_concatenated_parts_decode_as_one_stream_with_summed_length():
    parts = [
        encode_part(_tone(700, 0.4).pcm, FMT),
        silence_part(300, FMT),
        encode_part(_tone(400, 0.4).pcm, FMT),
    ]
    samples, _ = decoded_samples(b"".join(p.data for p in parts))
    assert samples == sum(p.samples for p in parts)
    assert abs(parts[1].duration_ms - 300) < 30


def test_sentences_are_brought_to_one_loudness():
    quiet = render_speech([_tone(800, 0.05)], FMT)
    loud = render_speech([_tone(800, 0.9)], FMT)
    a, b = _rms_dbfs(decoded_pcm(quiet.data)), _rms_dbfs(decoded_pcm(loud.data))
    assert abs(a - b) < 1.0
    assert abs(a - FMT.target_dbfs) < 4  # the pauses inside a part pull the mean down a little


def test_engine_silence_is_trimmed_and_chunks_are_joined_in_order():
    one = render_speech([_tone(500, 0.5, lead_ms=400, tail_ms=600)], FMT)
    ms = one.content_samples * 1000 / RATE
    assert 500 <= ms < 650
    two = render_speech([_tone(500, 0.5), _tone(300, 0.5)], FMT)
    assert 780 <= two.content_samples * 1000 / RATE <= 830


def test_joins_have_no_clicks():
    part = render_speech([_tone(300, 0.8), _tone(300, 0.8)], FMT)
    a = array.array("h")
    a.frombytes(decoded_pcm(part.data))
    # The first and last milliseconds fade from/to silence.
    start = ENCODER_DELAY
    assert max(abs(x) for x in a[start : start + 20]) < 0.3 * 32767


def test_mp3_frames_rejects_garbage():
    with pytest.raises(AudioError):
        mp3_frames(b"ID3 this is not audio")
    part = encode_part(_tone(100, 0.5).pcm, FMT)
    with pytest.raises(AudioError, match="ends inside a frame"):
        mp3_frames(part.data[:-3])


def test_an_mp3_clip_decodes_with_the_bundled_ffmpeg():
    part = encode_part(_tone(500, 0.5).pcm, FMT)
    clip = clip_from_mp3(part.data)
    assert clip.sample_rate == RATE
    assert abs(len(clip.pcm) // 2 - part.samples) <= 1152
    with pytest.raises(AudioError):
        clip_from_mp3(b"not an mp3 at all" * 10)


def test_no_clips_is_an_error():
    with pytest.raises(AudioError):
        render_speech([], FMT)
