"""Integrity on read and a full disk, in process (a real tmpfs for ENOSPC): a damaged stored
object is never served, is counted, and is read again; a full disk fails cleanly, evicts
cached audio first, and service resumes by itself when room returns."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import service.core.upkeep
from service.services import Services
from tests.fakes import Fakes, running_app, until, wait_ready

pytestmark = pytest.mark.anyio

TEXT = "安宁区召开党建工作会议，总结上半年全区基层党建工作的主要成效，部署下一步工作。"


def _audio_file(data_dir: Path, info: dict[str, object]) -> Path:
    return data_dir / "blobs" / "renders" / str(info["id"]) / f"{info['rendering']}.mp3"


def _damaged(services: Services) -> float:
    return sum(
        s.value
        for metric in services.metrics.damaged.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    )


async def _post_ready(client: httpx.AsyncClient, text: str = TEXT) -> dict[str, object]:
    r = await client.post("/v1/articles", json={"text": text})
    assert r.status_code in (200, 201), r.text
    return await wait_ready(client, str(r.json()["id"]))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
async def test_damaged_audio_on_disk_is_never_served_after_a_restart(
    tmp_path: Path, damage: str
) -> None:
    fakes = Fakes()
    async with running_app(tmp_path, fakes) as (client, _):
        info = await _post_ready(client)
        good = (await client.get(str(info["audio_url"]))).content
    path = _audio_file(tmp_path, info)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))

    async with running_app(tmp_path, fakes) as (client, services):
        r = await client.get(f"/v1/articles/{info['id']}/audio.mp3")
        # Never the damaged bytes: the reading again, streamed, then stored intact.
        assert r.content != bytes(raw)
        assert _damaged(services) == 1
        again = await wait_ready(client, str(info["id"]))
        stored = await client.get(str(again["audio_url"]))
    assert stored.content == good
    assert path.read_bytes() == good


async def test_the_scrubber_finds_damage_nobody_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.core.upkeep, "_UPKEEP_NAP_S", 0.05)
    fakes = Fakes()
    async with running_app(tmp_path, fakes, scrub_every_s=0.1) as (client, services):
        info = await _post_ready(client)
        path = _audio_file(tmp_path, info)
        good = path.read_bytes()
        path.write_bytes(good[:-100])
        await until(lambda: _damaged(services) >= 1, "the scrubber never noticed")
        await until(lambda: path.exists() and path.read_bytes() == good, "never read again")


@contextlib.contextmanager
def _tiny_disk(where: Path, megabytes: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
        capture_output=True,
    )
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {proc.stderr!r}")
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill the disk but `leave` bytes."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


async def test_a_full_disk_evicts_cached_audio_first(tmp_path: Path) -> None:
    with _tiny_disk(tmp_path / "disk", 4) as disk:
        fakes = Fakes()
        storage = f"file://{disk}/blobs"
        async with running_app(tmp_path / "data", fakes, storage_url=storage) as (client, _):
            old = await _post_ready(client, "旧文章。" + TEXT)
            _fill(disk, leave=4 * 1024)
            new = await _post_ready(client, "新文章。" + TEXT * 3)
            assert new["status"] == "ready"
            gone = (await client.get(f"/v1/articles/{old['id']}")).json()
    assert gone["status"] == "evicted"  # made room for the new reading


async def test_a_full_disk_fails_cleanly_and_service_resumes_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.core.upkeep, "_UPKEEP_NAP_S", 0.1)
    with _tiny_disk(tmp_path / "disk", 4) as disk:
        fakes = Fakes()
        storage = f"file://{disk}/blobs"
        async with running_app(tmp_path / "data", fakes, storage_url=storage) as (client, _):
            filler = _fill(disk, leave=16 * 1024)
            r = await client.post("/v1/articles", json={"text": TEXT * 3})
            assert r.status_code == 201
            article_id = r.json()["id"]
            info = await wait_ready(client, article_id)
            assert info["status"] == "failed"  # not stuck in "synthesizing"
            refused = await client.get(f"/v1/articles/{article_id}/audio.mp3")
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert not list((disk / "blobs" / ".tmp").glob("*"))  # no temporary file left
            filler.unlink()  # room again: nobody has to ask

            async def ready() -> bool:
                now = (await client.get(f"/v1/articles/{article_id}")).json()
                return bool(now["status"] == "ready")

            await until(ready, "service did not resume by itself", timeout=30)
            assert (await client.get(f"/v1/articles/{article_id}/audio.mp3")).status_code == 200
