"""Build records are written only when provably true: envdsl's own code must not change mid-build."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from tests.engines.buildkit._fake_registry import DIGEST, OTHER

from dsl.engines.buildkit._image_sources import ImageStates, image_sources
from dsl.engines.buildkit._record import BuildFacts, write_record
from dsl.engines.buildkit._uptodate import check, code_fingerprint, docker_image_id, record_key, records_dir

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
                      report={"stdout": [], "metadata": {}}, code=code_fingerprint(), sources_before={})


def test_a_record_keeps_the_code_fingerprint_the_build_started_with(facts, docker_host):
    assert write_record("same", {"k": 1}, facts, docker_host)
    assert (records_dir() / "same.json").exists()


def test_no_record_when_envdsl_was_edited_while_it_built(facts, docker_host):
    """Had the fingerprint been taken after the build, an edit during the build would mark an
    image made by the old code as current, and the next build would wrongly be skipped."""
    edited = dataclasses.replace(facts, code="fingerprint of the code before an edit")
    assert not write_record("edited", {"k": 1}, edited, docker_host)
    assert not (records_dir() / "edited.json").exists()


INPUTS = {"k": 1, "ca_bundle": ""}


def from_registry(facts: BuildFacts, ref: str, resolved: str) -> BuildFacts:
    """The facts of a build whose base was not in dockerd's store (BuildKit pulled it)."""
    return dataclasses.replace(facts, base_ref=ref, base_id_before=None, base_digest=resolved)


def test_a_registry_base_is_recorded_by_digest_and_checked_with_one_head(facts, docker_host, reg):
    ref = f"{reg.host}/team/base:1"
    assert write_record(record_key(INPUTS), INPUTS, from_registry(facts, ref, DIGEST), docker_host)
    assert json.loads((records_dir() / f"{record_key(INPUTS)}.json").read_text())["base"] == {
        "ref": ref, "digest": DIGEST}
    reg.behaviour.log.clear()
    record, reason = check(INPUTS, docker_host)
    assert record is not None, reason
    assert [m for m, _, _ in reg.manifest_requests()] == ["HEAD"]

    reg.behaviour.digests["team/base"]["1"] = OTHER  # the tag moved upstream
    reason = f"base image {ref} changed in its registry (or the registry could not be asked)"
    assert check(INPUTS, docker_host) == (None, reason)
    reg.behaviour.digests["team/base"].clear()  # 404: cannot verify is never "up to date"
    assert check(INPUTS, docker_host)[0] is None


def test_no_record_when_the_registry_names_another_digest_after_the_build(facts, docker_host, reg):
    """The tag moved while the build ran: the layers may be of another manifest than the config."""
    moved = from_registry(facts, f"{reg.host}/team/base:1", OTHER)
    assert not write_record(record_key(INPUTS), INPUTS, moved, docker_host)


def test_no_record_when_the_builder_resolved_no_digest(facts, docker_host, reg):
    assert not write_record(record_key(INPUTS), INPUTS, from_registry(facts, f"{reg.host}/team/base:1", ""),
                            docker_host)


def test_a_base_pinned_by_digest_is_checked_without_a_request(facts, docker_host, reg):
    ref = f"{reg.host}/team/base@{OTHER}"
    assert write_record(record_key(INPUTS), INPUTS, from_registry(facts, ref, OTHER), docker_host)
    record, reason = check(INPUTS, docker_host)
    assert record is not None, reason
    assert reg.behaviour.log == []


def test_other_images_the_build_reads_are_recorded_and_checked(facts, docker_host, reg):
    other = f"{reg.host}/team/base:1"
    with_other = dataclasses.replace(facts, sources_before={other: {"ref": other, "digest": DIGEST}})
    assert write_record(record_key(INPUTS), INPUTS, with_other, docker_host)
    record, reason = check(INPUTS, docker_host)
    assert record is not None, reason
    reg.behaviour.digests["team/base"]["1"] = OTHER  # e.g. io.copy(image=...)'s tag moved upstream
    reason = f"image {other} changed in its registry (or the registry could not be asked)"
    assert check(INPUTS, docker_host) == (None, reason)


def test_no_record_when_another_image_moved_during_the_build_or_cannot_be_verified(facts, docker_host, reg):
    other = f"{reg.host}/team/base:1"
    moved = dataclasses.replace(facts, sources_before={other: {"ref": other, "digest": OTHER}})
    assert not write_record(record_key(INPUTS), INPUTS, moved, docker_host)
    unknown = dataclasses.replace(facts, sources_before={f"{reg.host}/team/gone:1": None})
    assert not write_record(record_key(INPUTS), INPUTS, unknown, docker_host)
    assert not write_record(record_key(INPUTS), INPUTS, dataclasses.replace(facts, sources_before=None),
                            docker_host)


def test_the_images_an_llb_reads_besides_its_base():
    from compiler.llb import CopyFrom, image, marshal

    base, helper = "docker.io/library/debian:bookworm", "ghcr.io/team/helper:1"
    state = image(base).file(CopyFrom(image(helper).output, "/x", "/x"))
    assert image_sources(marshal(state).definition, besides=base) == (helper,)
    assert image_sources(marshal(image(base)).definition, besides=base) == ()


def test_image_states_are_looked_up_off_the_build_path(docker_host, base_image, reg):
    states = ImageStates([f"{reg.host}/team/base:1", base_image, f"{reg.host}/team/none:1"], docker_host, None)
    found = states.result()
    assert found[f"{reg.host}/team/base:1"] == {"ref": f"{reg.host}/team/base:1", "digest": DIGEST}
    assert found[base_image] == {"ref": base_image, "id": docker_image_id(docker_host, base_image)}
    assert found[f"{reg.host}/team/none:1"] is None
