"""``dsl up --target k8s`` against the fake API server: what is applied (the compiled objects,
byte for byte), what a changed configuration does (new Pod, same PVCs), ``down`` and
``--purge``, server-side-apply conflicts, and the ServiceAccount of a fresh namespace."""

from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from tests.engines.kube.conftest import IMAGE, WEB, objects, project

pytestmark = pytest.mark.fake_kube(controllers=True)
WORKLOADS = ("pod", "statefulset", "deployment")
KINDS = {"pod": "Pod", "statefulset": "StatefulSet", "deployment": "Deployment"}


def _workload(kube, workload: str) -> dict:
    (obj,) = objects(kube, KINDS[workload]).values() if workload != "pod" else [
        p for p in objects(kube, "Pod").values() if not p["metadata"].get("ownerReferences")]
    return obj


def _compile_args(kube, user, directory, workload: str) -> list[str]:
    """The `dsl compile` options that must give what `up` applied: read back from the cluster."""
    live = _workload(kube, workload)
    notes = {k: v for k, v in live["metadata"]["annotations"].items()
             if k not in ("envdsl/content-hash", "envdsl/config-hash")}
    key = user.home / "cfg" / "envdsl" / "ssh" / "key" / "id_ed25519.pub"
    args = ["compile", "--target", "k8s", "--image", IMAGE, "-n", "default", "--workload", workload,
            "--ssh-public-key", str(key), "--host-key-secret", "ws-host-key"]
    for name, value in sorted(notes.items()):
        args += ["--annotation", f"{name}={value}"]
    return args


