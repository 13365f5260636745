"""The voice catalog: one TOML preset per voice in voices/."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from service.engines.base import SpeechOptions, parse_pitch, parse_rate
from service.errors import OptionError, UnknownVoiceError, VoiceCatalogError

_REQUIRED = ("id", "engine", "engine_voice", "language", "gender", "description")


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice preset: which engine speaks, with which of its voices, at what default rate."""

    id: str
    engine: str
    engine_voice: str
    language: str
    gender: str
    description: str
    name: str = ""
    rate: str = "+0%"
    pitch: str = "+0Hz"
    licence: str = ""  # when the voice's model has terms of its own (non-commercial ...)
    source: str = ""  # where the model comes from
    engine_options: tuple[tuple[str, str], ...] = ()  # the preset's [options] table

    def options(self, *, rate: str | None = None, pitch: str | None = None) -> SpeechOptions:
        """Speech options for this voice, with the caller's rate/pitch over the preset's."""
        return SpeechOptions(
            voice=self.engine_voice,
            rate=rate or self.rate,
            pitch=pitch or self.pitch,
            extra=self.engine_options,
        )

    def public(self) -> dict[str, str]:
        """What /v1/voices and `langdu voices` show (not the engine's own options)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "engine_options"}


class VoiceCatalog:
    """All presets found in a directory, by id, in file-name order."""

    def __init__(self, voices: dict[str, Voice]) -> None:
        self._voices = voices

    @classmethod
    def load(cls, directory: Path) -> VoiceCatalog:
        """Read every `*.toml` in `directory`.

        Raises:
            VoiceCatalogError: a file is unreadable, lacks a field, or repeats an id.
        """
        known = {f.name for f in fields(Voice)}
        voices: dict[str, Voice] = {}
        files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
        if not files:
            raise VoiceCatalogError(f"no voice presets (*.toml) in {directory}")
        for path in files:
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise VoiceCatalogError(f"{path.name}: {exc}") from exc
            missing = [k for k in _REQUIRED if not isinstance(raw.get(k), str) or not raw[k]]
            if missing:
                raise VoiceCatalogError(f"{path.name}: missing {', '.join(missing)}")
            table = raw.get("options", {})
            if not isinstance(table, dict) or any(
                isinstance(v, dict | list) for v in table.values()
            ):
                raise VoiceCatalogError(f"{path.name}: [options] must map names to values")
            voice = Voice(
                **{k: str(v) for k, v in raw.items() if k in known and k != "engine_options"},
                engine_options=tuple(sorted((str(k), str(v)) for k, v in table.items())),
            )
            try:
                parse_rate(voice.rate)
                parse_pitch(voice.pitch, base_hz=120.0)
            except OptionError as exc:
                raise VoiceCatalogError(f"{path.name}: {exc}") from exc
            if voice.id in voices:
                raise VoiceCatalogError(f"{path.name}: voice id {voice.id!r} is used twice")
            voices[voice.id] = voice
        return cls(voices)

    def get(self, voice_id: str) -> Voice:
        """The preset called `voice_id`.

        Raises:
            UnknownVoiceError: no such preset.
        """
        try:
            return self._voices[voice_id]
        except KeyError:
            raise UnknownVoiceError(
                f"unknown voice {voice_id!r}; known voices: {', '.join(self._voices)}"
            ) from None

    def without(self, engine: str) -> VoiceCatalog:
        """The catalog without the voices of `engine`."""
        return VoiceCatalog({k: v for k, v in self._voices.items() if v.engine != engine})

    def __iter__(self) -> Iterator[Voice]:
        return iter(self._voices.values())

    def __len__(self) -> int:
        return len(self._voices)
