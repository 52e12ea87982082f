"""``dsl push [PATH]``: the project's last build goes to the context's registry (or ``--to``),
and the digest printed is the one the registry serves; and a context whose builder is a
``kube-pod://`` builder is one ``dsl`` resolves builds to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

BUILD_FILE = '''\
def build():
    base(image="debian:bookworm", dev=False)
    run(["echo {marker} > /marker"])
'''


def _dsl(*args: str, cwd, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsl", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUILDKIT_HOST", "DSL_CONTEXT")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_CACHE_HOME=str(tmp_path / "cache"), **extra)
    return env


def _manifest_digest(registry: str, repo: str, tag: str) -> str:
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Docker-Content-Digest"]


@pytest.fixture
def project(tmp_path):
    directory = tmp_path / f"p{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    (directory / "build.envd").write_text(BUILD_FILE.format(marker=uuid.uuid4().hex))
    return directory


@pytest.fixture
def new_tags_removed(docker_api):
    """The tags a test adds to the test dockerd (its builds, the pushed names) go afterwards."""
    def tags() -> set[str]:
        return {t for image in docker_api.images() for t in image.get("RepoTags") or () if t != "<none>:<none>"}

    before = tags()
    yield
    for tag in tags() - before:
        docker_api.remove_image(tag)


def test_push_sends_the_last_build_to_the_context_registry(tmp_path, project, docker_host, base_image, registry,
                                                           new_tags_removed):
    env = _env(tmp_path)
    built = _dsl("build", "--progress", "plain", cwd=project, env=env)
    assert built.returncode == 0, built.stderr
    made = _dsl("context", "create", "team", "--registry", f"{registry}/team", "--use", cwd=project, env=env)
    assert made.returncode == 0, made.stderr

    pushed = _dsl("push", cwd=project, env=env)
    assert pushed.returncode == 0, pushed.stderr
    line = pushed.stdout.strip()
    repo = f"team/{project.name}"
    assert line.startswith(f"pushed: {registry}/{repo}@sha256:"), line
    assert line.rsplit("@", 1)[1] == _manifest_digest(registry, repo, "latest")  # what a cluster pulls

    to = _dsl("push", ".", "--to", f"{registry}/elsewhere/{project.name}:v1", cwd=project, env=env)
    assert to.returncode == 0, to.stderr
    elsewhere = f"elsewhere/{project.name}"
    assert to.stdout.strip() == f"pushed: {registry}/{elsewhere}:v1@{_manifest_digest(registry, elsewhere, 'v1')}"
    assert to.stdout.strip().rsplit("@", 1)[1] == line.rsplit("@", 1)[1]  # the same image


def test_push_finds_a_build_by_its_record_whatever_its_tag(tmp_path, project, docker_host, base_image, registry,
                                                          new_tags_removed):
    env = _env(tmp_path)
    tag = f"custom-{project.name}:1"
    built = _dsl("build", "-t", tag, "--progress", "plain", cwd=project, env=env)
    assert built.returncode == 0, built.stderr
    pushed = _dsl("push", "--to", f"{registry}/tagged/{project.name}", cwd=project, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stderr.splitlines()[-1] == f"image: {tag}"  # from the build record: <env>:dev was never built
    repo = f"tagged/{project.name}"
    assert pushed.stdout.strip() == f"pushed: {registry}/{repo}@{_manifest_digest(registry, repo, 'latest')}"


def test_push_without_a_destination_or_a_build_is_one_line(tmp_path, project, docker_host, base_image):
    env = _env(tmp_path)
    nowhere = _dsl("push", cwd=project, env=env)
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr
    assert "no --to given, and the context names no registry" in nowhere.stderr
    unbuilt = _dsl("push", "--to", "127.0.0.1:1/x", cwd=project, env=env)
    assert unbuilt.returncode == 2, unbuilt.stderr
    assert f"no build of . to push: no build record, and no image {project.name}:dev" in unbuilt.stderr
    assert "run `dsl build .` first" in unbuilt.stderr


def test_a_context_with_a_kube_pod_builder_and_a_registry(tmp_path):
    env = _env(tmp_path)
    url = "kube-pod://bk?namespace=builds&context=prod"
    made = _dsl("context", "create", "team", "--builder", url, "--registry", "registry.example/team",
                "--runner", "k8s", "--kube-context", "prod", "--namespace", "dev", "--use", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    listed = json.loads(_dsl("context", "ls", "--format", "json", cwd=tmp_path, env=env).stdout)
    team = next(c for c in listed if c["name"] == "team")
    assert (team["builder"], team["registry"], team["runner"], team["current"]) == (url, "registry.example/team", "k8s", True)
    code = ("from dsl.engines.buildkit import resolve_builder_url, parse_builder_url; u, o = resolve_builder_url(); "
            "a = parse_builder_url(u); print(o, a.scheme, a.target, a.namespace, a.kube_context)")
    probe = subprocess.run([sys.executable, "-c", code],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert probe.stdout.split() == ["context", "team", "kube-pod", "bk", "builds", "prod"], probe.stderr
