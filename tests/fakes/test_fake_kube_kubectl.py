"""The fake API server driven by the real kubectl (1.32): apply (client- and server-side, -k,
--prune, --dry-run=server), replace, get, delete, and the refusals a real server gives.

The acceptance check of issue 9 that proves the fake strict lives here too: a Pod with a fixed
name (as ``dsl compile`` made it before Pods were named by their config hash), applied, then
re-applied after a ``runtime.environ`` change, is refused with the real server's text. The
flow that succeeds with today's trees is in tests/gitops.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POD_UPDATE_RULE = ("is invalid: spec: Forbidden: pod updates may not change fields other than "
                   "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                   "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                   "(allow it to be set to 1 if it was previously negative)")
POD_REFUSED = f'The Pod "dev-workspace" {POD_UPDATE_RULE}'
INSTANCE = "app.kubernetes.io/instance=dev-workspace"


_compiled: dict[str, Path] = {}


def compile_tree(example: Path, out: Path) -> Path:
    """``python -m dsl compile --target k8s -o OUT EXAMPLE`` with this checkout's code.

    The same build file compiles once per session (a copy of that tree is handed out): the
    compiler's determinism makes the copy the same bytes, and it saves a process per test.
    """
    source = (example / "build.envd").read_text()
    if source in _compiled and not out.exists():
        return Path(shutil.copytree(_compiled[source], out))
    done = subprocess.run([sys.executable, "-m", "dsl", "compile", "--target", "k8s", "-o", str(out), str(example)],
                          check=False, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _compiled.setdefault(source, Path(shutil.copytree(out, out.parent / f"compiled-{len(_compiled)}")))
    return out


def pod_file(tree: Path) -> Path:
    """The tree's one Pod file, ``pod-<env>-<config hash>.yaml``."""
    (path,) = tree.glob("pod-*.yaml")
    return path


def pod_name(tree: Path) -> str:
    return pod_file(tree).name.removeprefix("pod-").removesuffix(".yaml")


def with_fixed_pod_name(tree: Path, name: str = "dev-workspace") -> Path:
    """The tree as ``dsl compile`` wrote it before Pods were named by their config hash."""
    pod = pod_file(tree)
    pod.write_text(pod.read_text().replace(f"\n  name: {pod_name(tree)}\n", f"\n  name: {name}\n"))
    return tree


def copy_example(tmp_path: Path, name: str = "dev-workspace") -> Path:
    return Path(shutil.copytree(REPO / "examples" / name, tmp_path / "src" / name))


def objects(kubectl, *what: str) -> list[dict]:
    done = kubectl("get", *what, "-o", "json", "--show-managed-fields")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"]


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kubectl_sees_a_fake_1_32_server(kubectl):
    version = json.loads(ok(kubectl("version", "-o", "json")))
    assert version["serverVersion"]["gitVersion"] == "v1.32.0-fake"
    resources = ok(kubectl("api-resources", "-o", "name"))
    for name in ("pods", "services", "persistentvolumeclaims", "secrets", "serviceaccounts",
                 "statefulsets.apps", "deployments.apps"):
        assert name in resources.split()


