"""Data dirs of earlier releases are served as they were: the release before Alembic's (same
audio, same episode, nothing read again), and the first release's, whose audio is moved
into the blob store at start."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fakes import Fakes, running_app, until, wait_ready
from tests.store.registry.test_migrations import _V1_TABLE, as_release_database

pytestmark = pytest.mark.anyio


async def test_a_release_data_dir_keeps_serving_its_audio_and_episode(tmp_path):
    fakes = Fakes()
    body = {"text": "第一段。第二段有更多的字。", "title": "旧闻", "publish": True}
    async with running_app(tmp_path, fakes) as (client, services):
        article_id = (await client.post("/v1/articles", json=body)).json()["id"]
        info = await wait_ready(client, article_id)
        audio = (await client.get(str(info["audio_url"]))).content
        await until(
            lambda: getattr(services.registry.get(article_id), "episode_bytes", None), "an episode"
        )
        feed = (await client.get("/feed.xml")).text
        assert f"/v1/articles/{article_id}/episode.mp3" in feed
    as_release_database(tmp_path / "langdu.db")

    again = Fakes()
    async with running_app(tmp_path, again) as (client, _):
        info_after = (await client.get(f"/v1/articles/{article_id}")).json()
        assert info_after["status"] == "ready"
        assert info_after["rendering"] == info["rendering"]
        assert (await client.get(str(info_after["audio_url"]))).content == audio
        assert (await client.get("/feed.xml")).text == feed
    assert again.neural.calls == [] and again.offline.calls == []


def _first_release_dir(data: Path, made: dict[str, bytes]) -> dict[str, str]:
    """A data dir as the first release (late November) left it: the v1 articles table,
    finished audio under audio/articles/, an episode under audio/episodes/, old parts."""
    names = ("kept", "quiet", "stray", "broken")
    ids = {name: letter * 32 for name, letter in zip(names, "abcd", strict=True)}
    db = sqlite3.connect(data / "langdu.db")
    db.execute(_V1_TABLE)
    for column in ("feed_at TEXT", "episode_bytes INTEGER", "episode_ms INTEGER", "degraded TEXT"):
        db.execute(f"ALTER TABLE articles ADD COLUMN {column}")  # grown by late November
    for name, published in (("kept", 1), ("quiet", 0), ("broken", 0)):
        db.execute(
            "INSERT INTO articles (id, title, url, voice, rate, pitch, status, sentences,"
            " published_at, created_at, updated_at, published, episode_ms)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ids[name],
                name,
                None,
                "fake-a",
                "+0%",
                "+0Hz",
                "ready",
                json.dumps([[0, "第一段。"], [1, "第二段有更多的字。"]], ensure_ascii=False),
                "2026-11-20T09:00:00+08:00",
                "2026-11-20T00:00:00+00:00",
                "2026-11-20T00:00:00+00:00",
                published,
                1234,
            ),
        )
    db.commit()
    db.close()
    old = data / "audio"
    for sub in ("articles", "episodes", "parts/ab", "tmp"):
        (old / sub).mkdir(parents=True)
    for name in ("kept", "quiet", "stray", "broken"):
        (old / "articles" / f"{ids[name]}.mp3").write_bytes(made["audio"])
        (old / "articles" / f"{ids[name]}.json").write_bytes(made["timings"])
        (old / "articles" / f"{ids[name]}.vtt").write_text("WEBVTT\n")
    (old / "articles" / f"{ids['broken']}.json").write_text("{not json")
    (old / "episodes" / f"{ids['kept']}.mp3").write_bytes(made["episode"])
    (old / "parts" / "ab" / "ab12.part").write_bytes(b"LDP1 old part")
    (old / "tmp" / "x.mp3.123").write_bytes(b"half written")
    return ids


async def test_a_first_release_data_dir_is_moved_into_the_blob_store(tmp_path: Path) -> None:
    # Real audio, timings and a tagged episode, as langdu makes them.
    maker = tmp_path / "maker"
    body = {"text": "第一段。第二段有更多的字。", "title": "旧闻", "publish": True}
    async with running_app(maker, Fakes()) as (client, services):
        article_id = (await client.post("/v1/articles", json=body)).json()["id"]
        info = await wait_ready(client, article_id)
        made = {
            "audio": (await client.get(str(info["audio_url"]))).content,
            "timings": (await client.get(str(info["timings_url"]))).content,
        }
        await until(lambda: services.registry.get(article_id).episode_bytes, "an episode")  # type: ignore[union-attr]
        made["episode"] = (await client.get(f"/v1/articles/{article_id}/episode.mp3")).content
    data = tmp_path / "data"
    data.mkdir()
    ids = _first_release_dir(data, made)

    fakes = Fakes()
    async with running_app(data, fakes) as (client, services):
        # From the first request: the same audio, timings and episode, and in the feed.
        kept = (await client.get(f"/v1/articles/{ids['kept']}")).json()
        assert kept["status"] == "ready" and kept["rendering"].startswith("first-release-")
        assert (await client.get(kept["audio_url"])).content == made["audio"]
        assert (await client.get(kept["timings_url"])).content == made["timings"]
        episode = await client.get(f"/v1/articles/{ids['kept']}/episode.mp3")
        assert episode.status_code == 200 and episode.content == made["episode"]
        assert f"/v1/articles/{ids['kept']}/episode.mp3" in (await client.get("/feed.xml")).text
        rec = services.registry.get(ids["kept"])
        assert rec is not None and rec.episode_ms is not None and rec.episode_ms > 500
        # Verified by digest: the index holds what was moved.
        key = f"renders/{ids['kept']}/{kept['rendering']}.mp3"
        size, digest = services.registry.blob_digest(key)  # type: ignore[misc]
        assert (size, digest) == (len(made["audio"]), hashlib.sha256(made["audio"]).hexdigest())
        quiet = (await client.get(f"/v1/articles/{ids['quiet']}")).json()
        assert quiet["status"] == "ready"
        # Timings that do not check out are not moved; that article is read again.
        broken = (await client.get(f"/v1/articles/{ids['broken']}")).json()
        assert broken["rendering"] is None or not broken["rendering"].startswith("first-")
    old = data / "audio"
    left = [p.name for p in old.rglob("*") if p.is_file() and p.name != ".moving"]
    assert sorted(left) == sorted(f"{ids['broken']}.{kind}" for kind in ("mp3", "json", "vtt"))
    # Moved once: a second start finds nothing more to move and changes nothing.
    async with running_app(data, Fakes()) as (client, _):
        again = (await client.get(f"/v1/articles/{ids['kept']}")).json()
        assert again["rendering"] == kept["rendering"]
