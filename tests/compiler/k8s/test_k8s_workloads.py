"""``--workload pod|statefulset|deployment`` and the config hash that names a bare Pod.

What a user relies on: a changed configuration is a new Pod name (so GitOps tools roll it out
instead of failing on the immutable spec), a change the Pod does not need keeps the name, the
three kinds run the same Pod with the same labels and Service, and PVC names never change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler.k8s import CONFIG_HASH_ANNOTATION, WORKLOADS, K8sOptions, compile_k8s
from dsl.errors import UsageError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    Environment,
    KubernetesMount,
    KubernetesService,
    KubernetesSpec,
    Mount,
    Owner,
    Port,
    RuntimeSpec,
)

REPO = Path(__file__).resolve().parents[3]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1c2luZXNzIGNhc2UgZm9yIHRlc3RpbmcgcHVycG9zZXM user@laptop\n"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b\n"
KINDS = {"pod": "Pod", "statefulset": "StatefulSet", "deployment": "Deployment"}


def env(name: str = "proj", **runtime) -> Environment:
    runtime.setdefault("mounts", (Mount("/data"),))
    return Environment(name=name, build=BuildGraph(base=BaseImage(dev=True), owner=Owner(1001, 1002)),
                       runtime=RuntimeSpec(**runtime), source="proj/build.envd")


def compiled(environment: Environment | None = None, **opts) -> tuple[dict, ...]:
    opts.setdefault("image", "proj:1")
    return compile_k8s(environment or env(), K8sOptions(**opts))


def workload_of(objects) -> dict:
    (obj,) = [o for o in objects if o["kind"] in KINDS.values()]
    return obj


def pod_template(obj: dict) -> dict:
    """The Pod's metadata and spec, whatever the kind runs it."""
    if obj["kind"] == "Pod":
        return {"metadata": obj["metadata"], "spec": obj["spec"]}
    return obj["spec"]["template"]


