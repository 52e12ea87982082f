"""``dsl build`` skips an unchanged build, and never one whose inputs changed (real dockerd).

Each step edits one input and checks the next ``dsl build`` really ran (progress events on
stderr, a new image where the content changed) and the one after it is skipped ("up to date",
no progress event at all: nothing reached the builder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import run_in

from dsl.engines.buildkit._uptodate import code_fingerprint

pytestmark = pytest.mark.engine

BUILD_FILE = '''\
load("lib.star", "marker")

def build():
    base(image="{base}", dev=False)
    install.python_packages(requirements="requirements.txt")
    io.copy(source="src", target="/opt/src")
    run([marker()])
'''
SETTLE = 0.25  # a file written just before a build is not trusted for a record (see _record.py)


class Project:
    """A project directory and the ``dsl build`` command line for it."""

    def __init__(self, root: Path, tmp_path: Path, docker_host: str, tag: str, ca_bundle: str) -> None:
        self.root, self.tag = root, tag
        self.env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
        self.env.update(DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(tmp_path / "cfg"),
                        XDG_CACHE_HOME=str(tmp_path / "cache"))
        self.args = ["-t", tag, "--progress", "json", "--ca-bundle", ca_bundle]

    def build(self, *extra: str) -> subprocess.CompletedProcess[str]:
        time.sleep(SETTLE)
        self.code = code_fingerprint()
        result = subprocess.run([sys.executable, "-m", "dsl", "build", *self.args, *extra], cwd=self.root,
                                capture_output=True, text=True, env=self.env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def assert_built(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = self.build(*extra)
        assert "up to date" not in result.stderr
        assert any(line.startswith("{") for line in result.stderr.splitlines()), "no solve happened"
        return result

    def assert_skipped(self, *extra: str) -> subprocess.CompletedProcess[str]:
        built_with = self.code
        result = self.build(*extra)
        if "up to date" not in result.stderr and self.code != built_with:
            # envdsl's own files changed since the last build (others edit this checkout while
            # the tests run): rebuilding was right; the build after that must skip.
            result = self.build(*extra)
        assert "up to date" in result.stderr, result.stderr[-2000:]
        assert not any(line.startswith("{") for line in result.stderr.splitlines()), "a solve happened"
        assert f"image: {self.tag}" in result.stdout and "digest: sha256:" in result.stdout
        return result



@pytest.fixture
def project(tmp_path, docker_host, docker_api, base_image, ca_bundle):
    """A project on a private tag of the base image (so the base can be changed safely)."""
    suffix = uuid.uuid4().hex[:10]
    base_repo = f"dsl-uptodate-base-{suffix}"
    docker_api.tag(base_image, base_repo, "1")
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "build.envd").write_text(BUILD_FILE.format(base=f"{base_repo}:1"))
    (root / "lib.star").write_text('def marker():\n    return "echo one > /marker"\n')
    (root / "requirements.txt").write_text("six\n")
    (root / "src" / "a.txt").write_text("AAAA\n")
    (root / "src" / "ignored.txt").write_text("not sent\n")
    (root / ".dockerignore").write_text("src/ignored.txt\n")
    proj = Project(root, tmp_path, docker_host, f"dsl-uptodate:{suffix}", ca_bundle)
    try:
        yield proj, f"{base_repo}:1"
    finally:
        for ref in (proj.tag, f"{base_repo}:1"):
            try:
                docker_api.remove_image(ref, force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


def test_unchanged_skips_and_every_changed_input_rebuilds(project, docker_api):
    proj, _ = project
    root = proj.root
    proj.assert_built()
    proj.assert_skipped()

    # Same size, mtime restored: only the content (and the ctime) changed.
    a = root / "src" / "a.txt"
    before = a.stat()
    a.write_text("BBBB\n")
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert a.stat().st_size == before.st_size and a.stat().st_mtime_ns == before.st_mtime_ns
    proj.assert_built()
    proj.assert_skipped()

    (root / "src" / "new.txt").write_text("new\n")
    proj.assert_built()
    proj.assert_skipped()
    (root / "src" / "new.txt").unlink()
    proj.assert_built()
    proj.assert_skipped()

    (root / "src" / "ignored.txt").write_text("still not sent, different size\n")
    proj.assert_skipped()  # an ignored file is not an input

    (root / "lib.star").write_text('def marker():\n    return "echo two > /marker"\n')
    proj.assert_built()
    assert run_in(docker_api, proj.tag, "cat /marker") == "two\n"
    proj.assert_skipped()

    (root / "requirements.txt").write_text("six\nidna\n")
    proj.assert_built()
    proj.assert_skipped()

    build_file = root / "build.envd"
    build_file.write_text(build_file.read_text() + "\n# a comment is a change too\n")
    proj.assert_built()
    proj.assert_skipped()

    proj.assert_built("--no-cache")
    proj.assert_skipped()  # the --no-cache build is the image of these inputs now
    proj.assert_built("--platform", "linux/amd64")  # another option: another record
    proj.assert_skipped("--platform", "linux/amd64")
    proj.assert_skipped()


def test_same_size_same_mtime_new_content_reaches_the_image(project, docker_api):
    proj, _ = project
    a = proj.root / "src" / "a.txt"
    proj.assert_built()
    before = a.stat()
    a.write_text("BBBB\n")
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    proj.assert_built()  # the up-to-date check notices the change...
    assert run_in(docker_api, proj.tag, "cat /opt/src/a.txt") == "BBBB\n"  # ...and the session re-sends it


def test_the_image_and_the_base_are_checked_in_the_engine(project, docker_api):
    proj, base = project
    proj.assert_built()
    proj.assert_skipped()

    built = docker_api.inspect_image(proj.tag)["Id"]
    docker_api.tag(base, proj.tag.split(":")[0], proj.tag.split(":")[1])  # the tag now names another image
    proj.assert_built()
    assert docker_api.inspect_image(proj.tag)["Id"] == built
    proj.assert_skipped()

    docker_api.remove_image(proj.tag, force=True)
    proj.assert_built()
    proj.assert_skipped()

    container = docker_api.create_container(base, command=["true"])
    try:
        new_base = docker_api.commit(container, repository=base.split(":")[0], tag="1", changes=["ENV CHANGED=1"])
    finally:
        docker_api.remove_container(container, force=True)
    assert docker_api.inspect_image(base)["Id"] == new_base["Id"]
    proj.assert_built()
    proj.assert_skipped()


def test_outputs_other_than_the_image_store_always_build(project, tmp_path):
    proj, _ = project
    proj.assert_built()
    out = tmp_path / "out.tar"
    proj.assert_built("--output", f"type=tar,dest={out}")
    assert out.stat().st_size > 0
    meta = tmp_path / "meta.json"
    result = proj.assert_skipped("--metadata-file", str(meta))
    data = json.loads(meta.read_text())
    assert data["image.name"] == proj.tag and f"digest: {data['containerimage.digest']}" in result.stdout


def test_a_rebuild_says_which_input_changed(project):
    proj, _ = project
    proj.assert_built()
    (proj.root / "src" / "a.txt").write_text("CCCC\n")
    result = proj.build("--progress", "plain")
    assert f"rebuilding: build-context file {proj.root / 'src' / 'a.txt'} changed" in result.stderr
    (proj.root / "lib.star").write_text('def marker():\n    return "echo two > /marker"\n')
    result = proj.build("--progress", "plain")
    assert f"rebuilding: {proj.root / 'lib.star'} changed" in result.stderr


REGISTRY_BUILD_FILE = '''\
def build():
    base(image="{base}", dev=False)
    io.copy(source="src", target="/opt/src")
    run(["cat /base-marker > /seen-marker"])
'''


def _push_base(docker_api, base_image: str, ref: str, marker: str) -> str:
    """Push ``base_image`` plus ``/base-marker`` under ``ref``; drop the local tag (the build
    must pull it from the registry); return the registry's manifest digest."""
    repo, tag = ref.rsplit(":", 1)
    container = docker_api.create_container(base_image, command=["sh", "-c", f"echo {marker} > /base-marker"])
    try:
        docker_api.start(container)
        assert docker_api.wait(container, timeout=120)["StatusCode"] == 0
        docker_api.commit(container, repository=repo, tag=tag)
    finally:
        docker_api.remove_container(container, force=True)
    events = list(docker_api.push(repo, tag=tag, stream=True, decode=True))
    assert not [e for e in events if "error" in e], events
    docker_api.remove_image(ref, force=True)
    return next(e["aux"]["Digest"] for e in events if "Digest" in (e.get("aux") or {}))


