"""The in-cluster builder's objects (``compiler.k8s._builder``): strict-valid for the oldest
and newest Kubernetes we support, deterministic, rootless as BuildKit documents it, pinned by
digest, and with nothing that exposes buildkitd on the network."""

from __future__ import annotations

import pytest

from compiler.k8s import dump_yaml
from compiler.k8s._builder import CACHE_DIR, DEFAULT_IMAGE, SOCKET, BuilderSpec, compile_builder
from dsl.errors import UsageError
from tests.compiler.k8s.conftest import assert_valid_objects

FULL = BuilderSpec(name="bk", namespace="builds", replicas=3, cache_size="50Gi", storage_class="fast-ssd",
                   cpu_request="500m", cpu_limit="4", memory_request="1Gi", memory_limit="8Gi")


def _container(objects):
    (statefulset,) = objects
    return statefulset["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("spec", [BuilderSpec(name="bk", namespace="default"), FULL])
def test_objects_are_strict_valid_for_1_29_and_1_37(spec):
    assert_valid_objects(compile_builder(spec))


def test_default_image_is_rootless_buildkit_pinned_by_digest():
    assert DEFAULT_IMAGE.startswith("moby/buildkit:v0.19.0-rootless@sha256:")
    assert _container(compile_builder(BuilderSpec(name="bk", namespace="default")))["image"] == DEFAULT_IMAGE


def test_rootless_needs_are_met():
    (statefulset,) = compile_builder(FULL)
    template = statefulset["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert template["metadata"]["annotations"] == {"container.apparmor.security.beta.kubernetes.io/buildkitd": "unconfined"}
    assert container["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "seccompProfile": {"type": "Unconfined"}}
    assert "--oci-worker-no-process-sandbox" in container["args"]
    # buildctl in the container (probes, dial-stdio) reaches the daemon on its unix socket only
    assert container["args"][:2] == ["--addr", SOCKET]
    assert {"name": "BUILDKIT_HOST", "value": SOCKET} in container["env"]
    assert "ports" not in container and not any(a.startswith("tcp://") for a in container["args"])
    assert container["readinessProbe"]["exec"]["command"] == ["buildctl", "debug", "workers"]


def test_each_replica_has_a_cache_claim_and_resources_are_set():
    (statefulset,) = compile_builder(FULL)
    spec = statefulset["spec"]
    assert statefulset["kind"] == "StatefulSet" and spec["replicas"] == 3
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}},
                             "storageClassName": "fast-ssd"}
    assert _container([statefulset])["volumeMounts"] == [{"name": claim["metadata"]["name"], "mountPath": CACHE_DIR}]
    # buildkitd keeps its state on the claim, which the rootless user (uid 1000) can write
    args = _container([statefulset])["args"]
    assert args[args.index("--root") + 1] == CACHE_DIR
    assert spec["template"]["spec"]["securityContext"] == {"fsGroup": 1000}
    assert _container([statefulset])["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                      "limits": {"cpu": "4", "memory": "8Gi"}}
    assert "resources" not in _container(compile_builder(BuilderSpec(name="bk", namespace="default")))
    # the labels `dsl builder ls|rm` and kube-pod:// select on, on the Pods and the claims
    for labels in (statefulset["metadata"]["labels"], spec["template"]["metadata"]["labels"], claim["metadata"]["labels"]):
        assert labels["envdsl/builder"] == "bk"
    assert spec["selector"] == {"matchLabels": {"envdsl/builder": "bk"}}


def test_same_options_same_bytes():
    assert dump_yaml(compile_builder(FULL)[0]) == dump_yaml(compile_builder(FULL)[0])
    assert "&id" not in dump_yaml(compile_builder(FULL)[0])  # no YAML aliases from shared dicts


@pytest.mark.parametrize(("change", "message"), [
    ({"image": "moby/buildkit:v0.19.0-rootless"}, "pinned by digest"),
    ({"name": "Bad_Name"}, "DNS label"),
    ({"replicas": 0}, "between 1 and 64"),
    ({"memory_limit": "8 GB"}, "not a Kubernetes quantity"),
])
def test_bad_options_are_one_usage_error(change, message):
    import dataclasses

    with pytest.raises(UsageError, match=message):
        compile_builder(dataclasses.replace(BuilderSpec(name="bk", namespace="default"), **change))