def test_apply_k_creates_the_tree_and_a_second_apply_changes_nothing(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    first = ok(kubectl("apply", "-k", str(tree)))
    assert f"pod/{pod_name(tree)} created" in first and "service/dev-workspace created" in first
    before = {o["metadata"]["name"]: o["metadata"] for o in objects(kubectl, "pods,svc,pvc")}
    again = ok(kubectl("apply", "-k", str(tree)))
    assert f"pod/{pod_name(tree)} unchanged" in again and "created" not in again
    after = {o["metadata"]["name"]: o["metadata"] for o in objects(kubectl, "pods,svc,pvc")}
    assert {n: (m["uid"], m["resourceVersion"]) for n, m in after.items()} == \
        {n: (m["uid"], m["resourceVersion"]) for n, m in before.items()}
    pod = objects(kubectl, "pods")[0]
    assert pod["spec"]["serviceAccountName"] == "default" and pod["status"]["phase"] == "Pending"
    assert pod["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"  # defaulted


def test_a_changed_environ_is_refused_for_a_fixed_pod_name(kubectl, tmp_path):
    """Issue 9's defect, reproduced: the fake refuses it with a real server's status and text."""
    source = copy_example(tmp_path)
    tree = with_fixed_pod_name(compile_tree(source, tmp_path / "k8s"))
    ok(kubectl("apply", "-k", str(tree)))
    build = source / "build.envd"
    build.write_text(build.read_text().replace('"EDITOR": "vim"', '"EDITOR": "nano"'))
    with_fixed_pod_name(compile_tree(source, tree))

    applied = kubectl("apply", "-k", str(tree))
    assert applied.returncode == 1
    assert POD_REFUSED in applied.stderr
    replaced = kubectl("replace", "-f", str(pod_file(tree)))
    assert replaced.returncode == 1 and POD_REFUSED in replaced.stderr
    # Server-side apply over client-side apply: kubectl-client-side-apply owns the old value.
    server_side = kubectl("apply", "--server-side", "-k", str(tree))
    assert server_side.returncode == 1
    assert 'Apply failed with 3 conflicts: conflicts with "kubectl-client-side-apply" using v1' in server_side.stderr
    assert '- .spec.containers[name="environment"].env[name="EDITOR"].value' in server_side.stderr
    assert '- .metadata.annotations.envdsl/config-hash' in server_side.stderr  # and the content hash
    forced = kubectl("apply", "--server-side", "--force-conflicts", "-k", str(tree))
    assert forced.returncode == 1 and POD_REFUSED in forced.stderr
    env = objects(kubectl, "pods")[0]["spec"]["containers"][0]["env"]
    assert {"name": "EDITOR", "value": "vim"} in env  # nothing was written


def test_labels_of_a_pod_may_change(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "-k", str(tree)))
    ok(kubectl("label", "pod", pod_name(tree), "team=ml"))
    ok(kubectl("annotate", "pod", pod_name(tree), "note=hi"))
    ok(kubectl("set", "image", f"pod/{pod_name(tree)}", "environment=dev-workspace:v2"))
    pod = objects(kubectl, "pods", "-l", "team=ml")[0]
    assert pod["spec"]["containers"][0]["image"] == "dev-workspace:v2"


def test_prune_deletes_the_pod_that_left_the_tree_and_keeps_the_claims(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "-k", str(tree)))
    claims = {o["metadata"]["name"]: o["metadata"]["uid"] for o in objects(kubectl, "pvc")}
    # The config-hash shape: a changed config is a Pod of another name (tests/gitops regenerates).
    old, pod = pod_name(tree), pod_file(tree)
    pod.write_text(pod.read_text().replace(f"\n  name: {old}\n", "\n  name: dev-workspace-0a1b2c3d\n")
                   .replace("value: vim", "value: nano"))
    pruned = ok(kubectl("apply", "-k", str(tree), "--prune", "-l", INSTANCE))
    assert "pod/dev-workspace-0a1b2c3d created" in pruned and f"pod/{old} pruned" in pruned
    assert [o["metadata"]["name"] for o in objects(kubectl, "pods")] == ["dev-workspace-0a1b2c3d"]
    assert {o["metadata"]["name"]: o["metadata"]["uid"] for o in objects(kubectl, "pvc")} == claims


def test_prune_leaves_objects_without_the_label_or_not_applied_by_kubectl(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    other = tmp_path / "other.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n")
    ok(kubectl("create", "-f", str(other)))  # no last-applied annotation
    ok(kubectl("apply", "-k", str(tree)))
    ok(kubectl("label", "configmap", "other", INSTANCE))
    (tree / "kustomization.yaml").write_text((tree / "kustomization.yaml").read_text().replace(f"- {pod_file(tree).name}\n", ""))
    pruned = ok(kubectl("apply", "-k", str(tree), "--prune", "-l", INSTANCE))
    assert f"pod/{pod_name(tree)} pruned" in pruned and "configmap" not in pruned
    assert objects(kubectl, "configmaps", "-l", INSTANCE)[0]["metadata"]["name"] == "other"


def test_server_side_apply_conflicts_between_field_managers(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "--server-side", "-k", str(tree)))
    service = tree / "service-dev-workspace.yaml"
    service.write_text(service.read_text().replace("type: NodePort", "type: ClusterIP"))
    refused = kubectl("apply", "--server-side", "--field-manager=gitops", "-f", str(service))
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.type' in refused.stderr
    assert objects(kubectl, "svc")[0]["spec"]["type"] == "NodePort"
    ok(kubectl("apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", str(service)))
    live = objects(kubectl, "svc")[0]
    assert live["spec"]["type"] == "ClusterIP"
    owners = {e["manager"]: e["fieldsV1"] for e in live["metadata"]["managedFields"]}
    assert "f:type" in owners["gitops"]["f:spec"] and "f:type" not in owners["kubectl"]["f:spec"]


def test_dry_run_server_validates_and_writes_nothing(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    dry = ok(kubectl("apply", "-k", str(tree), "--dry-run=server"))
    assert f"pod/{pod_name(tree)} created (server dry run)" in dry
    assert objects(kubectl, "pods,svc,pvc") == []
    ok(kubectl("apply", "-k", str(tree)))
    ok(kubectl("delete", "pod", pod_name(tree), "--dry-run=server"))
    assert len(objects(kubectl, "pods")) == 1
    bad = pod_file(tree)  # edited by hand, keeping its name: the update rule still holds
    bad.write_text(bad.read_text().replace("value: vim", "value: nano"))
    refused = kubectl("apply", "-k", str(tree), "--dry-run=server")
    assert refused.returncode == 1 and f'The Pod "{pod_name(tree)}" {POD_UPDATE_RULE}' in refused.stderr


def test_delete_and_not_found(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "-k", str(tree)))
    deleted = ok(kubectl("delete", "-k", str(tree)))
    assert f'pod "{pod_name(tree)}" deleted' in deleted
    assert objects(kubectl, "pods,svc,pvc") == []
    missing = kubectl("delete", "pod", pod_name(tree))
    assert missing.returncode == 1
    assert f'Error from server (NotFound): pods "{pod_name(tree)}" not found' in missing.stderr
    absent = kubectl("get", "deployment.apps", "nope")
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in absent.stderr


