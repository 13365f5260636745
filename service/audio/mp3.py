"""Audio: stitch chunk clips into sentence audio (pydub) and encode self-contained MP3 parts.

An article's MP3 is a plain concatenation of parts: one per sentence, and one of silence
for each pause. Each part is a complete LAME stream that starts from silence, so parts
join without clicks, can be cached per sentence, and can be streamed as soon as they are
encoded. The exact length of every part is known from its frame count, which is what
keeps the sentence timings true to the audio.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import io
import math
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.audio.clip import Clip, WordMark
from service.errors import AudioError

# LAME puts 576 + 529 samples of its own delay before the first input sample; players
# decode them as silence since the parts carry no gapless-playback tag.
ENCODER_DELAY = 1105
_SILENCE_DBFS = -50.0
_KEEP_SILENCE_MS = 40  # keep a little of the engine's own lead-in so onsets are not clipped


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """How parts are encoded: mono MP3 at the engine's sample rate."""

    sample_rate: int
    bitrate_kbps: int = 48
    quality: int = 7  # LAME's 0 (best, slowest) .. 9; 7 is transparent enough for speech
    target_dbfs: float = -18.0  # mean (RMS) level every sentence is brought to
    peak_dbfs: float = -1.0
    fade_ms: int = 12


@dataclass(frozen=True, slots=True)
class Mp3Part:
    """A self-contained MP3 byte string and where, in samples, its content sits."""

    data: bytes
    sample_rate: int
    samples: int  # what a decoder plays: frames x samples per frame
    content_samples: int  # the audio we encoded, starting ENCODER_DELAY samples in
    # Words heard in it: offsets into the sentence's spoken text, ms from the content start.
    words: tuple[WordMark, ...] = ()

    @property
    def duration_ms(self) -> float:
        """Playing time of the part."""
        return self.samples * 1000 / self.sample_rate


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel (no system package needed)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _pydub() -> Any:
    """pydub's AudioSegment, pointed at the ffmpeg shipped in the imageio-ffmpeg wheel."""
    with warnings.catch_warnings():
        # pydub warns at import when no ffmpeg is on PATH; we give it one right after.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # audioop, until Python 3.13
        from pydub import AudioSegment
    if AudioSegment.converter in ("ffmpeg", "avconv"):
        AudioSegment.converter = ffmpeg_exe()
    return AudioSegment


