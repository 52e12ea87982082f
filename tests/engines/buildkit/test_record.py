"""Build records are written only when provably true: envdsl's own code must not change mid-build."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from dsl.engines.buildkit._record import BuildFacts, write_record
from dsl.engines.buildkit._uptodate import code_fingerprint, docker_image_id, records_dir

pytestmark = pytest.mark.engine


@pytest.fixture
def facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_host: str, base_image: str) -> BuildFacts:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    build_file = tmp_path / "proj" / "build.envd"
    build_file.parent.mkdir()
    build_file.write_text("def build():\n    base(image='debian:bookworm')\n")
    image_id = docker_image_id(docker_host, base_image)
    assert image_id
    # as if the build had started a second from now: every file predates it
    return BuildFacts(started_ns=time.time_ns() + 1_000_000_000, files=[str(build_file)], includes=[],
                      context_dir=str(build_file.parent), local_sources=[], base_ref=base_image,
                      base_id_before=image_id, images={base_image: image_id},
                      report={"stdout": [], "metadata": {}}, code=code_fingerprint())


def test_a_record_keeps_the_code_fingerprint_the_build_started_with(facts, docker_host):
    assert write_record("same", {"k": 1}, facts, docker_host)
    assert (records_dir() / "same.json").exists()


def test_no_record_when_envdsl_was_edited_while_it_built(facts, docker_host):
    """Had the fingerprint been taken after the build, an edit during the build would mark an
    image made by the old code as current, and the next build would wrongly be skipped."""
    edited = dataclasses.replace(facts, code="fingerprint of the code before an edit")
    assert not write_record("edited", {"k": 1}, edited, docker_host)
    assert not (records_dir() / "edited.json").exists()
