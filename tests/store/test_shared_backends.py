"""The service on the cluster's shared backends, PostgreSQL and S3 (real servers): articles
read, stored and served as on one machine, with nothing written to the local disk."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import decoded_samples
from tests.fakes import Fakes, running_app, until, wait_ready
from tests.servers import fresh_postgres_database, s3_environment

pytestmark = pytest.mark.anyio


@pytest.fixture
def shared(monkeypatch):
    storage = s3_environment(monkeypatch)
    for database in fresh_postgres_database():
        yield {"database_url": database, "storage_url": storage}


async def test_an_article_is_read_stored_and_served_from_postgres_and_s3(tmp_path, shared):
    data_dir = tmp_path / "replica"
    fakes = Fakes()
    body = {"text": "第一段。第二段有更多的字。", "title": "共享", "publish": True}
    async with running_app(data_dir, fakes, **shared) as (client, services):
        health = (await client.get("/healthz")).json()
        assert health["backends"] == {
            "database": {"kind": "postgresql", "ok": True},
            "storage": {"kind": "s3", "ok": True},
        }
        article_id = (await client.post("/v1/articles", json=body)).json()["id"]
        info = await wait_ready(client, article_id)
        assert info["status"] == "ready"
        whole = await client.get(str(info["audio_url"]))
        assert whole.status_code == 200 and decoded_samples(whole.content)[0] > 0
        etag = whole.headers["etag"]
        part = await client.get(str(info["audio_url"]), headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        again = await client.get(str(info["audio_url"]), headers={"If-None-Match": etag})
        assert again.status_code == 304
        timings = (await client.get(str(info["timings_url"]))).json()
        assert timings["sentences"]
        await until(
            lambda: getattr(services.registry.get(article_id), "episode_bytes", None), "episode"
        )
        keys = [k for k, _ in services.store.blobs.list()]
        assert any(k.startswith("renders/") for k in keys)
        assert any(k.startswith("episodes/") for k in keys)
        assert any(k.startswith("parts/") for k in keys)
    written = [p for p in data_dir.rglob("*") if p.is_file()] if data_dir.exists() else []
    assert written == [], "nothing of the article may land on the replica's disk"

    # Another replica (same database and bucket) serves the same bytes without reading it.
    other = Fakes()
    async with running_app(tmp_path / "replica-b", other, **shared) as (client, _):
        info_b = (await client.get(f"/v1/articles/{article_id}")).json()
        assert info_b["status"] == "ready" and info_b["rendering"] == info["rendering"]
        assert (await client.get(str(info_b["audio_url"]))).content == whole.content
    assert other.neural.calls == []


async def test_a_rendering_url_can_redirect_to_a_presigned_object(tmp_path, shared):
    fakes = Fakes()
    async with running_app(tmp_path, fakes, **shared, storage_redirect_s=600) as (client, _):
        article_id = (await client.post("/v1/articles", json={"text": "预签名。"})).json()["id"]
        info = await wait_ready(client, article_id)
        answer = await client.get(str(info["audio_url"]))
        assert answer.status_code == 307
        assert "X-Amz-Signature=" in answer.headers["location"]
        assert "max-age=300" in answer.headers["cache-control"]
        stable = await client.get(f"/v1/articles/{article_id}/audio.mp3")  # bytes, as before
        assert stable.status_code == 200
    async with httpx.AsyncClient() as s3:
        whole = await s3.get(answer.headers["location"])
        assert whole.status_code == 200 and whole.content == stable.content
        part = await s3.get(answer.headers["location"], headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == stable.content[10:20]
