"""``dsl lock`` and ``--locked`` on the test dockerd and registry (issue 14's acceptance).

* A base tag pinned by the lock stays pinned when a new image is pushed under the same tag;
  ``lock --check`` reports the move, ``lock --update`` moves the pin.
* Python distributions resolved by pip in the builder install at the locked versions, even
  after the index has a newer one; a tampered hash fails the build naming the package.
* Two ``--no-cache`` locked builds give layers with the same files and contents (mtimes aside).

The package index is served on the Docker bridge (where RUN steps reach the host), as in
``test_pip_cache``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import bridge_gateway, make_wheel, run_in
from tests.engines.buildkit.test_auth_registry import (  # noqa: F401 - fixtures used below
    PASSWORD,
    USER,
    auth_registry,
    docker_config,
    private_image,
)

pytestmark = pytest.mark.engine


def _dsl(cwd: Path, docker_host: str, tmp_path: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def _remove(docker_api, *refs: str) -> None:
    """Remove test images (a tag of a shared image only untags it); already gone is fine."""
    import docker

    for ref in refs:
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_image(ref, force=True)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _project(tmp_path, build_file: str):
    """A project directory ``proj`` holding ``build_file`` as its build.envd."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "build.envd").write_text(build_file)
    return project


@pytest.fixture
def pushed_base(docker_api, base_image, registry) -> Iterator[str]:
    """The test base image pushed under a fresh tag of the test registry (so it has a digest)."""
    repo = f"{registry}/dsl-lock-{uuid.uuid4().hex[:8]}"
    docker_api.tag(base_image, repo, "1")
    for line in docker_api.push(repo, tag="1", stream=True, decode=True):
        assert "error" not in line, line
    yield f"{repo}:1"
    _remove(docker_api, f"{repo}:1")


def test_locked_base_survives_a_push_under_the_same_tag(docker_host, docker_api, pushed_base, tmp_path):
    project = _project(tmp_path, f'def build():\n    base(image="{pushed_base}", dev=False)\n')
    tag = f"dsl-lock-built:{uuid.uuid4().hex[:8]}"
    try:
        _ok(_dsl(project, docker_host, tmp_path, "lock"))
        lock = json.loads((project / "build.envd.lock").read_text())
        old_digest = lock["images"][pushed_base]["digest"]
        assert old_digest.startswith("sha256:")
        _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag, "--progress", "plain"))
        assert "no marker" in run_in(docker_api, tag, "cat /marker 2>/dev/null || echo no marker")

        # a new image under the same tag: the base plus /marker, pushed by dsl build itself
        mover = tmp_path / "mover"
        mover.mkdir()
        (mover / "build.envd").write_text(f'def build():\n    base(image="{pushed_base}", dev=False)\n'
                                          '    run(commands=["echo moved > /marker"])\n')
        _ok(_dsl(mover, docker_host, tmp_path, "build", "-o", f"type=image,name={pushed_base},push=true"))

        again = _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag, "--progress", "plain"))
        assert old_digest in again.stderr  # the source vertex names the pinned digest
        assert "no marker" in run_in(docker_api, tag, "cat /marker 2>/dev/null || echo no marker")

        check = _dsl(project, docker_host, tmp_path, "lock", "--check")
        assert check.returncode == 1, check.stderr
        assert old_digest in check.stdout and f"--update {pushed_base}" in check.stderr

        _ok(_dsl(project, docker_host, tmp_path, "lock", "--update", pushed_base))
        moved = json.loads((project / "build.envd.lock").read_text())["images"][pushed_base]["digest"]
        assert moved != old_digest
        _ok(_dsl(project, docker_host, tmp_path, "lock", "--check"))
        _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag))
        assert "moved" in run_in(docker_api, tag, "cat /marker")
    finally:
        _remove(docker_api, tag)


def test_a_local_only_image_is_pinned_by_its_id_and_a_moved_tag_stops_the_build(
        docker_host, docker_api, base_image, tmp_path):
    local = f"dsl-lock-local-{uuid.uuid4().hex[:8]}"
    docker_api.tag(base_image, local, "1")  # a tag of an imported image: no registry digest
    project = _project(tmp_path, f'def build():\n    base(image="{local}:1", dev=False)\n')
    tag = f"dsl-lock-built:{uuid.uuid4().hex[:8]}"
    try:
        _ok(_dsl(project, docker_host, tmp_path, "lock"))
        pinned = json.loads((project / "build.envd.lock").read_text())["images"][f"{local}:1"]
        assert pinned["source"] == "local image"
        assert pinned["digest"] == docker_api.inspect_image(base_image)["Id"]
        _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag))

        mover = tmp_path / "mover"
        mover.mkdir()
        (mover / "build.envd").write_text(f'def build():\n    base(image="{local}:1", dev=False)\n'
                                          '    run(commands=["echo moved > /marker"])\n')
        _ok(_dsl(mover, docker_host, tmp_path, "build", "-t", f"{local}:1"))
        moved = _dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag)
        assert moved.returncode == 2, moved.stderr
        assert f"--locked: the local image {local}:1 is now sha256:" in moved.stderr
        assert f"--update {local}:1" in moved.stderr and "Traceback" not in moved.stderr
        check = _dsl(project, docker_host, tmp_path, "lock", "--check")
        assert check.returncode == 1 and pinned["digest"] in check.stdout
    finally:
        _remove(docker_api, tag, f"{local}:1")


