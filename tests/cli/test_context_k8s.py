"""Kubernetes contexts: ``--runner k8s --registry REF --kube-context C --namespace NS``, what
``dsl up --target k8s`` takes from them, and old contexts files that lack these fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    values = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path),
              "PYTHONPATH": str(REPO), "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    values.pop("DSL_CONTEXT", None)
    return values


def _dsl(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsl", *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def test_a_kubernetes_context_stores_registry_kube_context_and_namespace(env, tmp_path):
    made = _dsl("context", "create", "team", "--runner", "k8s", "--registry", "localhost:5000/team/",
                "--kube-context", "prod", "--namespace", "dev-alice", "--use", env=env)
    assert made.returncode == 0, made.stderr
    stored = json.loads((tmp_path / "cfg" / "envdsl" / "contexts.json").read_text())["contexts"]["team"]
    assert (stored["runner"], stored["registry"], stored["kube_context"], stored["namespace"]) == \
        ("k8s", "localhost:5000/team", "prod", "dev-alice")
    rows = {r["name"]: r for r in json.loads(_dsl("context", "ls", "--format", "json", env=env).stdout)}
    assert rows["team"]["registry"] == "localhost:5000/team" and rows["team"]["current"]
    table = _dsl("context", "ls", env=env).stdout
    assert "k8s (prod/dev-alice)" in table and "localhost:5000/team" in table


@pytest.mark.parametrize("args, message", [
    (("--registry", "localhost:5000/team:v1"), "has a tag or digest"),
    (("--registry", "Bad Registry"), "--registry 'Bad Registry'"),
    (("--namespace", "Dev_Alice"), "not a valid namespace name"),
    (("--runner", "docker", "--namespace", "x"), "are for a Kubernetes runner"),
])
def test_bad_kubernetes_context_values_are_refused(env, args, message):
    runner = () if "--runner" in args else ("--runner", "k8s")
    result = _dsl("context", "create", "team", *runner, *args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_an_old_contexts_file_without_the_new_fields_still_loads(env, tmp_path):
    path = tmp_path / "cfg" / "envdsl" / "contexts.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"current": "old", "contexts": {"old": {"builder": "docker", "runner": "kubernetes",
                                                                      "description": "before k8s fields"}}}))
    rows = {r["name"]: r for r in json.loads(_dsl("context", "ls", "--format", "json", env=env).stdout)}
    assert rows["old"]["runner"] == "kubernetes" and rows["old"]["registry"] == "" and rows["old"]["namespace"] == ""


def test_up_on_kubernetes_without_registry_or_image_is_bad_input(env, tmp_path, fake_kube):
    env["KUBECONFIG"] = str(fake_kube.kubeconfig)
    project = tmp_path / "ws"
    project.mkdir()
    (project / "build.envd").write_text('def build():\n    base(image="debian:bookworm", dev=True)\n')
    result = _dsl("up", "--target", "k8s", "--detach", env=env, cwd=project)
    assert result.returncode == 2, result.stderr
    assert "no --image given, and the context names no registry" in result.stderr
    assert "--registry" in result.stderr and "Traceback" not in result.stderr
    assert fake_kube.list("Pod") == []


def test_flags_override_the_contexts_namespace(env, tmp_path, fake_kube):
    env["KUBECONFIG"] = str(fake_kube.kubeconfig)
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-ns"}})
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other-ns"}})
    assert _dsl("context", "create", "team", "--runner", "k8s", "--namespace", "team-ns", "--use",
                env=env).returncode == 0
    listed = _dsl("ls", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr  # the context's runner: Kubernetes, no --target needed
    project = tmp_path / "ws"
    project.mkdir()
    (project / "build.envd").write_text('def build():\n    base(image="debian:bookworm", dev=True)\n')
    image = "registry.example/ws@sha256:" + "cd" * 32
    first = _dsl("up", "--image", image, "--detach", "--timeout", "2", env=env, cwd=project)
    second = _dsl("up", "--image", image, "--detach", "--timeout", "2", "-n", "other-ns", env=env, cwd=project)
    assert "not Ready within 2s" in first.stderr and "not Ready within 2s" in second.stderr  # no kubelet here
    assert len(fake_kube.list("Pod", "team-ns")) == 1 and len(fake_kube.list("Pod", "other-ns")) == 1
    missing = _dsl("ls", "--kube-context", "nope", env=env)
    assert missing.returncode == 2 and "kube context 'nope' is not in your kubeconfig" in missing.stderr


def test_an_unreachable_cluster_is_one_clear_error(env, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "gone",
                                  "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
                                  "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
                                  "users": [{"name": "u", "user": {}}]}))
    env["KUBECONFIG"] = str(config)
    result = _dsl("ls", "--target", "k8s", env=env)
    assert result.returncode == 1, result.stderr
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9 (context gone)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_kubernetes_url_runner_names_its_kube_context(env, tmp_path, fake_kube):
    env["KUBECONFIG"] = str(fake_kube.kubeconfig)
    assert _dsl("context", "create", "by-url", "--runner", "kubernetes://fake", "--use", env=env).returncode == 0
    listed = _dsl("ls", env=env)
    assert listed.returncode == 0, listed.stderr
    assert _dsl("context", "create", "gone", "--runner", "kubernetes://elsewhere", "--use", env=env).returncode == 0
    missing = _dsl("ls", env=env)
    assert missing.returncode == 2 and "kube context 'elsewhere' is not in your kubeconfig (it has: fake)" in missing.stderr
    docker_only = _dsl("ls", "--target", "docker", "-n", "x", env=env)
    assert docker_only.returncode == 2 and "--kube-context and --namespace are for Kubernetes" in docker_only.stderr