def warm_up() -> None:
    """Import the audio libraries, locate ffmpeg and render one short sentence now, not in
    the first sentence a listener waits for (its first render in a process is ~0.2 s
    slower: imports and first calls)."""
    rate = 24000
    tone = array.array("h", (round(8000 * math.sin(i / 8)) for i in range(rate // 5)))
    render_speech([Clip(pcm=tone.tobytes(), sample_rate=rate)], AudioFormat(sample_rate=rate))


def mp3_frames(data: bytes) -> tuple[int, int, int]:
    """Count the MPEG audio Layer III frames in `data`: (frames, samples per frame, rate).

    Raises:
        AudioError: the bytes are not a run of Layer III frames.
    """
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    kbps_v1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    kbps_v2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    pos = frames = spf = rate = 0
    n = len(data)
    while pos + 4 <= n:
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        br_index, sr_index = b2 >> 4, (b2 >> 2) & 3
        if (
            data[pos] != 0xFF
            or (b1 & 0xE0) != 0xE0
            or layer != 1
            or version == 1
            or br_index in (0, 15)
            or sr_index == 3
        ):
            raise AudioError(f"not an MP3 frame at byte {pos}")
        rate = rates[version][sr_index]
        kbps = (kbps_v1 if version == 3 else kbps_v2)[br_index]
        spf = 1152 if version == 3 else 576
        pos += spf // 8 * kbps * 1000 // rate + ((b2 >> 1) & 1)
        frames += 1
    if pos != n:
        raise AudioError("MP3 data ends inside a frame")
    return frames, spf, rate


def encode_part(pcm: bytes, fmt: AudioFormat) -> Mp3Part:
    """Encode 16-bit mono PCM as one self-contained MP3 part.

    Raises:
        AudioError: the encoder failed.
    """
    import lameenc

    try:
        enc = lameenc.Encoder()
        enc.set_bit_rate(fmt.bitrate_kbps)
        enc.set_in_sample_rate(fmt.sample_rate)
        enc.set_channels(1)
        enc.set_quality(fmt.quality)
        data = bytes(enc.encode(pcm)) + bytes(enc.flush())
    except Exception as exc:  # lameenc raises bare Exception/RuntimeError
        raise AudioError(f"MP3 encoding failed: {exc}") from exc
    frames, spf, _ = mp3_frames(data)
    return Mp3Part(
        data=data, sample_rate=fmt.sample_rate, samples=frames * spf, content_samples=len(pcm) // 2
    )


def silence_part(ms: int, fmt: AudioFormat) -> Mp3Part:
    """An MP3 part of (about) `ms` milliseconds of silence, for the pause between sentences."""
    # The previous part's padding and this part's encoder delay are silent too.
    n = max(0, round(ms * fmt.sample_rate / 1000) - ENCODER_DELAY)
    return encode_part(b"\0\0" * n, fmt)


def join_clips(clips: Sequence[Clip]) -> tuple[Any, list[float]]:
    """Stitch the clips of one sentence into one pydub AudioSegment (mono, 16-bit), and
    say where each clip's own time 0 falls in it (ms; its trimmed lead makes it negative).

    Raises:
        AudioError: no clips, or clips at different sample rates.
    """
    AudioSegment = _pydub()
    if not clips:
        raise AudioError("a sentence produced no audio")
    rate = clips[0].sample_rate
    if any(c.sample_rate != rate for c in clips):
        raise AudioError("clips of one sentence differ in sample rate")
    out = AudioSegment.empty().set_frame_rate(rate)
    origins: list[float] = []
    for clip in clips:
        whole = AudioSegment(data=clip.pcm, sample_width=2, frame_rate=rate, channels=1)
        seg, cut_ms = _trim(whole)
        origins.append(out.frame_count() * 1000 / rate - cut_ms)
        # Short fades where chunks meet, so a cut mid-sentence cannot click.
        out += seg.fade_in(5).fade_out(5) if len(clips) > 1 else seg
    return out, origins


def _trim(seg: Any) -> tuple[Any, int]:
    """Drop the engine's leading and trailing silence, keeping a short natural margin;
    also how many ms were cut from the start."""
    from pydub.silence import detect_leading_silence

    assert isinstance(seg, _pydub())
    step = 10
    lead = detect_leading_silence(seg, silence_threshold=_SILENCE_DBFS, chunk_size=step)
    end = len(seg)
    while end - step > lead and seg[end - step : end].dBFS < _SILENCE_DBFS:
        end -= step
    if lead >= end:
        return seg, 0  # all quiet: leave it as the engine made it
    start = max(0, lead - _KEEP_SILENCE_MS)
    return seg[start : min(len(seg), end + _KEEP_SILENCE_MS)], start


def render_speech(clips: Sequence[Clip], fmt: AudioFormat, offsets: Sequence[int] = ()) -> Mp3Part:
    """One sentence: stitch its clips, even out its loudness, fade its ends, encode it.
    `offsets` are where each clip's text starts in the sentence's spoken text: the words
    the clips time are placed on it (ms from the part's content start).

    Raises:
        AudioError: no audio, or the encoder failed.
    """
    seg, origins = join_clips(clips)
    assert isinstance(seg, _pydub())
    if seg.frame_rate != fmt.sample_rate:
        seg = seg.set_frame_rate(fmt.sample_rate)
    if seg.rms > 0:
        gain = min(fmt.target_dbfs - seg.dBFS, fmt.peak_dbfs - seg.max_dBFS)
        seg = seg.apply_gain(gain)
    seg = seg.fade_in(fmt.fade_ms).fade_out(fmt.fade_ms)
    total = seg.frame_count() * 1000 / fmt.sample_rate
    words = [
        WordMark(
            offset=base + w.offset,
            length=w.length,
            start_ms=round(min(max(origin + w.start_ms, 0.0), total), 1),
            end_ms=round(min(max(origin + w.end_ms, 0.0), total), 1),
        )
        for clip, origin, base in zip(clips, origins, offsets, strict=False)
        for w in clip.words
    ]
    part = encode_part(seg.raw_data, fmt)
    return dataclasses.replace(part, words=tuple(words))


def clip_from_mp3(data: bytes) -> Clip:
    """Decode MP3 bytes (an engine's output) to a mono 16-bit clip with pydub's ffmpeg.

    Raises:
        AudioError: ffmpeg cannot decode the bytes.
    """
    AudioSegment = _pydub()
    from pydub.exceptions import CouldntDecodeError

    try:
        # codec given: pydub then skips ffprobe, which the imageio-ffmpeg wheel lacks.
        seg = AudioSegment.from_file(io.BytesIO(data), format="mp3", codec="mp3")
    except (CouldntDecodeError, subprocess.CalledProcessError, OSError, IndexError) as exc:
        raise AudioError(f"cannot decode MP3 audio: {exc}") from exc
    seg = seg.set_channels(1).set_sample_width(2)
    return Clip(pcm=seg.raw_data, sample_rate=seg.frame_rate)


def ms_of(samples: int, rate: int) -> int:
    """Milliseconds of `samples` at `rate`, rounded down (timings never overshoot audio)."""
    return math.floor(samples * 1000 / rate)
