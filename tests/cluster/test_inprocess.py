"""The cluster configuration's logic in one process: replicas that queue readings on Redis
(a real server) and a worker that reads them, sharing one registry and blob folder."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.core.cluster import Worker
from service.runtime.metrics import Metrics
from service.services import Services, close_services, open_services
from service.store.registry import Priority
from service.text.lexicon import homophone_spelling
from tests.conftest import decoded_samples
from tests.fakes import Fakes, running_app, settings, until, wait_ready
from tests.servers import redis_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(tmp_path) -> dict[str, object]:
    """Settings every machine of one test deployment shares."""
    return {
        "queue_url": redis_url(),
        "queue_prefix": f"t{uuid.uuid4().hex[:12]}",
        "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
        "storage_url": (tmp_path / "blobs").as_uri(),
    }


@contextlib.asynccontextmanager
async def running_worker(
    data_dir: Path, fakes: Fakes, **overrides: object
) -> AsyncIterator[Services]:
    config = settings(data_dir, **overrides)
    services = await open_services(config, Metrics(), fakes.factories())
    assert services.work is not None
    rendering = services.library.rendering
    worker = Worker(
        services.work,
        rendering.run,
        slots=config.max_jobs,
        episode=services.library.make_episode,
        outdated=lambda: rendering.outdated,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield services
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close_services(services)


TEXT = "第一句话在这里。第二句话更长一些，有逗号。第三句话结束了文章。"


async def test_a_reading_posted_to_one_replica_streams_through_another(tmp_path, cluster):
    a, b, w = Fakes(), Fakes(), Fakes()
    w.neural.delay_s = 0.2  # slow enough to listen while it reads
    async with (
        running_app(tmp_path / "a", a, **cluster) as (client_a, _),
        running_app(tmp_path / "b", b, **cluster) as (client_b, _),
    ):
        article_id = (await client_a.post("/v1/articles", json={"text": TEXT})).json()["id"]
        info = (await client_b.get(f"/v1/articles/{article_id}")).json()
        assert info["status"] == "queued"  # nobody reads it yet: no worker
        async with running_worker(tmp_path / "w", w, **cluster):
            live = await client_b.get(f"/v1/articles/{article_id}/audio.mp3")
            assert live.status_code == 200
            assert live.headers["x-langdu-status"] == "synthesizing"  # followed as it was read
            info = await wait_ready(client_a, article_id)
            finished = await client_b.get(str(info["audio_url"]))
            assert live.content == finished.content
            timings = (await client_b.get(f"/v1/articles/{article_id}/timings.json")).json()
            assert len(timings["sentences"]) == 3
    assert a.neural.calls == [] and b.neural.calls == []  # replicas never read
    assert sorted(w.neural.calls) == sorted(set(w.neural.calls))  # each chunk read once
    assert len(w.neural.calls) >= 3


async def test_the_same_article_posted_to_both_replicas_at_once_is_read_once(tmp_path, cluster):
    a, b, w = Fakes(), Fakes(), Fakes()
    async with (
        running_app(tmp_path / "a", a, **cluster) as (client_a, _),
        running_app(tmp_path / "b", b, **cluster) as (client_b, _),
        running_worker(tmp_path / "w", w, **cluster, max_jobs=2),
    ):
        posts = await asyncio.gather(
            *(c.post("/v1/articles", json={"text": TEXT}) for c in (client_a, client_b) * 3)
        )
        [article_id] = {p.json()["id"] for p in posts}
        await wait_ready(client_a, article_id)
        await asyncio.gather(
            *(c.get(f"/v1/articles/{article_id}/audio.mp3") for c in (client_a, client_b))
        )
    assert len(w.neural.calls) == len(set(w.neural.calls)) >= 3  # one reading, no chunk twice


async def test_a_client_s_rate_is_counted_across_replicas(tmp_path, cluster):
    shared = {
        **cluster,
        "rate_limit_storage": cluster["queue_url"],
        "rate_limit_writes": "3/minute",
    }
    async with (
        running_app(tmp_path / "a", Fakes(), **shared) as (client_a, _),
        running_app(tmp_path / "b", Fakes(), **shared) as (client_b, _),
    ):
        codes = []
        for i, client in enumerate((client_a, client_b, client_a, client_b)):
            answer = await client.post("/v1/articles", json={"text": f"第{i}篇。"})
            codes.append(answer.status_code)
        assert codes == [201, 201, 201, 429]
        assert int(answer.headers["retry-after"]) > 0


async def test_in_a_rolling_deploy_the_newest_deployment_wins(tmp_path, cluster):
    """Two deployments with different rules (a lexicon) share the cluster: the newer one
    re-renders the older one's audio once; the older serves it and never reads it back."""
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("长一些\t更长\n", encoding="utf-8")
    old, old_worker, new, new_worker = Fakes(), Fakes(), Fakes(), Fakes()
    async with (
        running_app(tmp_path / "a", old, **cluster) as (client_a, services_a),
        running_worker(tmp_path / "wa", old_worker, **cluster) as worker_a,
    ):
        article_id = (await client_a.post("/v1/articles", json={"text": TEXT})).json()["id"]
        first = (await wait_ready(client_a, article_id))["rendering"]
        read_by_old = len(old_worker.neural.calls)
        newer = {**cluster, "lexicon_file": lexicon}
        async with (
            running_app(tmp_path / "b", new, **newer) as (client_b, services_b),
            running_worker(tmp_path / "wb", new_worker, **newer),
        ):
            for services in (services_a, worker_a):  # they look every 15 s; now, for the test
                assert await services.library.rendering.check_deployment()
            assert not await services_b.library.rendering.check_deployment()
            # The old replica serves what is stored and queues nothing.
            assert (await client_a.get(f"/v1/articles/{article_id}/audio.mp3")).status_code == 200
            assert services_a.registry.get(article_id).work is None  # type: ignore[union-attr]
            # The new one serves it too, and has it read again in its own rules.
            assert (await client_b.get(f"/v1/articles/{article_id}/audio.mp3")).status_code == 200
            await until(
                lambda: services_b.registry.get(article_id).rendering != first,  # type: ignore[union-attr]
                "the newest deployment's rendering",
            )
            second = services_b.registry.get(article_id).rendering  # type: ignore[union-attr]
            for client in (client_a, client_b, client_a):
                assert (await client.get(f"/v1/articles/{article_id}")).json()[
                    "rendering"
                ] == second
                await client.get(f"/v1/articles/{article_id}/audio.mp3")
            await asyncio.sleep(0.5)
            assert services_b.registry.get(article_id).rendering == second  # type: ignore[union-attr]
            # ... and the old replica, seeing audio of rules it does not know, queued nothing.
            assert services_a.registry.get(article_id).work is None  # type: ignore[union-attr]
            assert services_a.work is not None
            assert await services_a.work.in_hand(Priority.BACKGROUND) == []
    assert len(old_worker.neural.calls) == read_by_old  # the old deployment read nothing back
    assert any("更长" in call for call in new_worker.neural.calls)


