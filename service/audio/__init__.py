"""Audio values and audio work: clips, MP3 parts and frames (pydub, lameenc, ffmpeg), the
speech formats OpenAI's endpoint offers, sentence and word timings with WebVTT, and podcast
episode audio (loudness, tags, stings). Pure functions over bytes; CPU work runs in threads
or worker processes chosen by the caller.

It may import `text` (alignment, cleaning), `runtime`, `config` and `errors`; never
`engines`, `store`, `core` or `http`.
"""
