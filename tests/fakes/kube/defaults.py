"""Defaulting and server-set fields, as the real registry strategies and defaulters do it.

A real server fills defaults into every object it stores (``SetDefaults_*`` in
``pkg/apis/*/v1/defaults.go``) and its admission plugins add more to new Pods
(ServiceAccount, Priority, DefaultTolerationSeconds). Clients see them in every read, and
the Pod update rule compares defaulted specs, so the fake fills the same ones for the kinds
it knows. Not modelled: defaults of fields our manifests and tests never use.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

Obj = dict[str, Any]


def _probe(probe: Obj | None) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _pull_policy(image: str) -> str:
    name = image.split("@")[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return "Always" if "@" not in image and tag in ("", "latest") else "IfNotPresent"


def _container(container: Obj) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _pull_policy(str(container.get("image", ""))))
    container.setdefault("resources", {})
    for port in container.get("ports") or ():
        port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(probe))
    for env in container.get("env") or ():
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            _container(container)
    for volume in spec.get("volumes") or ():
        for source in ("secret", "configMap", "projected", "downwardAPI"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        pod_spec(template["spec"])


def _service(obj: Obj, allocate: Any) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or ():
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            port["nodePort"] = allocate.node_port()
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = allocate.cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    obj.setdefault("status", {"loadBalancer": {}})


def _workload(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)
    if obj["kind"] == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        for claim in spec.get("volumeClaimTemplates") or ():
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {"phase": "Pending"})
    else:
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    obj.setdefault("status", {})


def apply_defaults(obj: Obj, allocate: Any) -> None:
    """Fill the defaults of ``obj``'s kind in place (the registry's decode-time defaulting)."""
    kind = obj.get("kind")
    if kind == "Pod":
        pod_spec(obj.setdefault("spec", {}))
    elif kind == "Service":
        _service(obj, allocate)
    elif kind == "PersistentVolumeClaim":
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    elif kind in ("StatefulSet", "Deployment"):
        _workload(obj)
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def qos_class(spec: Obj) -> str:
    containers = list(spec.get("containers") or ()) + list(spec.get("initContainers") or ())
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        all((r.get("limits") or {}).get(name) for name in ("cpu", "memory"))
        and all((r.get("requests") or {}).get(n, (r.get("limits") or {}).get(n)) == (r.get("limits") or {}).get(n)
                for n in ("cpu", "memory"))
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def initial_status(obj: Obj) -> None:
    """The status a new object starts with (what PrepareForCreate leaves)."""
    kind = obj.get("kind")
    if kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj["spec"])}
    elif kind == "PersistentVolumeClaim":
        obj["status"] = {"phase": "Pending"}
    elif kind in ("StatefulSet", "Deployment"):
        obj["status"] = {"replicas": 0, "availableReplicas": 0} if kind == "StatefulSet" else {}


def admit_new_pod(pod: Obj, service_account: Obj | None) -> None:
    """What admission plugins add to a Pod on create (ServiceAccount, Priority, tolerations)."""
    spec = pod["spec"]
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    automount = spec.get("automountServiceAccountToken")
    if automount is None and service_account is not None:
        automount = service_account.get("automountServiceAccountToken")
    if automount is not False:
        _mount_token(pod)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    _default_tolerations(spec)


def admit_pod_update(old: Obj, pod: Obj) -> None:
    """Admission on Pod updates: Priority keeps the old priority, DefaultTolerationSeconds re-adds
    its tolerations. (The ServiceAccount plugin mutates only on create.)"""
    spec, old_spec = pod.setdefault("spec", {}), old.get("spec") or {}
    if not spec.get("priorityClassName"):
        for key in ("priority", "preemptionPolicy"):
            if key not in spec and key in old_spec:
                spec[key] = old_spec[key]
    _default_tolerations(spec)


def _default_tolerations(spec: Obj) -> None:
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == taint for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})


def _mount_token(pod: Obj) -> None:
    seed = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}/{pod['metadata'].get('uid')}"
    suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[b % 27] for b in hashlib.sha256(seed.encode()).digest()[:5])
    name = f"kube-api-access-{suffix}"
    spec = pod["spec"]
    spec.setdefault("volumes", []).append({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
    for container in spec.get("containers") or ():
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})


class Allocator:
    """Cluster IPs from 10.96.0.0/12 and node ports from 30000-32767, in order, never reused."""

    def __init__(self) -> None:
        self._ip = int(ipaddress.IPv4Address("10.96.0.10"))
        self._port = 30000

    def cluster_ip(self) -> str:
        self._ip += 1
        return str(ipaddress.IPv4Address(self._ip))

    def node_port(self) -> int:
        self._port += 1
        return self._port
