"""Settings, read from the environment with the LANGDU_ prefix."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_VOICES = Path(__file__).resolve().parent.parent / "voices"


class Settings(BaseSettings):
    """Every knob langdu has. Domain code receives plain values taken from here."""

    model_config = SettingsConfigDict(env_prefix="LANGDU_", frozen=True)

    voices_dir: Path = Field(default=_REPO_VOICES, description="directory of voice presets")
    default_voice: str = "cmn-offline"
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=64,
                         description="engine worker processes (offline engine)")
    sentence_pause_ms: int = Field(default=300, ge=0, le=5000)
    paragraph_pause_ms: int = Field(default=700, ge=0, le=10000)
    bitrate_kbps: int = Field(default=48, ge=8, le=320)


def get_settings() -> Settings:
    """Settings as the environment gives them now."""
    return Settings()
