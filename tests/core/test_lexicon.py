"""The lexicon API in process (fake engines): an entry changes the spoken form and the audio
of exactly the sentences holding the word, in new and finished articles, in the background,
for every article or one source's; editors' mistakes are refused with a problem."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.text.lexicon import homophone_spelling
from tests.fakes import Fakes, running_app, until, wait_ready
from tests.pagesite import Site, feed_answer, rss, serve_site

pytestmark = pytest.mark.anyio

KEY = "newsroom"
AUTH = {"Authorization": f"Bearer {KEY}"}
A = [
    "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效。",
    "会议指出，全区基层党组织覆盖率进一步提高，党员队伍结构持续优化。",
    "下一步，安宁区将继续推进城市基层党建，把组织优势转化为治理效能。",
    "与会企业表示，银行长期贷款利率保持稳定，为企业发展提供了有力支持。",  # 行长: no word
]
B = [
    "七里河区召开会议，总结上半年全区基层党建工作的主要成效和经验。",
    "会议要求各单位认真落实会议精神，结合实际抓好各项任务，确保取得实效。",
]
SAID = homophone_spelling("an1 ning2 qu1")


def _app(tmp_path: Path, fakes: Fakes, **more: object) -> Any:
    return running_app(tmp_path, fakes, api_keys=KEY, **more)  # type: ignore[arg-type]


async def _read(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    r = await client.post("/v1/articles", json={"text": text}, headers=AUTH)
    assert r.status_code in (200, 201), r.text
    return await wait_ready(client, r.json()["id"])


async def _put(client: httpx.AsyncClient, written: str, **body: object) -> httpx.Response:
    return await client.put(f"/v1/lexicon/{quote(written)}", json=body, headers=AUTH)


async def _reread(client: httpx.AsyncClient, article_id: str, old: str) -> dict[str, Any]:
    """The article once its new rendering is stored."""

    async def done() -> bool:
        info = (await client.get(f"/v1/articles/{article_id}")).json()
        return bool(info["rendering"] != old and info["rendering"] == info["render_version"])

    await until(done, "never read again")
    info: dict[str, Any] = (await client.get(f"/v1/articles/{article_id}")).json()
    return info


async def test_an_entry_rereads_exactly_the_sentences_holding_the_word(tmp_path: Path) -> None:
    fakes = Fakes()
    async with _app(tmp_path, fakes) as (client, _):
        a, b = await _read(client, "\n".join(A)), await _read(client, "\n".join(B))
        old_audio = (await client.get(f"/v1/articles/{a['id']}/audio.mp3")).content
        fakes.neural.calls.clear()
        fakes.neural.delay_s = 0.2  # the new reading takes a while

        r = await _put(client, "安宁区", spoken="an1 ning2 qu1")
        assert r.status_code == 201, r.text
        assert r.json() == {
            "written": "安宁区",
            "spoken": "an1 ning2 qu1",
            "source": None,
            "layer": "all",
            "homophones": SAID,
            "updated_at": r.json()["updated_at"],
        }
        assert (await _put(client, "行长", spoken="hang2 zhang3")).status_code == 201
        # Until the new audio is stored, listeners get the old one.
        meanwhile = await client.get(f"/v1/articles/{a['id']}/audio.mp3")
        assert meanwhile.content == old_audio
        new = await _reread(client, a["id"], a["rendering"])
        timings = (await client.get(new["timings_url"])).json()
        audio = (await client.get(f"/v1/articles/{a['id']}/audio.mp3")).content
        b_now = (await client.get(f"/v1/articles/{b['id']}")).json()
        await asyncio.sleep(0.3)  # nothing else is read meanwhile
    # Exactly the two sentences holding the word were spoken again, as the entry says.
    assert sorted(fakes.neural.calls) == sorted(
        [A[0].replace("安宁区", SAID), A[2].replace("安宁区", SAID)]
    )
    assert audio != old_audio
    assert [s["text"] for s in timings["sentences"]] == A  # captions keep the printed text
    spoken = [s["spoken"] for s in timings["sentences"]]
    assert spoken[0].startswith(SAID) and spoken[3] == A[3]
    assert b_now["rendering"] == b_now["render_version"] == b["rendering"]  # B: untouched


async def test_an_entry_put_while_the_article_is_read_again_is_not_lost(
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    async with _app(tmp_path, fakes) as (client, services):
        a = await _read(client, "\n".join(A))
        fakes.neural.delay_s = 0.5  # the new reading takes a while
        assert (await _put(client, "安宁区", spoken="an1 ning2 qu1")).status_code == 201
        await until(lambda: services.library.rendering.queue.get(a["id"]) is not None, "a reading")
        # A second entry the article holds, while the first one's reading is under way:
        # that reading is already out of date when it is stored, and is read again.
        assert (await _put(client, "党建", spoken="dang3 jian4")).status_code == 201
        final = await _reread(client, a["id"], a["rendering"])
        timings = (await client.get(final["timings_url"])).json()
    spoken = timings["sentences"][0]["spoken"]
    assert spoken.startswith(SAID) and "党建" not in spoken, spoken


async def test_a_new_article_is_read_with_the_entry_and_a_delete_takes_it_back(
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    fakes.neural.reads_pinyin = True  # type: ignore[attr-defined]  # like Kokoro's front end
    async with _app(tmp_path, fakes) as (client, _):
        assert (await _put(client, "安宁区", spoken="An1 ning2 qu1")).status_code == 201
        a = await _read(client, "\n".join(A))
        assert "{an1 ning2 qu1}召开党建工作会议，总结上半年全区基层党建工作的主要成效。" in (
            fakes.neural.calls
        )
        fakes.neural.calls.clear()
        r = await client.delete(f"/v1/lexicon/{quote('安宁区')}", headers=AUTH)
        assert r.status_code == 204
        back = await _reread(client, a["id"], a["rendering"])
        again = await client.delete(f"/v1/lexicon/{quote('安宁区')}", headers=AUTH)
    # Back as printed: sentences 0 and 2 spoken again, in the text's own words.
    assert sorted(fakes.neural.calls) == sorted([A[0], A[2]])
    assert back["rendering"] != a["rendering"]
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


async def test_entries_survive_a_restart_and_are_listed_by_layer(tmp_path: Path) -> None:
    lexicon_file = tmp_path / "lexicon.tsv"
    lexicon_file.write_text("兰州新区\t兰州新地区\n", encoding="utf-8")
    async with _app(tmp_path, Fakes(), lexicon_file=lexicon_file) as (client, _):
        assert (await _put(client, "茂蝶", spoken="mao4 die2")).status_code == 201
        changed = await _put(client, "茂蝶", spoken="mao2 die2")
        assert changed.status_code == 200 and changed.json()["spoken"] == "mao2 die2"
    async with _app(tmp_path, Fakes(), lexicon_file=lexicon_file) as (client, _):
        listed = (await client.get("/v1/lexicon")).json()["entries"]
    assert [(e["written"], e["spoken"], e["layer"]) for e in listed] == [
        ("兰州新区", "兰州新地区", "file"),
        ("茂蝶", "mao2 die2", "all"),
    ]


@pytest.mark.parametrize(
    ("written", "body", "status", "says"),
    [
        ("茂蝶", {"spoken": "mao die"}, 422, "pinyin with tone numbers"),
        ("茂蝶", {"spoken": "xyz1"}, 422, "not a Mandarin syllable"),
        ("茂蝶", {"spoken": "3个"}, 422, "Chinese characters or pinyin"),
        ("，。", {"spoken": "墨独"}, 422, "no letter"),
        ("茂蝶", {"spoken": "墨独", "source": "0" * 32}, 404, "no source"),
        ("茂蝶", {"spoken": "墨独", "source": "nope"}, 422, "source"),
        ("茂蝶", {"spoken": "墨独", "extra": 1}, 422, "extra"),
    ],
)
async def test_a_bad_entry_is_refused_with_a_problem(
    tmp_path: Path, written: str, body: dict[str, object], status: int, says: str
) -> None:
    async with _app(tmp_path, Fakes()) as (client, _):
        r = await _put(client, written, **body)
        listed = (await client.get("/v1/lexicon")).json()["entries"]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.text
    assert listed == []


async def test_writes_need_the_key(tmp_path: Path) -> None:
    async with _app(tmp_path, Fakes()) as (client, _):
        put = await client.put(f"/v1/lexicon/{quote('茂蝶')}", json={"spoken": "墨独"})
        delete = await client.delete(f"/v1/lexicon/{quote('茂蝶')}")
        read = await client.get("/v1/lexicon")
    assert put.status_code == delete.status_code == 401
    assert read.status_code == 200 and read.json() == {"entries": []}


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


async def test_a_source_entry_changes_only_that_sources_articles(
    tmp_path: Path, site: Site
) -> None:
    item_text = "".join(
        f"<p>{s}</p>"
        for s in [
            "七里河区今天召开新闻发布会，介绍了全年城市建设和民生工作的安排。",
            *(f"第{n}项工作：兰州市将继续推进城市更新，改善市民的居住条件。" for n in range(1, 7)),
        ]
    )
    site.answers["/rss.xml"] = feed_answer(
        rss(
            "<item><title>发布会</title><guid isPermaLink='false'>q1</guid>"
            f"<content:encoded>{html.escape(item_text)}</content:encoded></item>"
        ),
        '"v1"',
    )
    fakes = Fakes()
    async with _app(tmp_path, fakes, fetch_allow="127.0.0.1", source_poll_s=0.3) as (
        client,
        services,
    ):
        r = await client.post("/v1/sources", json={"feed_url": f"{site.url}/rss.xml"}, headers=AUTH)
        source = r.json()["id"]

        async def taken() -> bool:
            return bool((await client.get(f"/v1/sources/{source}")).json()["items"] == 1)

        await until(taken, "the item was never taken")
        (from_feed,) = services.registry.sources_of()
        fed = await wait_ready(client, from_feed)
        posted = await _read(client, "\n".join(B))
        fakes.neural.calls.clear()
        r = await _put(client, "七里河区", spoken="qi1 li3 he2 qu1", source=source)
        assert r.status_code == 201 and r.json()["layer"] == "source", r.text
        await _reread(client, from_feed, str(fed["rendering"]))
        mine = (await client.get(f"/v1/lexicon?source={source}")).json()["entries"]
        posted_now = (await client.get(f"/v1/articles/{posted['id']}")).json()
        removed = await client.delete(f"/v1/sources/{source}", headers=AUTH)
        after = (await client.get("/v1/lexicon")).json()["entries"]
    said = homophone_spelling("qi1 li3 he2 qu1")
    assert fakes.neural.calls == [f"{said}今天召开新闻发布会，介绍了全年城市建设和民生工作的安排。"]
    assert posted_now["rendering"] == posted_now["render_version"] == posted["rendering"]
    assert [e["written"] for e in mine] == ["七里河区"]
    assert removed.status_code == 204 and after == []  # its entries go with it


async def test_an_edit_of_the_lexicon_file_applies_within_seconds_without_a_restart(
    tmp_path: Path,
) -> None:
    lexicon_file = tmp_path / "lexicon.tsv"
    lexicon_file.write_text("兰州新区\t兰州新地区\n", encoding="utf-8")
    fakes = Fakes()
    async with _app(tmp_path, fakes, lexicon_file=lexicon_file) as (client, _):
        a, b = await _read(client, "\n".join(A)), await _read(client, "\n".join(B))
        fakes.neural.calls.clear()
        lexicon_file.write_text("兰州新区\t兰州新地区\n安宁区\tan1 ning2 qu1\n", encoding="utf-8")
        started = asyncio.get_running_loop().time()
        await _reread(client, a["id"], a["rendering"])
        took = asyncio.get_running_loop().time() - started
        listed = (await client.get("/v1/lexicon")).json()["entries"]
        # A broken edit keeps the entries as they were.
        lexicon_file.write_text("安宁区 no tab\n", encoding="utf-8")
        await asyncio.sleep(2.5)
        kept = (await client.get(f"/v1/articles/{a['id']}")).json()
        b_now = (await client.get(f"/v1/articles/{b['id']}")).json()
    assert took < 10
    assert sorted(fakes.neural.calls) == sorted(
        [A[0].replace("安宁区", SAID), A[2].replace("安宁区", SAID)]
    )
    assert ("安宁区", "file") in {(e["written"], e["layer"]) for e in listed}
    assert kept["rendering"] == kept["render_version"] != a["rendering"]
    assert b_now["rendering"] == b_now["render_version"] == b["rendering"]
