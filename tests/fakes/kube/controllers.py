"""Optional stand-ins for the controllers and the kubelet of a real cluster (``FakeKube(controllers=True)``).

Off by default: without them the fake is an API server alone, as the Pod-update tests need.
With them, a thread follows the event history and does the minimum a later test needs:

- StatefulSet: Pods ``<name>-0 .. <name>-(replicas-1)`` from the template (labels
  ``statefulset.kubernetes.io/pod-name`` and ``controller-revision-hash``), a PVC
  ``<claim>-<name>-<ordinal>`` per volumeClaimTemplate (kept when the set goes, as the default
  ``Retain`` policy says), and on a template change the Pods of the old revision are deleted
  and made anew (RollingUpdate, all at once);
- Deployment: ReplicaSet-less Pods ``<name>-<hash>-<suffix>`` labelled ``pod-template-hash``;
  a template change replaces them (Recreate);
- garbage collection: Pods owned by a deleted set go with it;
- status: each set's ``status`` follows its Pods (replicas, updatedReplicas, readyReplicas,
  availableReplicas, revisions; a Deployment's Available/Progressing conditions);
- kubelet: a new Pod becomes ``Running`` and ``Ready`` (status written directly, as the kubelet's
  status updates are), unless the fake has the Docker-backed kubelet (``kubelet``), which runs
  the Pod's containers and reports their real state instead.

``settle()`` waits until every event so far has been handled, so tests need not sleep.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from .managed import now
from .resources import by_kind
from .status import ApiError
from .writes import WriteOptions

if TYPE_CHECKING:
    from . import FakeKube

POD, CLAIM = by_kind("Pod"), by_kind("PersistentVolumeClaim")
STATEFUL_SET, DEPLOYMENT = by_kind("StatefulSet", "apps"), by_kind("Deployment", "apps")
_OPTIONS = WriteOptions(False, "kube-controller-manager", "Ignore")


def _template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class Controllers:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.store = kube.store
        self.handled = self.store.revision
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kube-controllers", daemon=True)

    def start(self) -> None:
        self.handled = self.store.revision
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.store.changed:
            self.store.changed.notify_all()
        self._thread.join(timeout=5)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the controllers have handled every write made so far (and their own)."""
        with self.store.changed:
            if not self.store.changed.wait_for(lambda: self.handled >= self.store.revision, timeout):
                raise TimeoutError("the fake's controllers did not settle")

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.store.changed:
                events = self.store.events_after(self.handled)
                if not events:
                    self.store.changed.wait(timeout=0.5)
                    continue
            for event in events:
                try:
                    self._handle(event)
                except ApiError:
                    pass  # a real controller retries; here the next event reconciles again
            with self.store.changed:
                self.handled = max(self.handled, events[-1].revision)
                self.store.changed.notify_all()

    def _handle(self, event: Any) -> None:
        meta = event.object["metadata"]
        if event.rtype in (STATEFUL_SET, DEPLOYMENT):
            if event.type == "DELETED":
                self._collect(meta["namespace"], meta["uid"])
            else:
                live = self.store.get(event.rtype, meta["namespace"], meta["name"])
                if live is not None:
                    self._reconcile(live)
                    self._report(event.rtype, meta["namespace"], meta["name"], meta["uid"])
        elif event.rtype == POD:
            if event.type == "ADDED" and self.kube.kubelet is None:
                self._mark_ready(meta["namespace"], meta["name"])  # the Docker kubelet runs Pods for real
            for ref in meta.get("ownerReferences") or ():
                if ref.get("controller") and ref.get("kind") in ("StatefulSet", "Deployment"):
                    self._report(by_kind(ref["kind"], "apps"), meta["namespace"], ref["name"], ref["uid"])

    def _report(self, rtype: Any, namespace: str, name: str, uid: str) -> None:
        """The workload's status from its Pods, as its controller keeps it (``kubectl rollout
        status`` and ``kubectl wait`` read these fields)."""
        with self.store.changed:
            workload = self.store.get(rtype, namespace, name)
            if workload is None or workload["metadata"]["uid"] != uid:
                return
            revision = _template_hash(workload["spec"]["template"])
            current = f"{name}-{revision}" if rtype == STATEFUL_SET else revision
            label = "controller-revision-hash" if rtype == STATEFUL_SET else "pod-template-hash"
            pods = [p for p in self._owned(namespace, uid) if not p["metadata"].get("deletionTimestamp")]
            updated = [p for p in pods if (p["metadata"].get("labels") or {}).get(label) == current]
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in (p.get("status") or {}).get("conditions") or ())]
            status: dict[str, Any] = {"observedGeneration": workload["metadata"].get("generation", 1),
                                      "replicas": len(pods), "updatedReplicas": len(updated)}
            if ready:
                status.update({"readyReplicas": len(ready), "availableReplicas": len(ready)})
            if rtype == STATEFUL_SET:
                status.update({"currentReplicas": len(updated), "currentRevision": current,
                               "updateRevision": current, "collisionCount": 0})
                status.setdefault("availableReplicas", 0)
            else:
                wanted = int(workload["spec"].get("replicas", 1))
                available = len(ready) >= wanted
                stamp = now()
                status["conditions"] = [
                    {"type": "Available", "status": "True" if available else "False",
                     "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                     "message": "Deployment has minimum availability." if available else "Deployment does not have minimum availability.",
                     "lastUpdateTime": stamp, "lastTransitionTime": stamp},
                    {"type": "Progressing", "status": "True",
                     "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                     "message": f'ReplicaSet "{name}-{revision}" has successfully progressed.' if available
                     else f'ReplicaSet "{name}-{revision}" is progressing.',
                     "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
                old = (workload.get("status") or {}).get("conditions") or []
                if [(c["type"], c["status"], c["reason"]) for c in old] == \
                        [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]:
                    status["conditions"] = old
                if len(pods) > len(ready):
                    status["unavailableReplicas"] = len(pods) - len(ready)
            if workload.get("status") != status:
                workload["status"] = status
                self.store.write(rtype, workload, "MODIFIED")

    def _owned(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        return [p for p in self.store.list(POD, namespace)[0]
                if any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences") or ())]

    def _collect(self, namespace: str, uid: str) -> None:
        for pod in self._owned(namespace, uid):
            self.store.remove(POD, namespace, pod["metadata"]["name"])

    def _reconcile(self, workload: dict[str, Any]) -> None:
        meta, spec = workload["metadata"], workload["spec"]
        namespace, revision = meta["namespace"], _template_hash(spec["template"])
        kind = workload["kind"]
        label = "controller-revision-hash" if kind == "StatefulSet" else "pod-template-hash"
        wanted = int(spec.get("replicas", 1))
        pods = self._owned(namespace, meta["uid"])
        keep = []
        for pod in pods:
            stale = pod["metadata"].get("labels", {}).get(label) != f"{meta['name']}-{revision}" if kind == "StatefulSet" \
                else pod["metadata"].get("labels", {}).get(label) != revision
            if stale or len(keep) >= wanted:
                self.store.remove(POD, namespace, pod["metadata"]["name"])
            else:
                keep.append(pod["metadata"]["name"])
        for ordinal in range(wanted):
            name = f"{meta['name']}-{ordinal}" if kind == "StatefulSet" else None
            if kind == "StatefulSet" and name in keep:
                continue
            if kind == "Deployment" and ordinal < len(keep):
                continue
            self._create_pod(workload, revision, label, name, ordinal)

    def _create_pod(self, workload: dict[str, Any], revision: str, label: str, name: str | None, ordinal: int) -> None:
        meta, template = workload["metadata"], copy.deepcopy(workload["spec"]["template"])
        pod_meta = template.get("metadata") or {}
        labels = dict(pod_meta.get("labels") or {})
        owner = {"apiVersion": workload["apiVersion"], "kind": workload["kind"], "name": meta["name"],
                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}
        spec = template["spec"]
        if workload["kind"] == "StatefulSet":
            labels.update({label: f"{meta['name']}-{revision}", "statefulset.kubernetes.io/pod-name": name,
                           "apps.kubernetes.io/pod-index": str(ordinal)})
            for claim in workload["spec"].get("volumeClaimTemplates") or ():
                claim_name = f"{claim['metadata']['name']}-{meta['name']}-{ordinal}"
                self._ensure_claim(workload, claim, claim_name)
                spec.setdefault("volumes", []).append(
                    {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
            generate = {"name": name}
        else:
            labels[label] = revision
            generate = {"generateName": f"{meta['name']}-{revision}-"}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {**generate, "namespace": meta["namespace"], "labels": labels,
                            "annotations": pod_meta.get("annotations") or {}, "ownerReferences": [owner]},
               "spec": spec}
        if not pod["metadata"]["annotations"]:
            pod["metadata"].pop("annotations")
        self.kube.writer.create(POD, meta["namespace"], pod, _OPTIONS)

    def _ensure_claim(self, workload: dict[str, Any], template: dict[str, Any], name: str) -> None:
        namespace = workload["metadata"]["namespace"]
        if self.store.get(CLAIM, namespace, name) is not None:
            return
        labels = dict((workload["spec"].get("selector") or {}).get("matchLabels") or {})
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": name, "namespace": namespace, "labels": labels},
                 "spec": copy.deepcopy(template.get("spec") or {})}
        self.kube.writer.create(CLAIM, namespace, claim, _OPTIONS)

    def _mark_ready(self, namespace: str, name: str) -> None:
        pod = self.store.get(POD, namespace, name)
        if pod is None or pod.get("status", {}).get("phase") != "Pending":
            return
        stamp = now()
        pod["spec"].setdefault("nodeName", "fake-node")
        conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
                      for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
                       "started": True, "state": {"running": {"startedAt": stamp}}}
                      for c in pod["spec"].get("containers") or ()]
        pod["status"].update({"phase": "Running", "conditions": conditions, "containerStatuses": containers,
                              "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": stamp})
        self.store.write(POD, pod, "MODIFIED")
