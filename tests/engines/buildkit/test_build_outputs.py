"""``dsl build --output``: push to a real registry and pull back, bad credentials, file outputs.

All on the real dockerd: the image is exported with ``moby`` and pushed through the Engine API
with ``X-Registry-Auth`` from the Docker config; ``local`` and ``tar`` stream back over the
session's FileSend; ``oci`` does not exist on dockerd 20.10 and is refused before building.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.engines.buildkit._containers import run_in

from tests.engines.buildkit.test_auth_registry import PASSWORD, USER, auth_registry, docker_config  # noqa: F401

pytestmark = pytest.mark.engine

BUILD_FILE = '''\
def build():
    base(image="{base}", dev=False)
    run(["echo {marker} > /marker"])
    runtime.environ(env={{"DSL_OUTPUT_TEST": "{marker}"}})
'''


def _project(tmp_path: Path, base_image: str) -> tuple[Path, str]:
    marker = uuid.uuid4().hex
    root = tmp_path / "proj"
    root.mkdir()
    (root / "build.envd").write_text(BUILD_FILE.format(base=base_image, marker=marker))
    return root, marker


def _build(root: Path, tmp_path: Path, docker_host: str, *args: str,
           docker_config_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT", "DOCKER_CONFIG")}
    env.update(DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    if docker_config_dir:
        env["DOCKER_CONFIG"] = docker_config_dir
    return subprocess.run([sys.executable, "-m", "dsl", "build", "--progress", "plain", *args], cwd=root,
                          capture_output=True, text=True, env=env, timeout=600)



def test_push_to_a_registry_then_pull_back_and_run(docker_host, docker_api, base_image, registry, tmp_path):
    root, marker = _project(tmp_path, base_image)
    ref = f"{registry}/envdsl/apt-pip:test-{marker[:8]}"
    meta = tmp_path / "meta.json"
    result = _build(root, tmp_path, docker_host, "--output", f"type=image,name={ref},push=true",
                    "--metadata-file", str(meta), docker_config_dir=docker_config(tmp_path, {}))
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(meta.read_text())
    pushed = data["pushed"][ref]
    assert pushed.startswith("sha256:") and f"pushed: {ref}@{pushed}" in result.stdout
    image_id = docker_api.inspect_image(ref)["Id"]
    assert data["image.name"] == ref and data["containerimage.digest"] == image_id
    assert data["containerimage.config.digest"] == image_id  # on dockerd the image ID is the config digest

    docker_api.remove_image(ref, force=True)
    with pytest.raises(Exception):
        docker_api.inspect_image(ref)
    docker_api.pull(ref)
    try:
        pulled = docker_api.inspect_image(ref)
        assert f"{ref.rsplit(':', 1)[0]}@{pushed}" in pulled["RepoDigests"]
        assert f"DSL_OUTPUT_TEST={marker}" in pulled["Config"]["Env"]
        assert run_in(docker_api, ref, "cat /marker").strip() == marker
    finally:
        docker_api.remove_image(ref, force=True)


def test_push_with_wrong_credentials_fails_with_the_registry_and_a_hint(docker_host, docker_api, base_image,
                                                                         auth_registry, tmp_path):  # noqa: F811
    root, marker = _project(tmp_path, base_image)
    ref = f"{auth_registry}/envdsl/denied:{marker[:8]}"
    wrong = base64.b64encode(f"{USER}:not-{PASSWORD}".encode()).decode()
    config = docker_config(tmp_path, {auth_registry: {"auth": wrong}})
    try:
        result = _build(root, tmp_path, docker_host, "--output", f"type=image,name={ref},push=true",
                        docker_config_dir=config)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"push of {ref} failed" in result.stderr and "unauthorized" in result.stderr.lower()
        assert f"docker login {auth_registry}" in result.stderr
        assert PASSWORD not in result.stderr + result.stdout
    finally:
        try:
            docker_api.remove_image(ref, force=True)
        except Exception:  # noqa: BLE001 - the failed build may not have stored it
            pass


def test_push_with_the_right_credentials_reaches_a_private_registry(docker_host, docker_api, base_image,
                                                                     auth_registry, tmp_path):  # noqa: F811
    root, marker = _project(tmp_path, base_image)
    ref = f"{auth_registry}/envdsl/allowed:{marker[:8]}"
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    result = _build(root, tmp_path, docker_host, "--output", f"type=image,name={ref},push=true",
                    docker_config_dir=docker_config(tmp_path, {auth_registry: {"auth": auth}}))
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"pushed: {ref}@sha256:" in result.stdout and PASSWORD not in result.stdout + result.stderr
    finally:
        docker_api.remove_image(ref, force=True)


def test_local_output_writes_the_root_filesystem(docker_host, base_image, tmp_path):
    root, marker = _project(tmp_path, base_image)
    dest = tmp_path / "rootfs"
    result = _build(root, tmp_path, docker_host, "--output", f"type=local,dest={dest}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (dest / "marker").read_text().strip() == marker
    assert (dest / "usr" / "bin" / "python3").exists() and f"wrote: {dest} (local)" in result.stdout
    again = _build(root, tmp_path, docker_host, "--output", f"type=local,dest={dest}")
    assert again.returncode != 0 and "Traceback" not in again.stderr  # never overwritten unasked
    assert (dest / "marker").read_text().strip() == marker


def test_tar_output_is_one_tarball_of_the_filesystem(docker_host, base_image, tmp_path):
    root, marker = _project(tmp_path, base_image)
    dest = tmp_path / "rootfs.tar"
    result = _build(root, tmp_path, docker_host, "--output", f"type=tar,dest={dest}")
    assert result.returncode == 0, result.stderr[-3000:]
    with tarfile.open(dest) as tar:
        member = tar.extractfile("marker")
        assert member is not None and member.read().decode().strip() == marker
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "rootfs.tar" in p.name]


def test_oci_output_on_dockerd_is_refused_before_building(docker_host, base_image, tmp_path):
    root, _ = _project(tmp_path, base_image)
    dest = tmp_path / "image.oci.tar"
    result = _build(root, tmp_path, docker_host, "--output", f"type=oci,dest={dest}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "type=oci is not available on dockerd" in result.stderr and "hint:" in result.stderr
    assert "#1" not in result.stderr and not dest.exists()  # nothing was built


def test_default_platform_is_the_builders_first(docker_host, docker_api, base_image, tmp_path):
    from dsl.engines.buildkit import connect, probe_caps

    with connect(f"docker://{docker_host}") as builder:
        first = probe_caps(builder).platforms[0]
    root, marker = _project(tmp_path, base_image)
    tag = f"dsl-platform:{marker[:8]}"
    result = _build(root, tmp_path, docker_host, "-t", tag)
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        info = docker_api.inspect_image(tag)
        assert f"{info['Os']}/{info['Architecture']}" == first
    finally:
        docker_api.remove_image(tag, force=True)
