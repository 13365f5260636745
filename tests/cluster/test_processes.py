"""The cluster configuration as it is deployed: two `langdu serve` replicas and `langdu
worker`s as processes, on real PostgreSQL, Redis and S3 (SeaweedFS) servers, reading with
espeak-ng. Kill -9 a worker mid-reading or a replica mid-download: nothing is lost."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import Server, metric, start_server, start_worker
from tests.servers import fresh_postgres_database, redis_url, server_env

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]


class Deployment:
    def __init__(self, root: Path, env: dict[str, Any]) -> None:
        self.root, self.env = root, env
        self.replicas: list[Server] = []
        self.workers: list[Server] = []

    def replica(self) -> Server:
        server = start_server(self.root / f"replica-{len(self.replicas)}", **self.env)
        self.replicas.append(server)
        return server

    def worker(self) -> Server:
        worker = start_worker(self.root / f"worker-{len(self.workers)}", **self.env)
        self.workers.append(worker)
        return worker

    def readings(self) -> float:
        """Readings finished so far by the workers still running."""
        return sum(
            metric(w, "langdu_syntheses_total", outcome="ok")
            for w in self.workers
            if w.proc.poll() is None
        )

    def stop(self) -> None:
        for server in self.replicas + self.workers:
            server.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    import os

    endpoint = server_env("LANGDU_TEST_S3_ENDPOINT")
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=os.environ["LANGDU_TEST_S3_KEY"],
        AWS_SECRET_ACCESS_KEY=os.environ["LANGDU_TEST_S3_SECRET"],
    )
    try:
        for database in fresh_postgres_database():
            env = {
                "database_url": database,
                "storage_url": f"s3://{os.environ['LANGDU_TEST_S3_BUCKET']}/c-{uuid.uuid4().hex[:12]}",
                "queue_url": redis_url(),
                "queue_prefix": f"c{uuid.uuid4().hex[:12]}",
                "max_jobs": "1",
                # The sources test's feed is on loopback; polled every second.
                "fetch_allow": "127.0.0.1",
                "source_poll_s": "1",
            }
            deployed = Deployment(tmp_path_factory.mktemp("cluster"), env)
            try:
                deployed.replica()
                deployed.replica()
                deployed.worker()
                yield deployed
            finally:
                deployed.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _article(sample_txt: Path, tag: str, repeat: int = 1) -> str:
    """The sample page, made unique (and longer): a new article to read."""
    body = sample_txt.read_text(encoding="utf-8")
    return f"{tag}。\n" + "\n".join(f"第{i + 1}遍。{body}" for i in range(repeat))


def _wait_ready(server: Server, article_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info: dict[str, object] = httpx.get(f"{server.url}/v1/articles/{article_id}").json()
        if info["status"] in ("ready", "failed"):
            assert info["status"] == "ready", info
            return info
        time.sleep(0.1)
    raise AssertionError(f"article {article_id} was never read")


class Listener(threading.Thread):
    """Streams an article's audio from a replica while it is read; `first` is set at the
    first bytes."""

    def __init__(self, server: Server, article_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{server.url}/v1/articles/{article_id}/audio.mp3"
        self.first = threading.Event()
        self.data = bytearray()
        self.headers: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=120) as answer:
                self.headers = dict(answer.headers)
                for chunk in answer.iter_bytes():
                    self.data += chunk
                    self.first.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.first.set()


def test_an_article_posted_through_both_replicas_at_once_is_read_once(deployment, sample_txt):
    a, b = deployment.replicas
    before = deployment.readings()
    text = _article(sample_txt, "同时投稿")
    answers: list[httpx.Response] = []

    def post(server: Server) -> None:
        answers.append(httpx.post(f"{server.url}/v1/articles", json={"text": text}, timeout=60))

    threads = [threading.Thread(target=post, args=(s,)) for s in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [article_id] = {r.json()["id"] for r in answers}
    _wait_ready(a, article_id)
    time.sleep(1.0)  # a duplicate reading, if there were one, would be counted by now
    assert deployment.readings() - before == 1


def test_a_feed_is_polled_once_per_period_by_the_whole_cluster(deployment):
    from tests.pagesite import feed_answer, rss, serve_site

    item = (
        "<item><title>城市交通</title><guid>cluster-1</guid>"
        "<description>兰州市新开通三条公交线路。</description>"
        "<content:encoded>&lt;p&gt;"
        + "兰州市新开通三条公交线路，方便市民出行，新线路覆盖安宁区的主要居民区。" * 5
        + "&lt;/p&gt;</content:encoded></item>"
    )
    a, b = deployment.replicas
    with serve_site() as site:
        site.answers["/rss.xml"] = feed_answer(rss(item), '"1"')
        r = httpx.post(
            f"{a.url}/v1/sources", json={"feed_url": f"{site.url}/rss.xml", "publish": True}
        )
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "城市交通" in httpx.get(f"{b.url}/feed.xml").text:
                break
            time.sleep(0.5)
        else:
            state = httpx.get(f"{b.url}/v1/sources").text
            raise AssertionError(f"the item never reached the other replica's feed: {state}")
        start = len(site.statuses)
        time.sleep(5)
        polls = [s for p, s in site.statuses[start:] if p == "/rss.xml"]
        [source] = httpx.get(f"{b.url}/v1/sources").json()["sources"]
    # Both replicas poll (workers leave feeds to them); the deployment makes one
    # conditional GET per second.
    assert polls and set(polls) == {304}, polls
    assert len(polls) <= 7, f"{len(polls)} polls in 5 s at one per second"
    assert source["items"] == 1 and source["last_error"] is None


def test_a_listener_on_one_replica_hears_a_reading_posted_to_the_other(deployment, sample_txt):
    a, b = deployment.replicas
    article_id = httpx.post(
        f"{a.url}/v1/articles", json={"text": _article(sample_txt, "另一台", repeat=2)}
    ).json()["id"]
    listener = Listener(b, article_id)
    listener.start()
    listener.join(120)
    assert listener.error is None
    assert listener.headers.get("x-langdu-status") == "synthesizing"
    info = _wait_ready(a, article_id)
    finished = httpx.get(str(info["audio_url"]).replace(a.url, b.url), timeout=60).content
    assert bytes(listener.data) == finished


def test_listening_figures_are_the_same_whichever_replica_took_the_events(deployment):
    a, b = deployment.replicas
    text = "两台机器的收听统计。第二句在这里。第三句也在这里。"
    article_id = str(
        httpx.post(f"{a.url}/v1/articles", json={"text": text}, timeout=60).json()["id"]
    )
    _wait_ready(a, article_id)
    now = int(time.time() * 1000)
    for i, server in enumerate((a, b, a, b)):  # four sessions, split between the replicas
        batch = {
            "article": article_id,
            "session": f"{i:016x}",
            "events": [
                {"type": "play", "t": now},
                {
                    "type": "progress",
                    "t": now,
                    "heard": list(range(i % 2 + 1)),
                    "listened_ms": 1000,
                },
            ],
        }
        assert httpx.post(f"{server.url}/v1/events", json=batch, timeout=30).status_code == 202
    seen = [httpx.get(f"{s.url}/v1/articles/{article_id}/stats", timeout=30).json() for s in (b, a)]
    assert seen[0] == seen[1]
    assert (seen[0]["plays"], seen[0]["listened_ms"]) == (4, 4000)
    assert seen[0]["sentence_reach"][:2] == [1.0, 0.5]


def test_a_killed_worker_s_reading_is_finished_by_another_reusing_its_parts(deployment, sample_txt):
    a, b = deployment.replicas
    deployment.worker()  # a second worker, idle
    article_id = httpx.post(
        f"{a.url}/v1/articles", json={"text": _article(sample_txt, "工人倒下", repeat=4)}
    ).json()["id"]
    listener = Listener(b, article_id)
    listener.start()
    assert listener.first.wait(60) and listener.error is None
    reading = f"reading {article_id}:"
    [victim] = [w for w in deployment.workers if reading in w.log.read_text()]
    victim.stop(signal.SIGKILL)
    [rescuer] = [w for w in deployment.workers if w.proc.poll() is None]
    info = _wait_ready(a, article_id, timeout=180)
    listener.join(120)
    assert listener.error is None
    finished = httpx.get(str(info["audio_url"]), timeout=60).content
    assert bytes(listener.data) == finished  # the stream carried on, byte for byte
    assert reading in rescuer.log.read_text()
    assert metric(rescuer, "langdu_cache_total", kind="sentence", result="hit") > 0


def test_a_replica_killed_mid_download_is_resumed_by_range_on_the_other(deployment, sample_txt):
    a, b = deployment.replicas
    article_id = httpx.post(
        f"{a.url}/v1/articles", json={"text": _article(sample_txt, "下载中断")}
    ).json()["id"]
    info = _wait_ready(a, article_id)
    url = str(info["audio_url"])
    got = bytearray()
    with httpx.stream("GET", url, timeout=60) as answer:
        etag = answer.headers["etag"]
        for chunk in answer.iter_bytes(4096):
            got += chunk
            if len(got) >= 20_000:
                a.stop(signal.SIGKILL)
                break
    rest = httpx.get(
        url.replace(a.url, b.url),
        headers={"Range": f"bytes={len(got)}-", "If-Range": etag},
        timeout=60,
    )
    assert rest.status_code == 206
    whole = httpx.get(url.replace(a.url, b.url), timeout=60).content
    assert bytes(got) + rest.content == whole
    deployment.replicas[0] = start_server(a.data_dir.parent / "replica-0-again", **deployment.env)


def test_restarts_disturb_no_running_reading_and_nothing_lands_on_local_disks(
    deployment, sample_txt
):
    a, b = deployment.replicas
    before = deployment.readings()
    article_id = httpx.post(
        f"{a.url}/v1/articles", json={"text": _article(sample_txt, "重启", repeat=8)}
    ).json()["id"]
    seen: list[str] = []

    def watch() -> None:
        while not seen or seen[-1] not in ("ready", "failed"):
            seen.append(httpx.get(f"{a.url}/v1/articles/{article_id}").json()["status"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 60
    while "synthesizing" not in seen:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # While it is read: the other replica and an idle worker restart (a rolling deploy).
    b.stop()
    deployment.replicas[1] = start_server(b.data_dir.parent / "replica-1-again", **deployment.env)
    deployment.worker().stop()
    deployment.worker()
    watcher.join(120)
    assert seen[-1] == "ready"
    after = seen[seen.index("synthesizing") :]
    assert set(after) <= {"synthesizing", "ready"}, after  # never queued or failed again
    time.sleep(1.0)
    assert deployment.readings() - before == 1
    for server in deployment.replicas + deployment.workers:
        audio = [
            p
            for p in server.data_dir.rglob("*")
            if p.is_file() and p.suffix in (".mp3", ".part", ".json", ".db")
        ]
        assert audio == [], f"{server.data_dir} holds {audio}"


def test_a_worker_stopped_mid_reading_hands_it_over_at_once(deployment, sample_txt):
    a, b = deployment.replicas
    running = [w for w in deployment.workers if w.proc.poll() is None]
    while len(running) < 2:
        running.append(deployment.worker())
    article_id = httpx.post(
        f"{a.url}/v1/articles", json={"text": _article(sample_txt, "交接", repeat=6)}
    ).json()["id"]
    listener = Listener(b, article_id)
    listener.start()
    assert listener.first.wait(60) and listener.error is None
    reading = f"reading {article_id}:"
    [leaving] = [w for w in running if reading in w.log.read_text()]
    [staying] = [w for w in running if w is not leaving]
    stopped = time.monotonic()
    leaving.stop()  # SIGTERM: the reading goes back to the queue, no heartbeat to wait out
    deadline = stopped + 60
    while reading not in staying.log.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    handed_over = time.monotonic() - stopped
    info = _wait_ready(a, article_id, timeout=180)
    listener.join(120)
    assert listener.error is None
    assert bytes(listener.data) == httpx.get(str(info["audio_url"]), timeout=60).content
    assert handed_over < 10, f"taken over after {handed_over:.1f} s"  # a dead one takes ~15 s