@pytest.mark.parametrize("workload", WORKLOADS)
def test_up_applies_exactly_what_dsl_compile_prints(workload, fake_kube, kube_user, recorded, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    result = kube_user.up(directory, "--workload", workload)
    assert result.returncode == 0, result.stderr
    applied = [(path, body.decode()) for method, path, kind, body in recorded
               if method == "PATCH" and kind == "application/apply-patch+yaml"]
    created = [json.loads(body) for method, path, _, body in recorded if method == "POST"]

    compiled = kube_user.dsl(*_compile_args(fake_kube, kube_user, directory, workload), cwd=directory)
    assert compiled.returncode == 0, compiled.stderr
    documents = ["---\n" + d for d in compiled.stdout.split("---\n") if d]
    by_name = {(d["kind"], d["metadata"]["name"]): text for text, d in
               ((text, yaml.safe_load(text)) for text in documents)}
    assert {k[0] for k in by_name} >= {"Secret", "PersistentVolumeClaim", "Service", KINDS[workload]}
    sent = {}
    for path, body in applied:
        doc = yaml.safe_load(body)
        # the one difference: the resourceVersion precondition of the compare-and-swap
        assert doc["metadata"].pop("resourceVersion")
        text = "".join(line + "\n" for line in body.splitlines() if not line.startswith("  resourceVersion: "))
        sent[(doc["kind"], doc["metadata"]["name"])] = "---\n" + text
    for name, text in by_name.items():
        assert sent.get(name) == text, f"{name} was not applied as compiled"
    for body in created:  # creations carry the same object, as JSON
        name = (body["kind"], body["metadata"]["name"])
        if name in by_name:
            assert body == yaml.safe_load(by_name[name])
    # the only objects up made itself: the host key Secret (private: never in a manifest)
    extra = set(sent) - set(by_name)
    assert extra == {("Secret", "ws-host-key")}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_a_changed_config_is_a_new_pod_on_the_same_pvcs(workload, fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory, "--workload", workload).returncode == 0
    claims = {n: c["metadata"]["uid"] for n, c in objects(fake_kube, "PersistentVolumeClaim").items()}
    first_pods = set(objects(fake_kube, "Pod"))
    (directory / "build.envd").write_text(WEB.format(config="two"))
    result = kube_user.up(directory, "--workload", workload)
    assert result.returncode == 0, result.stderr
    assert "recreated" in result.stdout and "replaced generation 1" in result.stdout
    fake_kube.controllers.settle()
    pods = objects(fake_kube, "Pod")
    assert len(pods) == 1
    (pod,) = pods.values()
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CONFIG"] == "two"
    assert pod["metadata"]["uid"] not in {p for p in first_pods}
    if workload == "pod":
        assert set(pods) != first_pods  # hash-named: the old one was retired
    assert {n: c["metadata"]["uid"] for n, c in objects(fake_kube, "PersistentVolumeClaim").items()} == claims
    # unchanged: nothing written
    again = kube_user.up(directory, "--workload", workload)
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_switching_workloads_retires_the_other_kind_and_keeps_the_volumes(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory).returncode == 0
    claims = {n: c["metadata"]["uid"] for n, c in objects(fake_kube, "PersistentVolumeClaim").items()}
    for workload in ("statefulset", "pod", "deployment"):
        result = kube_user.up(directory, "--workload", workload)
        assert result.returncode == 0, result.stderr
        fake_kube.controllers.settle()
        kinds = {k: len(objects(fake_kube, k)) for k in ("StatefulSet", "Deployment")}
        bare = [p for p in objects(fake_kube, "Pod").values() if not p["metadata"].get("ownerReferences")]
        assert kinds == {"StatefulSet": int(workload == "statefulset"), "Deployment": int(workload == "deployment")}
        assert len(bare) == int(workload == "pod")
        assert len(objects(fake_kube, "Pod")) == 1
    assert {n: c["metadata"]["uid"] for n, c in objects(fake_kube, "PersistentVolumeClaim").items()} == claims


def test_down_keeps_pvcs_and_secrets_and_purge_removes_them(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory).returncode == 0
    assert set(objects(fake_kube, "Secret")) == {"ws-ssh", "ws-host-key"}
    down = kube_user.dsl("down", "--target", "k8s", "ws", cwd=directory)
    assert down.returncode == 0, down.stderr
    assert "kept volumes ws-cache, ws-workdir" in down.stdout or "kept volumes" in down.stdout
    assert objects(fake_kube, "Pod") == {} and objects(fake_kube, "Service") == {}
    assert set(objects(fake_kube, "PersistentVolumeClaim")) == {"ws-workdir", "ws-cache"}
    assert set(objects(fake_kube, "Secret")) == {"ws-ssh", "ws-host-key"}
    assert not list((kube_user.home / ".ssh" / "envdsl" / "hosts").glob("*.conf"))
    purge = kube_user.dsl("down", "--target", "k8s", "--purge", "ws", cwd=directory)
    assert purge.returncode == 0, purge.stderr
    assert objects(fake_kube, "PersistentVolumeClaim") == {} and objects(fake_kube, "Secret") == {}
    assert "removed volumes" in purge.stdout


def test_the_ssh_block_reaches_the_same_cluster_and_namespace(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    result = kube_user.up(directory)
    assert result.returncode == 0, result.stderr
    (block,) = (kube_user.home / ".ssh" / "envdsl" / "hosts").glob("*.conf")
    text = block.read_text()
    assert "ssh --stdio --target k8s --kube-context fake -n default ws." in text
    assert "StrictHostKeyChecking yes" in text
    pinned = (kube_user.home / "cfg" / "envdsl" / "ssh" / "known_hosts").read_text()
    assert "ws." in pinned and "ssh-ed25519" in pinned
    # the host key reaches the Pod as the Secret the compiled Pod mounts; never as a label
    secret = objects(fake_kube, "Secret")["ws-host-key"]
    assert list(secret["data"]) == ["ssh_host_key"]
    pod = next(iter(objects(fake_kube, "Pod").values()))
    assert "PRIVATE" not in json.dumps(pod["metadata"])


def test_a_conflict_with_another_field_manager_is_reported_not_forced(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory).returncode == 0
    client = fake_kube.api_client()
    from kubernetes import client as k8s

    k8s.CoreV1Api(client).patch_namespaced_service(
        "ws", "default", {"metadata": {"labels": {"app.kubernetes.io/part-of": "someone-else"}}},
        field_manager="kubectl-edit")
    client.close()
    pod_before = set(objects(fake_kube, "Pod"))
    (directory / "build.envd").write_text(WEB.format(config="two"))
    result = kube_user.up(directory)
    assert result.returncode == 1, result.stderr
    assert "cannot apply Service ws: another field manager owns" in result.stderr
    assert 'app.kubernetes.io/part-of' in result.stderr and "kubectl-edit" in result.stderr
    assert "not forcing" in result.stderr and "Traceback" not in result.stderr
    assert objects(fake_kube, "Service")["ws"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "someone-else"
    assert set(objects(fake_kube, "Pod")) == pod_before  # what ran is left alone


def test_an_environment_of_another_project_with_the_same_name_is_not_touched(fake_kube, kube_user, tmp_path):
    first = project(tmp_path, WEB.format(config="one"))
    second = project(tmp_path, WEB.format(config="two"))
    assert kube_user.up(first).returncode == 0
    result = kube_user.up(second)
    assert result.returncode == 2, result.stderr
    assert "belongs to the environment of another project" in result.stderr and str(first) in result.stderr
    (pod,) = objects(fake_kube, "Pod").values()
    assert {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}["CONFIG"] == "one"


@pytest.mark.fake_kube(controllers=True, auto_service_accounts=False)
def test_a_fresh_namespace_without_its_default_service_account_yet_is_waited_for(fake_kube, kube_user, tmp_path):
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}})
    directory = project(tmp_path, WEB.format(config="one"))
    later = threading.Timer(1.5, fake_kube.writer.ensure_default_service_account, args=("fresh",))
    later.start()
    started = time.monotonic()
    result = kube_user.up(directory, "-n", "fresh")
    later.join()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.5
    assert len(objects(fake_kube, "Pod", "fresh")) == 1