async def test_periodic_work_runs_once_for_the_whole_cluster(tmp_path, cluster, monkeypatch):
    async with (
        running_app(tmp_path / "a", Fakes(), **cluster) as (_, services_a),
        running_app(tmp_path / "b", Fakes(), **cluster) as (_, services_b),
    ):
        scrubbed: list[str] = []

        def scrub(*, after: str, max_bytes: int) -> tuple[str, int]:
            scrubbed.append(after)
            return "k1", 0

        for services in (services_a, services_b):
            monkeypatch.setattr(services.store, "scrub", scrub)
        upkeeps = [s.library.upkeep for s in (services_a, services_b)]
        cursors = await asyncio.gather(*(u._scrub("") for u in upkeeps))
        assert len(scrubbed) == 1  # one of the two, not both
        assert sorted(cursors) == ["", "k1"]
        assert services_a.work is not None
        assert await services_a.work.value("scrub") == "k1"  # the next one carries on there
        due = await asyncio.gather(*(u._upgrades_due() for u in upkeeps))
        assert due == [[], []]
        assert await services_a.work.once("upgrades", 1.0) is False  # one of them looked


async def test_a_backend_that_goes_down_is_a_503_with_retry_after_not_a_half_answer(
    tmp_path, cluster
):
    import redis.asyncio

    async with running_app(tmp_path / "a", Fakes(), **cluster) as (client, services):
        assert (await client.get("/healthz")).json()["backends"]["queue"] == {
            "kind": "redis",
            "ok": True,
        }
        assert services.work is not None
        alive = services.work.redis
        services.work.redis = redis.asyncio.from_url(
            "redis://127.0.0.1:1/0", socket_connect_timeout=1
        )
        try:
            answer = await client.post("/v1/articles", json={"text": "队列不在了。"})
            assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
            assert answer.headers["content-type"] == "application/problem+json"
            assert "queue is unavailable" in answer.json()["detail"]
            health = await client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["backends"]["queue"] == {"kind": "redis", "ok": False}
        finally:
            await services.work.redis.aclose()
            services.work.redis = alive
        answer = await client.post("/v1/articles", json={"text": "队列回来了。"})
        assert answer.status_code == 201  # back as soon as the backend is


def test_a_database_out_of_reach_is_reported_as_unavailable():
    from service.errors import BackendUnavailableError
    from service.store.registry import connect

    with pytest.raises(BackendUnavailableError, match="database is unavailable"):
        connect("postgresql://postgres@127.0.0.1:1/langdu")


