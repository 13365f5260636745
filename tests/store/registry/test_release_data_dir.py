"""A data dir written by the release before Alembic is served as it was: same audio, same
episode, nothing read again."""

from __future__ import annotations

import pytest

from tests.fakes import Fakes, running_app, until, wait_ready
from tests.store.registry.test_migrations import as_release_database

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
