"""A GitOps tree keeps syncing: a changed build file rolls out instead of failing.

Issue 9's acceptance, for each ``--workload`` kind, with the real kubectl against the FAKE
API server (tests/fakes/kube): apply a tree with ``kubectl apply -k``, change an environment
variable and add a port, regenerate the tree, ``kubectl apply -k DIR --prune -l
app.kubernetes.io/instance=<env>``. It succeeds, the PVCs are the same objects (same UIDs),
and exactly one Pod is left, running the new configuration.

What is the API server's and what is a controller's, kept apart: the bare Pod's rollout is
all kubectl and the API server (a new name is created, the old object is pruned). For a
StatefulSet or Deployment the API server updates the object in place (same UID, a new
generation) and the fake's optional controllers then do what the documented controllers do
for one replica: StatefulSet RollingUpdate deletes ``<env>-0`` and makes it anew; Deployment
``Recreate`` removes the old Pod before making the new one (the fake makes Pods without a
ReplicaSet; kubectl's prune leaves controller-made objects alone either way, as they carry no
last-applied annotation).

Elsewhere: the same flow with a fixed Pod name fails with the real error text
(tests/fakes/test_fake_kube_kubectl.py::test_a_changed_environ_is_refused_for_a_fixed_pod_name),
and server-side apply gives a 409 when a second field manager changes an owned field
(tests/fakes/test_fake_kube_client.py::test_server_side_apply_conflict_force_and_shared_ownership).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = "dev-workspace"
INSTANCE = f"app.kubernetes.io/instance={ENV}"
WORKLOAD_RESOURCE = {"pod": "pods", "statefulset": "statefulsets.apps", "deployment": "deployments.apps"}
KUBECTL_KIND = {"pod": "pod", "statefulset": "statefulset.apps", "deployment": "deployment.apps"}


def compile_tree(source: Path, out: Path, workload: str) -> Path:
    """``dsl compile --target k8s -o OUT --workload W SOURCE`` with this checkout's code."""
    done = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "k8s", "-o", str(out),
                           "--workload", workload, "--image", "registry.example/ws:1", str(source)],
                          check=False, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def documented_sync(tree: Path) -> list[str]:
    """The kubectl arguments docs/kubernetes.md gives for a sync, for this tree and environment."""
    text = (REPO / "docs" / "kubernetes.md").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("kubectl apply -k deploy/ws --prune")]
    words = shlex.split(line.replace("deploy/ws", str(tree)).replace("instance=ws", f"instance={ENV}"))
    assert words[0] == "kubectl" and INSTANCE in words
    return words[1:]


def change_the_build_file(source: Path) -> None:
    """One environment value changed and one port added, as a user edits a build file."""
    build = source / "build.envd"
    text = build.read_text()
    assert '"EDITOR": "vim"' in text
    build.write_text(text.replace('"EDITOR": "vim"', '"EDITOR": "nano"') +
                     '    runtime.expose(envd_port=8000, host_port=8000, service="web")\n')


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def live(kubectl, resource: str) -> list[dict]:
    return json.loads(ok(kubectl("get", resource, "-l", INSTANCE, "-o", "json")))["items"]


def uids(kubectl, resource: str) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in live(kubectl, resource)}


def settle(fake_kube) -> None:
    fake_kube.controllers.settle()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "examples" / ENV, tmp_path / "src" / ENV))


def _container(pod: dict) -> dict:
    (container,) = pod["spec"]["containers"]
    return container


