"""Backends as a replica reports them: /healthz names each one, and a backend that is down
(or does not answer) makes it 503 with Retry-After, never a half answer."""

from __future__ import annotations

import time

import pytest

from service.errors import BackendUnavailableError
from tests.fakes import Fakes, running_app

pytestmark = pytest.mark.anyio


async def test_healthz_names_the_embedded_backends(tmp_path):
    async with running_app(tmp_path, Fakes()) as (client, _):
        health = (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["backends"] == {
        "database": {"kind": "sqlite", "ok": True},
        "storage": {"kind": "file", "ok": True},
    }


async def test_a_backend_that_is_down_makes_the_replica_unhealthy(tmp_path, monkeypatch):
    async with running_app(tmp_path, Fakes()) as (client, services):

        def down() -> None:
            raise BackendUnavailableError("the object store is unavailable; try again later")

        monkeypatch.setattr(services.store.blobs, "ping", down)
        answer = await client.get("/healthz")
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["backends"]["storage"] == {"kind": "file", "ok": False}
        assert body["backends"]["database"]["ok"] is True
        assert "object store is unavailable" in body["detail"]


async def test_a_backend_that_does_not_answer_counts_as_down(tmp_path, monkeypatch):
    async with running_app(tmp_path, Fakes()) as (client, services):
        monkeypatch.setattr(services.registry, "ping", lambda: time.sleep(5))
        began = time.monotonic()
        answer = await client.get("/healthz")
        assert answer.status_code == 503 and time.monotonic() - began < 4
        assert "database: no answer in 2 s" in answer.json()["detail"]