class _Index(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class PackageIndex:
    """A PEP 503 index (links with ``#sha256=``) over a directory; wheels can be added."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True)

    def add(self, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
        wheel = make_wheel(self.files, name, version=version, requires=requires)
        page = self.root / "simple" / name.replace("_", "-")
        page.mkdir(parents=True, exist_ok=True)
        links = []
        for w in sorted(self.files.glob(f"{name}-*.whl")):
            digest = hashlib.sha256(w.read_bytes()).hexdigest()
            links.append(f'<a href="../../files/{w.name}#sha256={digest}">{w.name}</a>')
        (page / "index.html").write_text("\n".join(links) + "\n")
        return wheel


@pytest.fixture
def index(docker_api, tmp_path) -> Iterator[tuple[str, PackageIndex]]:
    served = PackageIndex(tmp_path / "index")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), lambda *a: _Index(*a, directory=str(served.root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = bridge_gateway(docker_api.inspect_network("bridge"))
    try:
        yield f"http://{gateway}:{server.server_address[1]}/simple/", served
    finally:
        server.shutdown()
        server.server_close()


PIP_BUILD = '''\
def build():
    base(image="{base}", dev=False)
    config.pip_index(url="{index}", trust=True)
    install.python_packages(name=["{a}"])
'''


def test_pip_lock_installs_the_locked_versions_and_rejects_a_tampered_hash(
        docker_host, docker_api, pushed_base, index, tmp_path):
    url, served = index
    suffix = uuid.uuid4().hex[:8]
    a, b = f"dsllock_a_{suffix}", f"dsllock_b_{suffix}"
    served.add(b, "1.0")
    served.add(a, "1.0", requires=(b,))
    project = _project(tmp_path, PIP_BUILD.format(base=pushed_base, index=url, a=a))
    tag = f"dsl-lock-pip:{suffix}"
    show = f"/opt/dsl/python/bin/python -c 'import {a}, {b}; print({a}.VERSION, {b}.VERSION)'"
    try:
        _ok(_dsl(project, docker_host, tmp_path, "lock", "--progress", "plain"))
        lock = json.loads((project / "build.envd.lock").read_text())
        (step,) = lock["python"]
        pins = {p["name"]: p for p in step["packages"]}
        assert {n: p["version"] for n, p in pins.items()} == {a.replace("_", "-"): "1.0", b.replace("_", "-"): "1.0"}
        wheel_b = served.files / f"{b}-1.0-py3-none-any.whl"
        assert pins[b.replace("_", "-")]["sha256"] == hashlib.sha256(wheel_b.read_bytes()).hexdigest()

        served.add(b, "2.0")  # the index moves on; the lock does not
        for _ in range(2):
            _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag, "--no-cache"))
            assert run_in(docker_api, tag, show).split() == ["1.0", "1.0"]
        _ok(_dsl(project, docker_host, tmp_path, "build", "-t", tag))  # unlocked: the newest
        assert run_in(docker_api, tag, show).split() == ["1.0", "2.0"]

        relock = _ok(_dsl(project, docker_host, tmp_path, "lock"))  # nothing changed: pins kept
        assert "build.envd.lock is up to date" in relock.stderr
        _ok(_dsl(project, docker_host, tmp_path, "lock", "--update", b))  # moves b only
        moved = {p["name"]: p["version"] for p in
                 json.loads((project / "build.envd.lock").read_text())["python"][0]["packages"]}
        assert moved == {a.replace("_", "-"): "1.0", b.replace("_", "-"): "2.0"}
        _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag))
        assert run_in(docker_api, tag, show).split() == ["1.0", "2.0"]
        lock = json.loads((project / "build.envd.lock").read_text())
        pins = {p["name"]: p for p in lock["python"][0]["packages"]}

        pins[b.replace("_", "-")]["sha256"] = "0" * 64
        (project / "build.envd.lock").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
        bad = _dsl(project, docker_host, tmp_path, "build", "--locked", "-t", tag, "--progress", "plain")
        assert bad.returncode == 1, bad.stderr[-3000:]
        assert "Traceback" not in bad.stderr
        assert "DO NOT MATCH THE HASHES" in bad.stderr and f"{b}" in bad.stderr.replace("-", "_")
        assert "0" * 64 in bad.stderr
        hint = next(line for line in bad.stderr.splitlines() if "hint:" in line)
        assert f"{b.replace('_', '-')} 2.0 does not match the sha256 in build.envd.lock" in hint, hint
    finally:
        _remove(docker_api, tag)


REPRO_BUILD = '''\
def build():
    base(image="{base}", dev=False)
    install.apt_packages(name=["jq"])
    config.pip_index(url="{index}", trust=True)
    install.python_packages(name=["{a}"])
'''


def _layer_files(docker_api, ref: str) -> dict[str, tuple]:
    """Every file of every layer of ``ref`` (``docker save``): path → (layer, type, mode, owner,
    link target, content sha256); mtimes left out."""
    raw = b"".join(docker_api.get_image(ref))
    out: dict[str, tuple] = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for n, layer in enumerate(manifest[0]["Layers"]):
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read())) as inner:
                for m in inner.getmembers():
                    content = hashlib.sha256(inner.extractfile(m).read()).hexdigest() if m.isfile() else ""
                    out[f"{n}:{m.name}"] = (m.type, m.mode, m.uid, m.gid, m.linkname, content)
    return out


def test_two_no_cache_locked_builds_have_the_same_files(docker_host, docker_api, pushed_base, index,
                                                        ca_bundle, tmp_path):
    url, served = index
    suffix = uuid.uuid4().hex[:8]
    a = f"dsllock_r_{suffix}"
    served.add(a, "1.0")
    project = _project(tmp_path, REPRO_BUILD.format(base=pushed_base, index=url, a=a))
    tags = [f"dsl-lock-repro:{suffix}-{i}" for i in range(2)]
    try:
        _ok(_dsl(project, docker_host, tmp_path, "lock", "--ca-bundle", ca_bundle))
        notes = []
        for tag in tags:
            built = _ok(_dsl(project, docker_host, tmp_path, "build", "--locked", "--no-cache", "-t", tag,
                             "--ca-bundle", ca_bundle))
            notes.append(built.stderr)
        first, second = (_layer_files(docker_api, t) for t in tags)
        differ = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
        assert not differ, differ[:20]
        # dockerd 20.10's BuildKit v0.8 cannot rewrite timestamps: said once per build
        assert all(n.count("cannot rewrite layer timestamps") == 1 for n in notes), notes[0][-2000:]
        # the time-stamped logs are not in the layers the build added (layer 0 is the base)
        ours = [k for k in first if not k.startswith("0:")]
        assert any(k.endswith("/jq") for k in ours), "the apt step did not run"
        assert not [k for k in ours if k.endswith(("var/log/dpkg.log", "var/log/apt/history.log",
                                                   "var/log/apt/term.log", "ldconfig/aux-cache"))]
    finally:
        _remove(docker_api, *tags)


def test_up_locked_builds_only_from_a_lock(docker_host, base_image, tmp_path):
    project = _project(tmp_path, f'def build():\n    base(image="{base_image}", dev=True)\n')
    result = _dsl(project, docker_host, tmp_path, "up", "--locked", "--detach", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--locked: there is no build.envd.lock beside build.envd" in result.stderr


def test_a_private_registry_tag_resolves_with_the_sessions_credentials(docker_host, private_image, tmp_path,  # noqa: F811
                                                                        monkeypatch):
    """The lock asks the builder with a session: its Auth service answers the registry's 401."""
    import base64

    from dsl.engines.buildkit import connect, resolve_image_digest
    from dsl.errors import EngineError

    ref, _marker = private_image
    host = ref.split("/", 1)[0]
    (tmp_path / "none").mkdir()
    (tmp_path / "good").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", docker_config(tmp_path / "none", {}))
    with connect(f"docker://{docker_host}") as builder, pytest.raises(EngineError):
        resolve_image_digest(builder, ref, platform="linux/amd64")
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    monkeypatch.setenv("DOCKER_CONFIG", docker_config(tmp_path / "good", {f"http://{host}": {"auth": auth}}))
    with connect(f"docker://{docker_host}") as builder:
        resolved = resolve_image_digest(builder, ref, platform="linux/amd64")
    assert resolved.source == "registry" and resolved.digest.startswith("sha256:")