@pytest.mark.fake_kube(controllers=True)
@pytest.mark.parametrize("workload", ["pod", "statefulset", "deployment"])
def test_a_changed_build_file_rolls_out_with_apply_prune(kubectl, fake_kube, source, tmp_path, workload):
    tree = compile_tree(source, tmp_path / "k8s", workload)
    ok(kubectl("apply", "-k", str(tree)))
    settle(fake_kube)
    claims = uids(kubectl, "pvc")
    (first,) = live(kubectl, "pods")
    workloads = uids(kubectl, WORKLOAD_RESOURCE[workload])
    assert claims and len(workloads) == 1

    change_the_build_file(source)
    old_files = {p.name for p in tree.iterdir()}
    compile_tree(source, tree, workload)
    new_files = {p.name for p in tree.iterdir()}
    if workload == "pod":  # the writer replaced the Pod's file as a stale generated file
        assert len(old_files - new_files) == len(new_files - old_files) == 1
    else:
        assert new_files == old_files

    applied = ok(kubectl(*documented_sync(tree)))  # kubectl apply -k DIR --prune -l <instance>
    settle(fake_kube)

    assert uids(kubectl, "pvc") == claims  # the same claims: the data stays
    (pod,) = live(kubectl, "pods")  # exactly one Pod, with the new configuration
    container = _container(pod)
    assert {"name": "EDITOR", "value": "nano"} in container["env"]
    assert {"name": "web", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    assert pod["metadata"]["uid"] != first["metadata"]["uid"] and pod["status"]["phase"] == "Running"
    (service,) = live(kubectl, "services")
    assert 8000 in [p["port"] for p in service["spec"]["ports"]]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    current = uids(kubectl, WORKLOAD_RESOURCE[workload])
    assert len(current) == 1
    if workload == "pod":
        assert f"pod/{first['metadata']['name']} pruned" in applied
        assert pod["metadata"]["name"] != first["metadata"]["name"]
    else:
        # The API server updated the set in place; its controller replaced the Pod.
        assert current == workloads and f"{KUBECTL_KIND[workload]}/{ENV} configured" in applied
        (obj,) = live(kubectl, WORKLOAD_RESOURCE[workload])
        assert obj["metadata"]["generation"] == 2
        assert "pruned" not in applied  # nothing of ours left the tree
    if workload == "statefulset":
        assert pod["metadata"]["name"] == first["metadata"]["name"] == f"{ENV}-0"


@pytest.mark.fake_kube(controllers=True)
def test_switching_the_workload_kind_prunes_the_bare_pod_and_keeps_the_claims(kubectl, fake_kube, source, tmp_path):
    tree = compile_tree(source, tmp_path / "k8s", "pod")
    ok(kubectl("apply", "-k", str(tree)))
    claims = uids(kubectl, "pvc")
    (bare,) = live(kubectl, "pods")
    compile_tree(source, tree, "statefulset")
    applied = ok(kubectl("apply", "-k", str(tree), "--prune", "-l", INSTANCE))
    settle(fake_kube)
    assert f"pod/{bare['metadata']['name']} pruned" in applied and f"statefulset.apps/{ENV} created" in applied
    assert uids(kubectl, "pvc") == claims
    assert [p["metadata"]["name"] for p in live(kubectl, "pods")] == [f"{ENV}-0"]


def test_reapplying_an_unchanged_tree_changes_nothing(kubectl, source, tmp_path):
    """A sync without a change is a no-op: same objects, same resourceVersions."""
    tree = compile_tree(source, tmp_path / "k8s", "pod")
    ok(kubectl("apply", "-k", str(tree)))
    before = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in live(kubectl, "pods,svc,pvc")}
    again = ok(kubectl("apply", "-k", str(tree), "--prune", "-l", INSTANCE))
    assert "pruned" not in again and "created" not in again
    assert {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in live(kubectl, "pods,svc,pvc")} == before


def test_the_documented_argo_cd_and_flux_objects_prune_and_need_no_replace_or_force():
    """docs/kubernetes.md's Application and Kustomization say what the tests above need: prune."""
    import re

    import yaml

    text = (REPO / "docs" / "kubernetes.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]
    (app,) = [b for b in blocks if isinstance(b, dict) and b.get("kind") == "Application"]
    assert app["spec"]["syncPolicy"] == {"automated": {"prune": True}}  # no Replace=true, no Force=true
    (flux,) = [b for b in blocks if isinstance(b, dict) and b.get("apiVersion") == "kustomize.toolkit.fluxcd.io/v1"]
    assert flux["spec"]["prune"] is True and "force" not in flux["spec"]


def test_a_change_the_pod_does_not_need_keeps_it_running(kubectl, source, tmp_path):
    """A new Service type changes the Service in place; the Pod keeps its name and UID (only
    its content-hash annotation moves, which a live Pod allows)."""
    tree = compile_tree(source, tmp_path / "k8s", "pod")
    ok(kubectl("apply", "-k", str(tree)))
    (before,) = live(kubectl, "pods")
    build = source / "build.envd"
    build.write_text(build.read_text().replace('service(type="NodePort")', 'service(type="LoadBalancer")'))
    compile_tree(source, tree, "pod")
    applied = ok(kubectl(*documented_sync(tree)))
    assert "pruned" not in applied and f"pod/{before['metadata']['name']} configured" in applied
    (after,) = live(kubectl, "pods")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["annotations"]["envdsl/content-hash"] != before["metadata"]["annotations"]["envdsl/content-hash"]
    assert live(kubectl, "services")[0]["spec"]["type"] == "LoadBalancer"
