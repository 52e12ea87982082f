"""The Docker-backed kubelet of the fake API server: what a Pod's status and events say as it
is scheduled, pulled, configured, started, probed, restarted and deleted — the states a
runner must surface (ImagePullBackOff, an Unschedulable Pod behind a Pending PVC, a crash
loop, a missing Secret)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from fakes.kube import FakeKube, KubeletOptions
from fakes.kube.kubelet import LABEL
from tests.fakes.conftest import wait_for


def container(image: str, command: list[str] | None = None, name: str = "app", **fields) -> dict:
    out = {"name": name, "image": image, **fields}
    if command is not None:
        out["command"] = command
    return out


def pod(name: str, *containers: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": list(containers), **spec}}


def status_of(core, name: str) -> dict:
    return core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, "default").status)


def events_of(core, name: str) -> list[tuple[str, str, str]]:
    listed = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    return [(e.type, e.reason, e.message) for e in listed.items]


def waiting_reason(core, name: str, index: int = 0) -> str:
    statuses = status_of(core, name).get("containerStatuses") or []
    return ((statuses[index].get("state") or {}).get("waiting") or {}).get("reason", "") if statuses else ""


def exec_out(core, name: str, command: list[str], container_name: str = "") -> str:
    extra = {"container": container_name} if container_name else {}
    return stream(core.connect_get_namespaced_pod_exec, name, "default", command=command, stdout=True, stderr=True,
                  stdin=False, tty=False, **extra)


def test_a_pod_with_a_claim_and_a_secret_becomes_ready_with_the_real_sequence_of_events(core, base_image):
    core.create_namespaced_secret("default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"},
                                              "stringData": {"authorized_keys": "ssh-ed25519 AAAA test", "other": "x"}})
    core.create_namespaced_persistent_volume_claim("default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    server = "import socket, time\ntime.sleep(1)\ns = socket.socket(); s.bind(('0.0.0.0', 2222)); s.listen()\nwhile True: s.accept()[0].close()"
    core.create_namespaced_pod("default", pod(
        "env", container(base_image, ["python3", "-c", server],
                         env=[{"name": "KEYS", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "authorized_keys"}}},
                              {"name": "GREETING", "value": "hi $(KEYS)"}],
                         ports=[{"name": "ssh", "containerPort": 2222}],
                         readinessProbe={"tcpSocket": {"port": "ssh"}, "periodSeconds": 1},
                         workingDir="/home/work",
                         securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                         volumeMounts=[{"name": "work", "mountPath": "/home/work"},
                                       {"name": "keys", "mountPath": "/etc/keys", "readOnly": True}]),
        securityContext={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True},
        volumes=[{"name": "work", "persistentVolumeClaim": {"claimName": "work"}},
                 {"name": "keys", "secret": {"secretName": "keys", "defaultMode": 0o440,
                                             "items": [{"key": "authorized_keys", "path": "authorized_keys"}]}}]))
    claim = core.read_namespaced_persistent_volume_claim("work", "default")
    assert claim.spec.storage_class_name == "standard"  # DefaultStorageClass admission

    running = wait_for(lambda: (s := status_of(core, "env"))["phase"] == "Running" and s)
    assert running["containerStatuses"][0]["ready"] is False  # the probe has not passed yet
    ready = wait_for(lambda: (s := status_of(core, "env"))["containerStatuses"][0]["ready"] and s, timeout=20)
    conditions = {c["type"]: c["status"] for c in ready["conditions"]}
    assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                          "ContainersReady": "True", "PodScheduled": "True"}
    entry = ready["containerStatuses"][0]
    assert entry["state"]["running"]["startedAt"] and entry["restartCount"] == 0 and entry["imageID"]
    assert entry["containerID"].startswith("docker://") and ready["podIP"]
    assert core.read_namespaced_persistent_volume_claim("work", "default").status.phase == "Bound"

    reasons = [reason for _, reason, _ in events_of(core, "env")]
    assert reasons[:5] == ["Scheduled", "Pulled", "Created", "Started", "Unhealthy"] or \
        reasons[:4] == ["Scheduled", "Pulled", "Created", "Started"]
    assert ("Normal", "Created", "Created container: app") in events_of(core, "env")

    out = exec_out(core, "env", ["sh", "-c", (
        'id; pwd; echo "$GREETING"; stat -c "%u:%g %a" /home/work /etc/keys/..data/authorized_keys; '
        'ls /etc/keys; touch /home/work/mine; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status')])
    lines = out.splitlines()
    assert lines[0] == "uid=1000 gid=1000 groups=1000"
    assert lines[1:3] == ["/home/work", "hi ssh-ed25519 AAAA test"]
    assert lines[3:5] == ["0:1000 2775", "0:1000 440"]  # fsGroup: group-owned, setgid, g+rw
    assert lines[5] == "authorized_keys"  # items: only the key asked for
    assert lines[6].split() == ["CapEff:", "0000000000000000"] and lines[7].split() == ["NoNewPrivs:", "1"]


def test_an_image_that_cannot_be_pulled_goes_to_image_pull_back_off(core, registry):
    image = f"{registry}/nothing-here@sha256:{'0' * 64}"
    core.create_namespaced_pod("default", pod("nopull", container(image, ["true"])))
    wait_for(lambda: waiting_reason(core, "nopull") == "ErrImagePull", timeout=20, every=0.05)
    state = wait_for(lambda: waiting_reason(core, "nopull") == "ImagePullBackOff"
                     and status_of(core, "nopull")["containerStatuses"][0]["state"]["waiting"], timeout=20)
    assert state["message"].startswith(f'Back-off pulling image "{image}"')
    assert status_of(core, "nopull")["phase"] == "Pending"
    events = events_of(core, "nopull")
    assert ("Normal", "Pulling", f'Pulling image "{image}"') in events
    assert any(t == "Warning" and r == "Failed" and m.startswith(f'Failed to pull image "{image}": ') for t, r, m in events)
    assert ("Warning", "Failed", "Error: ErrImagePull") in events
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in events
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in events
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("nopull", "default")
    assert json.loads(caught.value.body)["message"] == \
        'container "app" in pod "nopull" is waiting to start: trying and failing to pull image'


def test_an_image_is_pulled_from_the_test_registry_by_digest(core, registry, docker_api, base_image):
    repository = f"{registry}/fake-kube-pull-{uuid.uuid4().hex[:6]}"
    docker_api.tag(base_image, repository, "v1")
    try:
        for _ in docker_api.push(repository, tag="v1", stream=True):
            pass
        digest = next(d for d in docker_api.inspect_image(f"{repository}:v1")["RepoDigests"] if d.startswith(repository))
    finally:
        docker_api.remove_image(f"{repository}:v1")
    core.create_namespaced_pod("default", pod("pulled", container(digest, ["sleep", "60"])))
    running = wait_for(lambda: (s := status_of(core, "pulled"))["phase"] == "Running" and s, timeout=60)
    assert running["containerStatuses"][0]["imageID"] == digest
    assert any(r == "Pulled" and m.startswith(f'Successfully pulled image "{digest}" in ') for _, r, m in events_of(core, "pulled"))


def test_a_claim_of_an_unknown_storage_class_keeps_the_pod_unschedulable(core, base_image):
    core.create_namespaced_persistent_volume_claim("default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "fast-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_pod("default", pod("stuck", container(base_image, ["sleep", "60"]),
                                              volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "fast-data"}}]))
    scheduled = wait_for(lambda: [c for c in status_of(core, "stuck").get("conditions") or () if c["type"] == "PodScheduled"])
    message = ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are "
               "available: 1 Preemption is not helpful for scheduling.")
    assert scheduled[0] | {"lastTransitionTime": None} == {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                         "message": message, "lastTransitionTime": None}
    assert status_of(core, "stuck")["phase"] == "Pending"
    assert ("Warning", "FailedScheduling", message) in events_of(core, "stuck")
    claim_events = wait_for(lambda: events_of(core, "fast-data"))
    assert claim_events == [("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found')]
    assert core.read_namespaced_persistent_volume_claim("fast-data", "default").status.phase == "Pending"
    assert core.read_namespaced_pod("stuck", "default").spec.node_name is None


def test_a_missing_secret_is_a_create_container_config_error_until_it_exists(core, base_image):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    core.create_namespaced_pod("default", pod("config", container(base_image, ["sleep", "60"], env=env)))
    state = wait_for(lambda: waiting_reason(core, "config") == "CreateContainerConfigError"
                     and status_of(core, "config")["containerStatuses"][0]["state"]["waiting"])
    assert state["message"] == 'secret "later" not found'
    assert ("Warning", "Failed", 'Error: secret "later" not found') in events_of(core, "config")

    core.create_namespaced_secret("default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "later"},
                                              "data": {"other": base64.b64encode(b"x").decode()}})
    state = wait_for(lambda: (s := status_of(core, "config")["containerStatuses"][0]["state"].get("waiting"))
                     and "couldn't find key" in s.get("message", "") and s)
    assert state["message"] == "couldn't find key token in Secret default/later"

    core.patch_namespaced_secret("later", "default", {"stringData": {"token": "t0ken"}})
    wait_for(lambda: status_of(core, "config")["phase"] == "Running")
    assert exec_out(core, "config", ["sh", "-c", "echo $TOKEN"]) == "t0ken\n"


def test_a_crashing_container_is_restarted_into_crash_loop_back_off(core, base_image):
    core.create_namespaced_pod("default", pod("crash", container(base_image, ["sh", "-c", "echo boom $$; exit 2"])))
    entry = wait_for(lambda: (s := status_of(core, "crash").get("containerStatuses")) and s[0]["state"].get("waiting", {})
                     .get("reason") == "CrashLoopBackOff" and s[0], timeout=30)
    assert entry["restartCount"] >= 1 and entry["ready"] is False
    assert entry["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=app pod=crash_default(")
    last = entry["lastState"]["terminated"]
    assert last["exitCode"] == 2 and last["reason"] == "Error" and last["containerID"].startswith("docker://")
    assert status_of(core, "crash")["phase"] == "Running"  # restartPolicy Always: still Running
    previous = core.read_namespaced_pod_log("crash", "default", previous=True)
    assert previous.startswith("boom ")
    assert any(t == "Warning" and r == "BackOff" and m.startswith("Back-off restarting failed container app in pod crash_default(")
               for t, r, m in events_of(core, "crash"))


def test_previous_logs_need_a_terminated_container(core, base_image):
    core.create_namespaced_pod("default", pod("steady", container(base_image, ["sleep", "60"])))
    wait_for(lambda: status_of(core, "steady")["phase"] == "Running")
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("steady", "default", previous=True)
    assert json.loads(caught.value.body)["message"] == 'previous terminated container "app" in pod "steady" not found'


def test_init_containers_run_in_order_before_the_app_and_share_its_volumes(core, base_image):
    init = [container(base_image, ["sh", "-c", "echo one > /work/order"], name="first",
                      volumeMounts=[{"name": "scratch", "mountPath": "/work"}]),
            container(base_image, ["sh", "-c", "echo two >> /work/order"], name="second",
                      volumeMounts=[{"name": "scratch", "mountPath": "/work"}])]
    core.create_namespaced_pod("default", pod(
        "inits", container(base_image, ["sleep", "60"], volumeMounts=[{"name": "scratch", "mountPath": "/work"},
                                                                      {"name": "shm", "mountPath": "/dev/shm"}]),
        initContainers=init, volumes=[{"name": "scratch", "emptyDir": {}},
                                      {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]))
    running = wait_for(lambda: (s := status_of(core, "inits"))["phase"] == "Running" and s)
    assert [(c["name"], c["state"]["terminated"]["reason"]) for c in running["initContainerStatuses"]] == \
        [("first", "Completed"), ("second", "Completed")]
    out = exec_out(core, "inits", ["sh", "-c", "cat /work/order; stat -c %a /work; df -k /dev/shm | tail -1"])
    lines = out.splitlines()
    assert lines[:3] == ["one", "two", "777"]
    assert lines[3].split()[0] == "tmpfs" and lines[3].split()[1] == str(64 * 1024)
    assert core.read_namespaced_pod_log("inits", "default", container="first") == ""


def test_command_and_args_follow_kubernetes_not_docker_semantics(core, docker_api, base_image):
    holder = docker_api.create_container(base_image, ["true"])
    image = f"fake-kube-entrypoint:{uuid.uuid4().hex[:6]}"
    repo, tag = image.split(":")
    docker_api.commit(holder["Id"], repo, tag, changes=['ENTRYPOINT ["echo", "entrypoint"]', 'CMD ["cmd"]'])
    docker_api.remove_container(holder["Id"])
    try:
        core.create_namespaced_pod("default", pod(
            "semantics",
            container(image, name="defaults"),
            container(image, name="args", args=["arg $(WHO)"], env=[{"name": "WHO", "value": "me"}]),
            container(image, ["echo", "command"], name="command"),
            container(image, ["echo", "both"], name="both", args=["$$(WHO)", "$(UNKNOWN)"]),
            restartPolicy="Never"))
        wait_for(lambda: status_of(core, "semantics")["phase"] == "Succeeded")
        logs = {name: core.read_namespaced_pod_log("semantics", "default", container=name)
                for name in ("defaults", "args", "command", "both")}
        assert logs == {"defaults": "entrypoint cmd\n", "args": "entrypoint arg me\n", "command": "command\n",
                        "both": "both $(WHO) $(UNKNOWN)\n"}
    finally:
        core.delete_namespaced_pod("semantics", "default", grace_period_seconds=0)
        wait_for(lambda: not core.list_namespaced_pod("default").items)
        wait_for(lambda: not docker_api.containers(all=True, filters={"ancestor": image}))
        docker_api.remove_image(image)


def test_deleting_a_pod_is_graceful_and_keeps_the_claims_volume(core, fake_kube_node, docker_api, base_image):
    core.create_namespaced_persistent_volume_claim("default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "keep"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": "keep"}}]
    mounts = [{"name": "d", "mountPath": "/d"}]
    core.create_namespaced_pod("default", pod("first", container(base_image, ["sleep", "600"], volumeMounts=mounts),
                                              volumes=volumes, terminationGracePeriodSeconds=30))
    wait_for(lambda: status_of(core, "first")["phase"] == "Running")
    exec_out(core, "first", ["sh", "-c", "echo kept > /d/file"])
    core.delete_namespaced_pod("first", "default")
    terminating = core.read_namespaced_pod("first", "default")  # still there: the kubelet stops it first
    assert terminating.metadata.deletion_timestamp is not None and terminating.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: not core.list_namespaced_pod("default").items, timeout=20)
    assert ("Normal", "Killing", "Stopping container app") in events_of(core, "first")

    core.create_namespaced_pod("default", pod("second", container(base_image, ["sleep", "600"], volumeMounts=mounts),
                                              volumes=volumes))
    wait_for(lambda: status_of(core, "second")["phase"] == "Running")
    assert exec_out(core, "second", ["cat", "/d/file"]) == "kept\n"
    core.delete_namespaced_pod("second", "default", grace_period_seconds=0)  # at once
    assert not core.list_namespaced_pod("default").items
    label = {"label": f"{LABEL}={fake_kube_node.kubelet.id}"}
    wait_for(lambda: not docker_api.containers(all=True, filters=label))
    assert len(docker_api.volumes(filters=label)["Volumes"] or ()) == 1
    core.delete_namespaced_persistent_volume_claim("keep", "default")
    wait_for(lambda: not (docker_api.volumes(filters=label)["Volumes"] or ()), timeout=10)
    assert not client.CoreV1Api(core.api_client).list_persistent_volume().items  # reclaimed: Delete


def test_stop_removes_every_container_and_volume_the_kubelet_made(tmp_path, docker_host, docker_api, base_image):
    with FakeKube.running(tmp_path, kubelet=KubeletOptions(docker_host, pause_image=base_image)) as kube:
        api = kube.api_client()
        core = client.CoreV1Api(api)
        core.create_namespaced_persistent_volume_claim("default", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        core.create_namespaced_pod("default", pod("p", container(base_image, ["sleep", "600"]),
                                                  volumes=[{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}]))
        wait_for(lambda: status_of(core, "p")["phase"] == "Running")
        label = {"label": f"{LABEL}={kube.kubelet.id}"}
        assert len(docker_api.containers(filters=label)) == 2  # the sandbox and the app
        api.close()
    assert docker_api.containers(all=True, filters=label) == []
    assert not (docker_api.volumes(filters=label)["Volumes"] or ())
    assert kube.kubelet.errors == []


def test_a_statefulsets_pod_runs_and_the_sets_status_follows_it(core, base_image):
    apps = client.AppsV1Api(core.api_client)
    labels = {"app": "web"}
    apps.create_namespaced_stateful_set("default", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "serviceName": "web", "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container(base_image, ["sleep", "600"],
                                                                volumeMounts=[{"name": "data", "mountPath": "/data"}])]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    wait_for(lambda: status_of(core, "web-0")["phase"] == "Running" if core.list_namespaced_pod("default").items else False)
    assert core.read_namespaced_persistent_volume_claim("data-web-0", "default").status.phase == "Bound"
    status = wait_for(lambda: (s := apps.read_namespaced_stateful_set("web", "default").status).ready_replicas == 1 and s)
    assert (status.replicas, status.updated_replicas, status.current_replicas) == (1, 1, 1)
    assert status.current_revision == status.update_revision and status.current_revision.startswith("web-")
