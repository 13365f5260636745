"""An OpenAI-compatible speech server as an engine, for real: a second `langdu serve` on
loopback is the upstream of the first. The sample article is read through it; killed in
the middle of an article, the upstream is retried, then the fallback voice reads the
article from the start and it is marked degraded."""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import decoded_samples
from tests.server import Server, start_server

pytestmark = pytest.mark.server

REPO_VOICES = Path(__file__).resolve().parents[2] / "voices"


def _voices(directory: Path, upstream: Server) -> Path:
    directory.mkdir()
    shutil.copy(REPO_VOICES / "cmn-offline.toml", directory)
    (directory / "upstream.toml").write_text(
        f"""id = "upstream-alloy"
engine = "openai"
engine_voice = "alloy"
language = "zh-CN"
gender = "female"
name = "上游"
description = "Read by a second langdu on loopback, through its OpenAI endpoint."
[options]
base_url = "{upstream.url}/v1"
model = "tts-1"
api_key_env = "LANGDU_TEST_UPSTREAM_KEY"
""",
        encoding="utf-8",
    )
    return directory


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    for side in ("up", "main"):
        (tmp_path / side).mkdir()
    upstream = start_server(tmp_path / "up" / "data", api_keys="up-key")
    try:
        main = start_server(
            tmp_path / "main" / "data",
            voices_dir=str(_voices(tmp_path / "voices", upstream)),
            default_voice="upstream-alloy",
            fallback_voice="cmn-offline",
            test_upstream_key="up-key",
            upstream_attempts="3",
            upstream_timeout_s="10",
        )
    except BaseException:
        upstream.stop()
        raise
    try:
        yield main, upstream
    finally:
        main.stop()
        upstream.stop()


def _until_done(c: httpx.Client, article: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: dict[str, Any] = c.get(f"/v1/articles/{article}").json()
        if info["status"] in ("ready", "failed"):
            return info
        time.sleep(0.1)
    raise AssertionError(f"still {info['status']}")


def _speech_requests(upstream: Server) -> int:
    text = httpx.get(f"{upstream.url}/metrics").text
    found = re.findall(r'langdu_requests_total\{[^}]*route="/v1/audio/speech"[^}]*\} (\S+)', text)
    return sum(int(float(n)) for n in found)


def _post(c: httpx.Client, html: Path) -> str:
    r = c.post("/v1/articles", json={"html": html.read_text(encoding="utf-8")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_the_sample_article_is_read_through_the_upstream(
    pair: tuple[Server, Server], sample_html: Path
) -> None:
    main, upstream = pair
    with main.client() as c:
        info = _until_done(c, _post(c, sample_html))
        audio = c.get(info["audio_url"])
        timings = c.get(info["timings_url"]).json()
    assert info["status"] == "ready" and info["voice"] == "upstream-alloy"
    assert info["degraded"] is None
    assert _speech_requests(upstream) >= info["sentences"]  # a request per sentence at least
    samples, rate = decoded_samples(audio.content)
    assert samples / rate > 60 and len(timings["sentences"]) == info["sentences"]


def test_an_upstream_killed_mid_article_ends_in_the_fallback_voice(
    pair: tuple[Server, Server], sample_html: Path
) -> None:
    main, upstream = pair
    with main.client() as c:
        article = _post(c, sample_html)
        deadline = time.monotonic() + 60
        while _speech_requests(upstream) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        upstream.stop(signal.SIGKILL)  # mid-article: sentences still to be read
        info = _until_done(c, article)
        audio = c.get(info["audio_url"])
        log = main.log.read_text()
    assert info["status"] == "ready", info
    assert info["degraded"] == "cmn-offline" and info["voice"] == "upstream-alloy"
    assert "upstream-alloy failed" in log and "reading it with cmn-offline" in log
    samples, rate = decoded_samples(audio.content)
    assert samples / rate > 60
