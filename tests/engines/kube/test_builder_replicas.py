"""Which replica of a kube-pod:// builder a build goes to: the same environment to the same
Pod while the Ready set is unchanged (its cache is there), environments spread over the
replicas, and a replica going unready moves only the environments that were on it."""

from __future__ import annotations

import copy

import pytest

from compiler.k8s._builder import BuilderSpec, compile_builder
from dsl.engines.kube._builder import choose_pod, pick_pod
from dsl.errors import EngineUnavailable

KEYS = [f"env{i}" for i in range(200)]


def test_pick_is_stable_and_ignores_the_order_of_the_pods():
    pods = ["bk-0", "bk-1", "bk-2"]
    for key in KEYS:
        assert pick_pod(pods, key) == pick_pod(list(reversed(pods)), key) == pick_pod(pods, key)


def test_environments_spread_over_the_replicas():
    counts = {p: 0 for p in ("bk-0", "bk-1", "bk-2")}
    for key in KEYS:
        counts[pick_pod(list(counts), key)] += 1
    assert all(40 < n < 100 for n in counts.values()), counts  # ~67 each


def test_losing_a_replica_moves_only_its_environments():
    before = {key: pick_pod(["bk-0", "bk-1", "bk-2"], key) for key in KEYS}
    after = {key: pick_pod(["bk-0", "bk-2"], key) for key in KEYS}
    assert {k for k in KEYS if before[k] != after[k]} == {k for k in KEYS if before[k] == "bk-1"}
    back = {key: pick_pod(["bk-0", "bk-1", "bk-2"], key) for key in KEYS}
    assert back == before  # the replica is back: so is every environment that was on it


@pytest.fixture
def client(fake_kube, monkeypatch):
    from kubernetes.config import kube_config

    from dsl.engines.kube._client import Kube

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(fake_kube.kubeconfig))
    kube = Kube(None, None)
    yield kube
    kube.close()


def _set_ready(fake_kube, name: str, ready: bool) -> None:
    from fakes.kube.resources import by_kind

    pod = copy.deepcopy(fake_kube.get("Pod", name))
    for condition in pod["status"]["conditions"]:
        if condition["type"] in ("Ready", "ContainersReady"):
            condition["status"] = "True" if ready else "False"
    fake_kube.store.write(by_kind("Pod"), pod, "MODIFIED")


@pytest.mark.fake_kube(controllers=True)
def test_choice_follows_the_ready_pods_of_the_cluster(fake_kube, client):
    (statefulset,) = compile_builder(BuilderSpec(name="bk", namespace="default", replicas=3))
    fake_kube.create(statefulset)
    fake_kube.controllers.settle()
    keys = KEYS[:30]
    first = {key: choose_pod(client, "bk", key) for key in keys}
    assert set(first.values()) == {"bk-0", "bk-1", "bk-2"}
    assert first == {key: choose_pod(client, "bk", key) for key in keys}

    _set_ready(fake_kube, "bk-1", False)  # e.g. its readiness probe fails
    moved = {key: choose_pod(client, "bk", key) for key in keys}
    assert "bk-1" not in moved.values()
    assert all(moved[k] == first[k] for k in keys if first[k] != "bk-1")

    for name in ("bk-0", "bk-2"):
        _set_ready(fake_kube, name, False)
    with pytest.raises(EngineUnavailable, match=r"has no Ready Pod \(3 Pod\(s\), none Ready\)"):
        choose_pod(client, "bk", "env0")