@pytest.fixture
def registry_project(tmp_path, docker_host, docker_api, base_image, ca_bundle, registry):
    """A project whose base exists only in the test registry (not in dockerd's image store)."""
    suffix = uuid.uuid4().hex[:10]
    base = f"{registry}/dsl-uptodate-{suffix}/base:1"
    _push_base(docker_api, base_image, base, "one")
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "build.envd").write_text(REGISTRY_BUILD_FILE.format(base=base))
    (root / "src" / "a.txt").write_text("AAAA\n")
    proj = Project(root, tmp_path, docker_host, f"dsl-uptodate-reg:{suffix}", ca_bundle)
    try:
        yield proj, base
    finally:
        for ref in (proj.tag, base):
            try:
                docker_api.remove_image(ref, force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


def test_a_registry_base_skips_unchanged_and_a_moved_tag_rebuilds(registry_project, docker_api, base_image):
    proj, base = registry_project
    proj.assert_built()
    import docker

    with pytest.raises(docker.errors.ImageNotFound):  # the build pulled it without tagging it in dockerd
        docker_api.inspect_image(base)
    assert run_in(docker_api, proj.tag, "cat /seen-marker") == "one\n"
    proj.assert_skipped()  # "up to date", no progress event: nothing reached the builder

    _push_base(docker_api, base_image, base, "two")  # the same tag, another image upstream
    result = proj.build("--progress", "plain")
    assert f"rebuilding: base image {base} changed in its registry" in result.stderr
    assert "up to date" not in result.stderr
    assert run_in(docker_api, proj.tag, "cat /seen-marker") == "two\n"
    proj.assert_skipped()

    (proj.root / "src" / "a.txt").write_text("BBBB\n")  # the context still counts, as with a local base
    proj.assert_built()
    assert run_in(docker_api, proj.tag, "cat /opt/src/a.txt") == "BBBB\n"
    proj.assert_skipped()



def test_a_moved_tag_of_another_image_the_build_reads_rebuilds(registry_project, docker_api, base_image, registry):
    proj, _ = registry_project
    other = f"{registry}/dsl-uptodate-{uuid.uuid4().hex[:10]}/other:1"
    _push_base(docker_api, base_image, other, "first")
    build_file = proj.root / "build.envd"
    build_file.write_text(build_file.read_text() + f'    io.copy(image="{other}", source="/base-marker", '
                          'target="/other-marker")\n')
    proj.assert_built()
    proj.assert_skipped()
    _push_base(docker_api, base_image, other, "second")
    result = proj.build("--progress", "plain")
    assert f"rebuilding: image {other} changed in its registry" in result.stderr
    assert run_in(docker_api, proj.tag, "cat /other-marker") == "second\n"
    proj.assert_skipped()


def test_a_multi_platform_base_is_compared_by_its_index_digest(registry_project, docker_api, registry):
    """The builder resolves a tag naming an index to the index's digest, as the HEAD does."""
    import urllib.request

    proj, base = registry_project
    repo, tag = base.split("/", 1)[1].rsplit(":", 1)
    head = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
                                  headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(head, timeout=10) as reply:
        digest, size = reply.headers["Docker-Content-Digest"], int(reply.headers["Content-Length"])
    kind = "application/vnd.docker.distribution.manifest.list.v2+json"
    index = {"schemaVersion": 2, "mediaType": kind, "manifests": [{
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest, "size": size,
        "platform": {"architecture": "amd64", "os": "linux"}}]}
    put = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/multi", method="PUT",
                                 data=json.dumps(index).encode(), headers={"Content-Type": kind})
    urllib.request.urlopen(put, timeout=10).close()
    build_file = proj.root / "build.envd"
    build_file.write_text(build_file.read_text().replace(base, base.rsplit(":", 1)[0] + ":multi"))
    proj.assert_built()
    proj.assert_skipped()
