"""The fake API server driven by the ``kubernetes`` Python client: CRUD with real Status
errors, server-side apply and field-manager conflicts, the Pod update rule, preconditions,
immutable fields, selectors, namespaces, admission and watch."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

APPLY = "application/apply-patch+yaml"


@pytest.fixture
def core(fake_kube):
    api = fake_kube.api_client()
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def apps(fake_kube):
    api = fake_kube.api_client()
    yield client.AppsV1Api(api)
    api.close()


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def failure(call, *args, **kwargs) -> tuple[int, dict]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, status_of(caught.value)


def config_map(name: str, data: dict | None = None, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": data or {}}


def pod(name: str, env: dict | None = None, **spec) -> dict:
    container = {"name": "app", "image": "busybox:1.36", "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [container], **spec}}


def managers(obj) -> dict[str, dict]:
    return {e.manager: e.fields_v1 for e in obj.metadata.managed_fields}


def test_create_read_delete_with_real_status_objects(core):
    created = core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.resource_version
    assert core.read_namespaced_config_map("settings", "default").data == {"a": "1"}

    code, body = failure(core.create_namespaced_config_map, "default", config_map("settings"))
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "settings" already exists'
    assert body["details"] == {"name": "settings", "kind": "configmaps"}

    core.delete_namespaced_config_map("settings", "default")
    code, body = failure(core.read_namespaced_config_map, "settings", "default")
    assert code == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'configmaps "settings" not found', "reason": "NotFound",
                    "details": {"name": "settings", "kind": "configmaps"}, "code": 404}
    code, body = failure(core.delete_namespaced_config_map, "settings", "default")
    assert code == 404 and body["reason"] == "NotFound"


def test_resource_version_increases_on_every_write_and_is_a_precondition(core):
    first = core.create_namespaced_config_map("default", config_map("rv", {"a": "1"}))
    first.data = {"a": "2"}
    second = core.replace_namespaced_config_map("rv", "default", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"a": "3"}  # still carries the first resourceVersion: stale
    code, body = failure(core.replace_namespaced_config_map, "rv", "default", first)
    assert code == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "rv": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    patch = {"metadata": {"resourceVersion": first.metadata.resource_version}, "data": {"a": "4"}}
    code, body = failure(core.patch_namespaced_config_map, "rv", "default", patch)
    assert code == 409
    assert core.read_namespaced_config_map("rv", "default").data == {"a": "2"}
    unchanged = core.replace_namespaced_config_map("rv", "default", core.read_namespaced_config_map("rv", "default"))
    assert unchanged.metadata.resource_version == second.metadata.resource_version  # a no-op writes nothing


def test_server_side_apply_conflict_force_and_shared_ownership(core):
    applied = core.patch_namespaced_config_map("ssa", "default", config_map("ssa", {"key": "a", "mine": "x"}),
                                               field_manager="alice", _content_type=APPLY)
    assert applied.data == {"key": "a", "mine": "x"}
    assert managers(applied)["alice"] == {"f:data": {"f:key": {}, "f:mine": {}}}

    code, body = failure(core.patch_namespaced_config_map, "ssa", "default", config_map("ssa", {"key": "b"}),
                         field_manager="bob", _content_type=APPLY)
    assert code == 409 and body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.key'
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.key"}]
    assert core.read_namespaced_config_map("ssa", "default").data["key"] == "a"  # nothing written

    shared = core.patch_namespaced_config_map("ssa", "default", config_map("ssa", {"key": "a"}),
                                              field_manager="carol", _content_type=APPLY)
    assert "f:key" in managers(shared)["carol"]["f:data"] and "f:key" in managers(shared)["alice"]["f:data"]

    forced = core.patch_namespaced_config_map("ssa", "default", config_map("ssa", {"key": "b"}),
                                              field_manager="bob", force=True, _content_type=APPLY)
    assert forced.data["key"] == "b"
    owners = managers(forced)
    assert owners["bob"] == {"f:data": {"f:key": {}}} and owners["alice"] == {"f:data": {"f:mine": {}}}
    assert "carol" not in owners  # its only field moved to bob: an empty entry goes

    dropped = core.patch_namespaced_config_map("ssa", "default", config_map("ssa", {}), field_manager="alice",
                                               _content_type=APPLY)
    assert dropped.data == {"key": "b"}  # alice stopped applying "mine": removed, nobody else owned it


def test_apply_needs_a_field_manager_and_a_declared_schema(fake_kube, core):
    code, body = failure(core.patch_namespaced_config_map, "x", "default", config_map("x"), _content_type=APPLY)
    assert code == 422 and "fieldManager: Required value: is required for apply patch" in body["message"]
    bad = {**config_map("x"), "spce": {}}
    code, body = failure(core.patch_namespaced_config_map, "x", "default", bad, field_manager="m", _content_type=APPLY)
    assert code == 400 and body["message"].endswith(".spce: field not declared in schema")


def test_dry_run_all_validates_and_writes_nothing(core):
    dry = core.create_namespaced_config_map("default", config_map("dry"), dry_run="All")
    assert dry.metadata.name == "dry"
    assert failure(core.read_namespaced_config_map, "dry", "default")[0] == 404
    code, _ = failure(core.create_namespaced_config_map, "default", config_map("Bad_Name"), dry_run="All")
    assert code == 422


def test_a_pod_env_change_is_422_with_the_real_text_and_labels_may_change(core):
    core.create_namespaced_pod("default", pod("gw", {"MODE": "a"}))
    for content_type in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
        change = {"spec": {"containers": [{"name": "app", "image": "busybox:1.36", "env": [{"name": "MODE", "value": "b"}]}]}}
        code, body = failure(core.patch_namespaced_pod, "gw", "default", change, _content_type=content_type)
        assert code == 422 and body["reason"] == "Invalid"
        assert body["message"].startswith(
            'Pod "gw" is invalid: spec: Forbidden: pod updates may not change fields other than '
            "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
            "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative)\n")
        assert body["details"]["kind"] == "Pod" and body["details"]["name"] == "gw"
        assert [c["field"] for c in body["details"]["causes"]] == ["spec"]
        assert body["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    applied = pod("gw", {"MODE": "b"})
    code, _ = failure(core.patch_namespaced_pod, "gw", "default", applied, field_manager="m", force=True, _content_type=APPLY)
    assert code == 422
    relabeled = core.patch_namespaced_pod("gw", "default", {"metadata": {"labels": {"tier": "x"}}})
    assert relabeled.metadata.labels == {"app": "gw", "tier": "x"}
    image = core.patch_namespaced_pod("gw", "default", {"spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}})
    assert image.spec.containers[0].image == "busybox:1.37"
    code, body = failure(core.patch_namespaced_pod, "gw", "default", {"spec": {"containers": [{"name": "two", "image": "x"}]}})
    assert body["message"] == 'Pod "gw" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers'


def test_immutable_fields_of_other_kinds(core, apps):
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    core.create_namespaced_persistent_volume_claim("default", claim)
    code, body = failure(core.patch_namespaced_persistent_volume_claim, "data", "default",
                         {"spec": {"accessModes": ["ReadWriteMany"]}})
    assert code == 422
    assert body["message"].startswith('PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable '
                                      "after creation except resources.requests for bound claims\n")

    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod("x")["spec"]}}}
    apps.create_namespaced_stateful_set("default", sts)
    apps.patch_namespaced_stateful_set("db", "default", {"spec": {"replicas": 2}})
    code, body = failure(apps.patch_namespaced_stateful_set, "db", "default", {"spec": {"serviceName": "other"}})
    assert body["message"] == ("StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields "
                               "other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                               "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    created = core.create_namespaced_service("default", service)
    assert created.spec.cluster_ip and created.spec.ports[0].target_port == 80
    code, body = failure(core.patch_namespaced_service, "web", "default", {"spec": {"clusterIP": "10.96.99.99"}})
    assert code == 422 and "may not change once set" in body["message"]

    core.create_namespaced_config_map("default", {**config_map("frozen", {"a": "1"}), "immutable": True})
    code, body = failure(core.patch_namespaced_config_map, "frozen", "default", {"data": {"a": "2"}})
    assert body["message"] == 'ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set'


def test_generation_bumps_on_spec_changes_only(apps):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]}}}
    assert apps.create_namespaced_deployment("default", deployment).metadata.generation == 1
    assert apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"a": "b"}}}).metadata.generation == 1
    assert apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}}).metadata.generation == 2


def test_label_and_field_selectors(core):
    for name, labels in (("a", {"tier": "web", "env": "dev"}), ("b", {"tier": "db"}), ("c", {})):
        core.create_namespaced_config_map("default", config_map(name, labels=labels))

    def names(**query) -> list[str]:
        return [o.metadata.name for o in core.list_namespaced_config_map("default", **query).items]

    assert names(label_selector="tier=web") == ["a"]
    assert names(label_selector="tier==db") == ["b"]
    assert names(label_selector="tier!=web") == ["b", "c"]
    assert names(label_selector="tier in (web,db)") == ["a", "b"]
    assert names(label_selector="tier notin (web)") == ["b", "c"]
    assert names(label_selector="env") == ["a"]
    assert names(label_selector="!env") == ["b", "c"]
    assert names(label_selector="tier,!env") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c") == ["a", "b"]
    listing = core.list_namespaced_config_map("default")
    assert listing.kind == "ConfigMapList" and int(listing.metadata.resource_version) > 0


def test_namespaces_service_accounts_and_admission(fake_kube, core):
    code, body = failure(core.create_namespaced_config_map, "nowhere", config_map("x"))
    assert code == 404 and body["message"] == 'namespaces "nowhere" not found'
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert [sa.metadata.name for sa in core.list_namespaced_service_account("team").items] == ["default"]
    core.create_namespaced_pod("team", pod("p"))
    assert [(p.metadata.namespace, p.metadata.name) for p in core.list_pod_for_all_namespaces().items] == [("team", "p")]
    assert core.list_namespaced_pod("default").items == []
    code, body = failure(core.create_namespaced_pod, "team", pod("q", serviceAccountName="robot"))
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('pods "q" is forbidden: error looking up service account team/robot: '
                               'serviceaccount "robot" not found')
    mounted = core.read_namespaced_pod("p", "team").spec
    assert mounted.volumes[0].name.startswith("kube-api-access-")  # the token volume admission adds
    core.delete_namespace("team")
    assert core.list_pod_for_all_namespaces().items == []


def test_a_fresh_namespace_without_its_service_account_refuses_pods(tmp_path):
    from fakes.kube import FakeKube

    with FakeKube.running(tmp_path, auto_service_accounts=False) as kube:
        api = kube.api_client()
        core = client.CoreV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}})
        code, body = failure(core.create_namespaced_pod, "fresh", pod("p"))
        assert code == 403 and body["message"].endswith('serviceaccount "default" not found')
        api.close()


def test_names_and_labels_are_validated(core):
    code, body = failure(core.create_namespaced_config_map, "default", config_map("Upper"))
    assert code == 422 and body["message"].startswith(
        'ConfigMap "Upper" is invalid: metadata.name: Invalid value: "Upper": a lowercase RFC 1123 subdomain')
    code, body = failure(core.create_namespaced_config_map, "default", config_map("ok", labels={"a": "bad value"}))
    assert 'metadata.labels: Invalid value: "bad value": a valid label must be an empty string' in body["message"]


def test_watch_streams_added_modified_deleted(core):
    core.create_namespaced_config_map("default", config_map("before"))
    start = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    watcher = watch.Watch()

    def follow() -> None:
        for event in watcher.stream(core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watcher.stop()

    thread = threading.Thread(target=follow)
    thread.start()
    core.create_namespaced_config_map("default", config_map("w", {"a": "1"}))
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", "default")
    thread.join(timeout=15)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_without_a_version_starts_with_the_current_objects(core):
    core.create_namespaced_config_map("default", config_map("one", labels={"app": "x"}))
    core.create_namespaced_config_map("default", config_map("two"))
    events = list(watch.Watch().stream(core.list_namespaced_config_map, "default", label_selector="app=x", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "one")]


def test_stopping_the_fake_closes_its_port_and_ends_open_watches(tmp_path):
    import socket
    import time

    from fakes.kube import FakeKube

    before = set(threading.enumerate())
    with FakeKube.running(tmp_path) as kube:
        host, port = kube.url.removeprefix("http://").split(":")
        api = kube.api_client()
        core = client.CoreV1Api(api)
        follower = threading.Thread(target=lambda: list(watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=600)))
        follower.start()
        time.sleep(0.3)  # the watch is open on the server
    follower.join(timeout=5)
    api.close()
    assert not follower.is_alive()  # the server ended the stream at stop
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(threading.enumerate()) - before


@pytest.fixture
def with_controllers(tmp_path):
    from fakes.kube import FakeKube

    with FakeKube.running(tmp_path, controllers=True) as kube:
        api = kube.api_client()
        yield kube, client.CoreV1Api(api), client.AppsV1Api(api)
        api.close()


def _workload(kind: str, name: str, image: str) -> dict:
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_optional_controllers_run_a_statefulset_pod_and_roll_it(with_controllers):
    kube, core, apps = with_controllers
    apps.create_namespaced_stateful_set("default", _workload("StatefulSet", "env", "img:1"))
    kube.controllers.settle()
    first = core.read_namespaced_pod("env-0", "default")
    assert first.status.phase == "Running" and first.metadata.owner_references[0].kind == "StatefulSet"
    claim = core.read_namespaced_persistent_volume_claim("data-env-0", "default")
    apps.patch_namespaced_stateful_set("env", "default", {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "img:2"}]}}}})
    kube.controllers.settle()
    second = core.read_namespaced_pod("env-0", "default")
    assert second.metadata.uid != first.metadata.uid and second.spec.containers[0].image == "img:2"
    assert core.read_namespaced_persistent_volume_claim("data-env-0", "default").metadata.uid == claim.metadata.uid
    apps.delete_namespaced_stateful_set("env", "default")
    kube.controllers.settle()
    assert core.list_namespaced_pod("default").items == []


def test_optional_controllers_replace_a_deployment_pod_on_a_template_change(with_controllers):
    kube, core, apps = with_controllers
    apps.create_namespaced_deployment("default", _workload("Deployment", "web", "img:1"))
    kube.controllers.settle()
    [first] = core.list_namespaced_pod("default", label_selector="app=web").items
    assert first.metadata.name.startswith("web-") and first.status.phase == "Running"
    apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}})
    kube.controllers.settle()
    [second] = core.list_namespaced_pod("default", label_selector="app=web").items
    assert second.metadata.name != first.metadata.name and second.metadata.labels["v"] == "2"


def test_a_status_written_during_an_apply_is_not_lost(fake_kube, core, monkeypatch):
    """A kubelet's status update that lands while a client's apply is being processed must
    survive it (etcd's compare-and-swap makes a real write atomic)."""
    from fakes.kube import writes
    from fakes.kube.resources import by_kind

    core.create_namespaced_pod("default", pod("racy"))
    pods = by_kind("Pod")

    def kubelet_writes_status() -> None:
        with fake_kube.store.changed:
            live = fake_kube.store.get(pods, "default", "racy")
            live["status"]["phase"] = "Running"
            fake_kube.store.write(pods, live, "MODIFIED")

    real_defaults, raced = writes.defaults.apply_defaults, []

    def defaults_then_race(obj, allocate):
        real_defaults(obj, allocate)
        if obj.get("kind") == "Pod" and not raced:  # between the apply's read and its write
            raced.append(threading.Thread(target=kubelet_writes_status))
            raced[0].start()
            raced[0].join(timeout=0.5)

    monkeypatch.setattr(writes.defaults, "apply_defaults", defaults_then_race)
    core.patch_namespaced_pod("racy", "default", {"metadata": {"labels": {"extra": "yes"}}})
    raced[0].join(timeout=5)
    live = core.read_namespaced_pod("racy", "default")
    assert live.metadata.labels["extra"] == "yes" and live.status.phase == "Running"