def test_an_object_store_out_of_reach_is_reported_as_unavailable(monkeypatch):
    from service.errors import BackendUnavailableError
    from service.store.blobs import open_store

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    blobs = open_store("s3://langdu/x")
    with pytest.raises(BackendUnavailableError, match="object store is unavailable"):
        blobs.ping()
    with pytest.raises(BackendUnavailableError):
        blobs.get("renders/a/r.mp3")


async def test_a_replica_asks_the_workers_for_podcast_episodes(tmp_path, cluster):
    async with (
        running_app(tmp_path / "a", Fakes(), **cluster) as (client_a, services_a),
        running_app(tmp_path / "b", Fakes(), **cluster) as (client_b, services_b),
        running_worker(tmp_path / "w", Fakes(), **cluster) as worker,
    ):
        made_by: list[str] = []
        for name, services in (("a", services_a), ("b", services_b), ("w", worker)):
            episodes = services.library._ctx.episodes
            make = episodes._make

            async def counted(article_id: str, name: str = name, make=make) -> None:
                made_by.append(name)
                await make(article_id)

            episodes._make = counted  # type: ignore[method-assign]
        body = {"text": TEXT, "publish": True, "category": "news"}
        article_id = (await client_a.post("/v1/articles", json=body)).json()["id"]
        await wait_ready(client_a, article_id)
        await until(
            lambda: getattr(services_b.registry.get(article_id), "episode_bytes", None), "episode"
        )
        feed = (await client_b.get("/feed.xml")).text
        assert f"/v1/articles/{article_id}/episode.mp3" in feed
        episode = await client_b.get(f"/v1/articles/{article_id}/episode.mp3")
        assert episode.status_code == 200 and decoded_samples(episode.content)[0] > 0
        assert set(made_by) == {"w"}  # made by the worker only, never by a replica


async def test_a_listener_cut_on_one_replica_is_told_where_to_resume_by_another(tmp_path, cluster):
    w = Fakes()
    w.neural.delay_s = 0.05
    w.neural.fail = lambda text: "第三句" in text  # the last sentence fails: fallback voice
    async with (
        running_app(tmp_path / "a", Fakes(), **cluster) as (client_a, _),
        running_app(tmp_path / "b", Fakes(), **cluster) as (client_b, _),
        running_worker(tmp_path / "w", w, **cluster),
    ):
        article_id = (await client_a.post("/v1/articles", json={"text": TEXT})).json()["id"]
        me = {"listener": "player-0001"}
        async with client_b.stream(
            "GET", f"/v1/articles/{article_id}/audio.mp3", params=me
        ) as answer:
            heard = b"".join([chunk async for chunk in answer.aiter_bytes()])
        info = await wait_ready(client_a, article_id)
        mine = (await client_a.get(f"/v1/articles/{article_id}", params=me)).json()
        timings = (await client_a.get(f"/v1/articles/{article_id}/timings.json", params=me)).json()
        other = (
            await client_a.get(f"/v1/articles/{article_id}", params={"listener": "player-0002"})
        ).json()
    assert heard and decoded_samples(heard)[1] == 24000  # the neural voice, cut cleanly
    assert info["degraded"] == "offline-a"
    assert mine["resume_at"] == timings["resume_at"] and 1 <= mine["resume_at"] <= 2
    assert other["resume_at"] is None


async def test_a_lexicon_entry_put_on_one_replica_is_read_by_the_worker_and_seen_by_all(
    tmp_path, cluster
):
    """Entries live in the shared registry: the replica that took the PUT queues the
    article on the cluster's queue, the worker reads it with the entry, and the other
    replica's render version agrees (it looks at the lexicon's revision)."""
    a, b, w = Fakes(), Fakes(), Fakes()
    async with (
        running_app(tmp_path / "a", a, **cluster) as (client_a, _),
        running_app(tmp_path / "b", b, **cluster) as (client_b, _),
        running_worker(tmp_path / "w", w, **cluster),
    ):
        article_id = (await client_a.post("/v1/articles", json={"text": TEXT})).json()["id"]
        first = (await wait_ready(client_a, article_id))["rendering"]
        w.neural.calls.clear()
        r = await client_a.put("/v1/lexicon/%E9%80%97%E5%8F%B7", json={"spoken": "dou4 hao4"})
        assert r.status_code == 201, r.text

        async def reread() -> bool:
            info = (await client_b.get(f"/v1/articles/{article_id}")).json()
            return bool(info["rendering"] != first and info["rendering"] == info["render_version"])

        await until(reread, "never read again with the entry")
    said = homophone_spelling("dou4 hao4")
    assert w.neural.calls == [f"第二句话更长一些，有{said}。"]  # the one sentence holding it
    assert a.neural.calls == b.neural.calls == []  # replicas read nothing themselves