def pod_name(objects) -> str:
    return workload_of(objects)["metadata"]["name"]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_each_kind_is_strict_valid_and_runs_the_same_pod_behind_the_same_service(workload, valid_objects):
    objects = compiled(workload=workload, ssh_public_key=KEY, namespace="team")
    valid_objects(objects)  # kubernetes-validate --strict 1.29 and 1.37, client model round trip
    assert [o["kind"] for o in objects] == ["Secret", "PersistentVolumeClaim", "PersistentVolumeClaim",
                                            "Service", KINDS[workload]]
    reference = pod_template(workload_of(compiled(ssh_public_key=KEY, namespace="team")))
    template = pod_template(workload_of(objects))
    assert template["spec"] == reference["spec"]  # security context, volumes, env, ports: all
    assert template["metadata"]["labels"] == reference["metadata"]["labels"]
    assert template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == \
        reference["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["metadata"]["name"] == "proj"
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    claims = [v["persistentVolumeClaim"]["claimName"] for v in template["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["proj-workdir", "proj-data"]  # referenced by name: the same claims for every kind
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"} == set(claims)


def test_a_statefulset_has_one_replica_selects_the_service_labels_and_no_claim_templates():
    objects = compiled(workload="statefulset")
    sts = workload_of(objects)
    service = next(o for o in objects if o["kind"] == "Service")
    assert sts["metadata"]["name"] == "proj"  # its Pod is proj-0
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == "proj"
    assert sts["spec"]["selector"] == {"matchLabels": service["spec"]["selector"]}
    assert "volumeClaimTemplates" not in sts["spec"]  # they would make new claims <t>-proj-0
    assert "updateStrategy" not in sts["spec"]  # RollingUpdate, the default: the controller rolls it


def test_a_deployment_has_one_replica_and_recreates_for_the_readwriteonce_volumes():
    deployment = workload_of(compiled(workload="deployment"))
    assert deployment["metadata"]["name"] == "proj"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_a_bare_pod_is_named_by_its_config_hash():
    pod = workload_of(compiled())
    digest = pod["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert digest.startswith("sha256:") and pod["metadata"]["name"] == "proj-" + digest[7:15]
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "proj"  # what --prune -l selects


@pytest.mark.parametrize("change", [
    {"environ": (("EDITOR", "nano"),)},
    {"ports": (Port(8000, service="web"),)},
    {"mounts": (Mount("/data"), Mount("/cache"))},
    {"kubernetes": KubernetesSpec(mounts=(KubernetesMount("scratch", "/data"),))},
], ids=["environ", "port", "mount", "claim-name"])
def test_a_change_the_pod_needs_is_a_new_pod_name(change):
    assert pod_name(compiled(env(**change))) != pod_name(compiled())
    assert pod_name(compiled(image="proj:2")) != pod_name(compiled())


def test_a_change_only_other_objects_need_keeps_the_pod():
    """A Service type or a claim's size changes those objects in place; the Pod stays (its
    content-hash annotation, which may change on a live Pod, still records the change)."""
    def claim(size: str) -> tuple[dict, ...]:
        return compiled(env(kubernetes=KubernetesSpec(mounts=(KubernetesMount("data", "/data", size=size),))))

    node_port = compiled(env(kubernetes=KubernetesSpec(service=KubernetesService("NodePort"))))
    for before, after in ((compiled(), node_port), (claim("50Gi"), claim("90Gi"))):
        assert pod_name(after) == pod_name(before)
        assert workload_of(after)["metadata"]["annotations"]["envdsl/content-hash"] != \
            workload_of(before)["metadata"]["annotations"]["envdsl/content-hash"]


def test_a_new_public_key_in_the_emitted_secret_is_a_new_pod():
    """The key reaches the container's environment at start only: a new key needs a new Pod."""
    assert pod_name(compiled(ssh_public_key=KEY)) != pod_name(compiled(ssh_public_key=OTHER_KEY))
    sts = [pod_template(workload_of(compiled(workload="statefulset", ssh_public_key=k))) for k in (KEY, OTHER_KEY)]
    assert sts[0]["metadata"]["annotations"] != sts[1]["metadata"]["annotations"]  # the controller rolls it
    assert sts[0]["spec"] == sts[1]["spec"]


def test_the_namespace_and_the_kind_are_not_configuration():
    assert pod_name(compiled(namespace="a")) == pod_name(compiled(namespace="b"))
    digests = {pod_template(workload_of(compiled(workload=w)))["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
               for w in WORKLOADS}
    assert len(digests) == 1


def test_long_names_stay_within_the_limits_of_each_kind(valid_objects):
    long = "a" * 40 + "-" + "b" * 40  # a base name cut to 63 characters with a hash suffix
    objects = {w: compiled(env(long), workload=w) for w in WORKLOADS}
    names = {w: workload_of(o)["metadata"]["name"] for w, o in objects.items()}
    assert len(names["pod"]) <= 63 and names["pod"].endswith(
        "-" + pod_template(workload_of(objects["pod"]))["metadata"]["annotations"][CONFIG_HASH_ANNOTATION][7:15])
    # The StatefulSet controller labels its Pod controller-revision-hash=<set>-<10 chars>.
    assert len(names["statefulset"]) + 11 <= 63
    assert names["statefulset"] != names["pod"] and len(names["deployment"]) <= 63
    for o in objects.values():
        valid_objects(o)


def test_an_unknown_workload_is_a_usage_error():
    with pytest.raises(UsageError) as err:
        compiled(workload="job")
    assert "--workload 'job'" in err.value.message and err.value.hint


def test_the_cli_offers_the_compilers_workloads_and_refuses_them_for_other_targets():
    from dsl.cli import compile as cli

    assert cli.WORKLOADS == WORKLOADS
    done = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "docker", "--workload", "statefulset",
                           "examples/services"], check=False, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "--workload is for --target k8s" in done.stderr and "Traceback" not in done.stderr
