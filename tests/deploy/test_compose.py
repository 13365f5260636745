"""The production shape as a Compose file (docs/deploy/compose.yaml): valid against the
Compose specification's JSON schema, and every langdu process on the shared backends.

compose-spec.json is the specification's schema, copied from github.com/compose-spec/
compose-spec (schema/compose-spec.json at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6,
Apache-2.0): no container engine runs here, so the file is checked, never started.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docs" / "deploy" / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose-spec.json")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_the_compose_file_follows_the_specification(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert errors == [], [e.message for e in errors]


def test_a_broken_compose_file_is_caught(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["cache"]["ports"] = 8000  # a list of ports, not a number
    broken["services"]["worker"]["restart_policy"] = "always"  # not a service key
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) >= 2


def test_two_replicas_and_two_workers_on_the_shared_backends(compose):
    services = compose["services"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"]["command"][:2] == ["langdu", "serve"]
    assert services["worker"]["command"][:2] == ["langdu", "worker"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["LANGDU_DATABASE_URL"].startswith("postgresql://")
        assert env["LANGDU_STORAGE_URL"].startswith("s3://")
        assert env["LANGDU_QUEUE_URL"].startswith("redis://")
        assert env["LANGDU_RATE_LIMIT_STORAGE"].startswith("redis://")
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333"
        assert services[name]["build"]["args"]["LANGDU_EXTRAS"] == "cluster"
        assert "volumes" not in services[name]  # nothing on their own disks
        assert set(services[name]["depends_on"]) == {"postgres", "redis", "s3"}
    s3 = services["s3"]["command"]
    assert "mini" in s3 and "-master.telemetry=false" in s3
    # Only the cache is published; every image is pinned to a version.
    assert [n for n, s in services.items() if "ports" in s] == ["cache"]
    for name, service in services.items():
        image = service.get("image", "")
        assert re.search(r":[0-9][\w.-]*$", image) or image == "langdu:cluster", name


def test_the_image_installs_the_cluster_extra_when_asked():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ARG LANGDU_EXTRAS=""' in dockerfile
    assert 'pip install ".[$LANGDU_EXTRAS]"' in dockerfile