def test_unknown_fields_are_refused_as_kubectl_asks_for_strict_validation(kubectl, tmp_path):
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\nspce: {}\n")
    refused = kubectl("apply", "-f", str(manifest))
    assert refused.returncode == 1 and 'strict decoding error: unknown field "spce"' in refused.stderr
    ok(kubectl("apply", "--validate=false", "-f", str(manifest)))  # then the server drops it
    assert "spce" not in objects(kubectl, "configmaps", "--field-selector", "metadata.name=x")[0]


def test_protobuf_bodies_are_refused_plainly(kubectl):
    refused = kubectl("create", "namespace", "team")
    assert refused.returncode == 1 and "does not decode protobuf" in refused.stderr


def test_invalid_names_are_refused(kubectl, tmp_path):
    manifest = tmp_path / "svc.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: 1st}\nspec: {ports: [{port: 80}]}\n")
    refused = kubectl("apply", "-f", str(manifest))
    assert refused.returncode == 1
    assert 'The Service "1st" is invalid: metadata.name: Invalid value: "1st": a DNS-1035 label must consist' in refused.stderr


def test_namespaces_scope_objects(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    missing = kubectl("apply", "-k", str(tree), "-n", "team")
    assert missing.returncode == 1 and 'namespaces "team" not found' in missing.stderr
    namespace = tmp_path / "ns.yaml"
    namespace.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
    ok(kubectl("create", "-f", str(namespace)))
    ok(kubectl("apply", "-k", str(tree), "-n", "team"))
    assert objects(kubectl, "pods") == []
    assert [o["metadata"]["namespace"] for o in objects(kubectl, "pods", "-A")] == ["team"]
    assert [o["metadata"]["name"] for o in objects(kubectl, "serviceaccounts", "-n", "team")] == ["default"]
    ok(kubectl("delete", "namespace", "team"))
    assert objects(kubectl, "pods", "-A") == []


@pytest.mark.parametrize("patch_type, body", [
    ("merge", '{"metadata": {"labels": {"tier": "dev"}}}'),
    ("json", '[{"op": "add", "path": "/metadata/labels/tier", "value": "dev"}]'),
    ("strategic", '{"metadata": {"labels": {"tier": "dev"}}}'),
])
def test_kubectl_patch_types(kubectl, tmp_path, patch_type, body):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "-k", str(tree)))
    ok(kubectl("patch", "svc", "dev-workspace", "--type", patch_type, "-p", body))
    assert objects(kubectl, "svc", "-l", "tier=dev")[0]["metadata"]["name"] == "dev-workspace"


_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: img:1
        env: {env}
        ports: {ports}
      volumes: [{volume}]
"""
_BEFORE = _DEPLOYMENT.format(env='[{name: A, value: "1"}, {name: B, value: "2"}]',
                             ports="[{containerPort: 80}, {containerPort: 443}]", volume="{name: v, emptyDir: {}}")
_AFTER = _DEPLOYMENT.format(env='[{name: A, value: "1"}]', ports="[{containerPort: 443}]",
                            volume="{name: v, configMap: {name: x}}")


@pytest.mark.parametrize("mode", [[], ["--server-side"]], ids=["client-side", "server-side"])
def test_items_dropped_from_the_applied_config_are_removed(kubectl, tmp_path, mode):
    """Strategic merge (client-side: $patch delete, $retainKeys) and SSA (owned fields) alike."""
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(_BEFORE)
    ok(kubectl("apply", *mode, "-f", str(manifest)))
    manifest.write_text(_AFTER)
    ok(kubectl("apply", *mode, "-f", str(manifest)))
    [live] = objects(kubectl, "deployments.apps")
    spec = live["spec"]["template"]["spec"]
    assert spec["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert spec["containers"][0]["ports"] == [{"containerPort": 443, "protocol": "TCP"}]
    assert spec["volumes"] == [{"name": "v", "configMap": {"name": "x", "defaultMode": 420}}]
    assert live["metadata"]["generation"] == 2


@pytest.mark.fake_kube(controllers=True)
def test_kubectl_wait_sees_a_pod_become_ready_with_the_optional_kubelet(kubectl, tmp_path):
    tree = compile_tree(copy_example(tmp_path), tmp_path / "k8s")
    ok(kubectl("apply", "-k", str(tree)))
    waited = ok(kubectl("wait", "--for=condition=Ready", f"pod/{pod_name(tree)}", "--timeout=20s"))
    assert f"pod/{pod_name(tree)} condition met" in waited
