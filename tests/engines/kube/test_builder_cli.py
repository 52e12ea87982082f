"""``dsl builder create|ls|rm`` against the fake API server, run as a user runs them, and the
kube-pod:// errors a user meets before any byte reaches buildkitd (no builder, no Ready Pod,
exec refused by RBAC, a node without the container)."""

from __future__ import annotations

import json

import pytest

from compiler.k8s._builder import DEFAULT_IMAGE
from dsl.engines.buildkit import connect, parse_builder_url
from dsl.errors import EngineError, EngineUnavailable, UsageError
from tests.engines.kube.conftest import objects


@pytest.fixture
def kubeconfig(fake_kube, monkeypatch):
    """In-process clients (``connect``) use the fake's kubeconfig (the client reads $KUBECONFIG
    once, at import: set where it keeps it too)."""
    from kubernetes.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(fake_kube.kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(fake_kube.kubeconfig))
    return fake_kube.kubeconfig


def test_kube_pod_addresses():
    address = parse_builder_url("kube-pod://bk?namespace=builds&context=prod")
    assert (address.scheme, address.target, address.namespace, address.kube_context) == ("kube-pod", "bk", "builds", "prod")
    assert parse_builder_url("kube-pod://bk").namespace == ""  # the kube context's
    assert not address.is_dockerd and "dsl builder create bk" in address.remedy
    from dsl.cli.builder import builder_url

    eks = "arn:aws:eks:eu-west-1:123:cluster/a#b&c"  # kube context names are not URL-safe
    assert parse_builder_url(builder_url("bk", "ns", eks)).kube_context == eks
    for bad in ("kube-pod://", "kube-pod://Bk", "kube-pod://bk/x", "kube-pod://bk?ns=a"):
        with pytest.raises(UsageError):
            parse_builder_url(bad)


@pytest.mark.fake_kube(controllers=True)
def test_create_ls_rm_keeps_the_cache_unless_purged(fake_kube, kube_user):
    made = kube_user.dsl("builder", "create", "bk", "--kubernetes", "-n", "default", "--replicas", "2",
                         "--cpu-request", "500m", "--memory-limit", "4Gi")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "kube-pod://bk?namespace=default&context=fake"
    statefulset = objects(fake_kube, "StatefulSet")["bk"]
    assert statefulset["spec"]["replicas"] == 2
    # server-side apply, as the runner applies: our field manager owns the fields
    assert [m["manager"] for m in statefulset["metadata"]["managedFields"]] == ["envdsl"]
    assert "buildkitd" not in json.dumps(objects(fake_kube, "Service"))  # nothing exposed
    claims = sorted(objects(fake_kube, "PersistentVolumeClaim"))
    assert claims == ["cache-bk-0", "cache-bk-1"]

    again = kube_user.dsl("builder", "create", "bk", "--kubernetes", "--replicas", "3")  # an update, same name
    assert again.returncode == 0, again.stderr
    assert objects(fake_kube, "StatefulSet")["bk"]["spec"]["replicas"] == 3

    listed = kube_user.dsl("builder", "ls", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [(b["name"], b["replicas"], b["image"], b["url"]) for b in data["builders"]] == [
        ("bk", 3, DEFAULT_IMAGE, "kube-pod://bk?namespace=default&context=fake")]
    assert data["current"] == {"url": "docker", "from": "default"}  # what builds use now, and why
    table = kube_user.dsl("builder", "ls")
    assert "kube-pod://bk?namespace=default&context=fake" in table.stdout and "builds use: docker (default)" in table.stdout

    removed = kube_user.dsl("builder", "rm", "bk")
    assert removed.returncode == 0, removed.stderr
    assert "bk" not in objects(fake_kube, "StatefulSet")
    assert set(objects(fake_kube, "PersistentVolumeClaim")) >= {"cache-bk-0", "cache-bk-1"}  # the cache stays

    kube_user.dsl("builder", "create", "bk", "--kubernetes")
    purged = kube_user.dsl("builder", "rm", "bk", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not [n for n in objects(fake_kube, "PersistentVolumeClaim") if n.startswith("cache-bk-")]


def test_bad_input_is_one_line_exit_2_and_nothing_is_sent(fake_kube, kube_user):
    cases = [
        (("builder", "create", "bk"), "add --kubernetes"),
        (("builder", "create", "bk", "--kubernetes", "--image", "moby/buildkit:latest"), "pinned by digest"),
        (("builder", "rm", "nope"), "no builder 'nope' in namespace default"),
    ]
    for args, message in cases:
        result = kube_user.dsl(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert objects(fake_kube, "StatefulSet") == {}


def _builder(fake_kube, name="bk", replicas=1):
    from compiler.k8s._builder import BuilderSpec, compile_builder

    (statefulset,) = compile_builder(BuilderSpec(name=name, namespace="default", replicas=replicas))
    fake_kube.create(statefulset)


def test_no_such_builder(fake_kube, kubeconfig):
    with pytest.raises(EngineUnavailable) as info:
        connect("kube-pod://bk?namespace=default")
    assert info.value.message == "no builder 'bk' in namespace default (context fake)"
    assert "dsl builder create bk --kubernetes" in info.value.hint


def test_a_builder_without_a_ready_pod(fake_kube, kubeconfig):
    _builder(fake_kube)  # no controllers: no Pod is ever made
    with pytest.raises(EngineUnavailable, match=r"builder 'bk' in namespace default \(context fake\) has no Ready Pod"):
        connect("kube-pod://bk")


@pytest.mark.fake_kube(controllers=True)
def test_exec_forbidden_by_rbac_names_the_right(fake_kube, kubeconfig):
    from fakes.kube.resources import by_kind
    from fakes.kube.status import forbidden

    _builder(fake_kube)
    fake_kube.controllers.settle()

    def deny(request, match):  # what the authorizer answers before the upgrade
        raise forbidden(by_kind("Pod"), match["name"], 'User "dev" cannot create resource "pods/exec" in API group "" '
                        'in the namespace "default"')

    fake_kube.router._routes.insert(0, (frozenset({"GET", "POST"}), __import__("re").compile(
        r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/exec\Z"), deny))
    with pytest.raises(EngineError) as info:
        connect("kube-pod://bk")
    assert "cannot exec `buildctl dial-stdio` in builder Pod bk-0" in info.value.message
    assert 'cannot create resource "pods/exec"' in info.value.message
    assert "RBAC" in info.value.hint


@pytest.mark.fake_kube(controllers=True)
def test_a_ready_pod_whose_container_the_node_does_not_have(fake_kube, kubeconfig):
    _builder(fake_kube)  # Ready as the controllers mark it, but no kubelet runs it
    fake_kube.controllers.settle()
    with pytest.raises(EngineError, match=r"cannot exec `buildctl dial-stdio` in builder Pod bk-0: .*container not found"):
        connect("kube-pod://bk")


def test_dsl_build_on_a_missing_kube_pod_builder_is_one_line_exit_1(fake_kube, kube_user):
    from tests.engines.kube.conftest import project

    directory = project(kube_user.home, 'def build():\n    base(image="debian:bookworm", dev=False)\n')
    result = kube_user.dsl("build", "--builder", "kube-pod://bk?namespace=default", cwd=directory)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "error: no builder 'bk' in namespace default (context fake)",
        "  hint: create it with `dsl builder create bk --kubernetes -n default`"]