def test_ls_shows_the_environment_from_its_labels(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory, "--workload", "statefulset").returncode == 0
    listed = kube_user.dsl("ls", "--target", "k8s", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["status"], row["kind"], row["namespace"], row["generation"], row["config"]) == \
        ("ws", "running", "StatefulSet", "default", 1, "current")
    assert row["pod"] == "ws-0" and row["project_dir"] == str(directory)
    (directory / "build.envd").write_text(WEB.format(config="two"))
    assert json.loads(kube_user.dsl("ls", "--target", "k8s", "--format", "json").stdout)[0]["config"] == \
        "stale (build file changed)"
    everywhere = kube_user.dsl("ls", "--target", "k8s", "-A")
    assert everywhere.returncode == 0 and "NAMESPACE" in everywhere.stdout and " default " in everywhere.stdout


def test_up_after_down_continues_the_generations_of_the_kept_volumes(fake_kube, kube_user, tmp_path):
    directory = project(tmp_path, WEB.format(config="one"))
    assert kube_user.up(directory).returncode == 0
    (directory / "build.envd").write_text(WEB.format(config="two"))
    assert kube_user.up(directory).returncode == 0
    assert kube_user.dsl("down", "--target", "k8s", "ws", cwd=directory).returncode == 0
    again = kube_user.up(directory)
    assert again.returncode == 0, again.stderr  # the kept PVCs are generation 2: this is 3
    assert "created (generation 3)" in again.stdout
    assert {c["metadata"]["annotations"]["envdsl/generation"]
            for c in objects(fake_kube, "PersistentVolumeClaim").values()} == {"3"}


def test_an_object_our_own_create_still_owns_as_updater_is_taken_over_not_reported(fake_kube, kube_user, tmp_path):
    """A POST followed by an interrupted take-over (someone wrote the object in between, or the
    command died) leaves field manager envdsl owning it as an updater; the next apply must not
    report a conflict with ourselves, nor force anything of another manager's."""
    directory = project(tmp_path, WEB.format(config="one"))
    from dsl.identity import project_hash

    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "ws-workdir", "labels": {"app.kubernetes.io/instance": "ws",
                                                           "app.kubernetes.io/managed-by": "envdsl"},
                          "annotations": {"envdsl/generation": "1", "envdsl/project": project_hash(str(directory))}},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}
    client = fake_kube.api_client()
    from kubernetes import client as k8s

    k8s.CoreV1Api(client).create_namespaced_persistent_volume_claim("default", claim, field_manager="envdsl")
    client.close()
    result = kube_user.up(directory)
    assert result.returncode == 0, result.stderr
    live = objects(fake_kube, "PersistentVolumeClaim")["ws-workdir"]
    assert live["metadata"]["annotations"]["envdsl/generation"] == "2"
    managers = {(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]}
    assert ("envdsl", "Update") not in managers and ("envdsl", "Apply") in managers
