"""Environments as Kubernetes shows them: workloads (bare Pods, StatefulSets, Deployments) and
their Pods → ``EnvState``, everything read from labels and annotations."""

from __future__ import annotations

import json
from typing import Any

from dsl.engines.kube import _objects as o
from dsl.engines.runner import Endpoint, EnvState
from dsl.identity import ENV_NAME_LABEL, PROJECT_DIR_LABEL, SSH_USER_LABEL, Claim

PORTS_KEY = "envdsl/ports"


def env_id(workload: dict[str, Any]) -> str:
    return f"{o.instance(workload)}.{o.project(workload)}"


def newest_per_environment(workloads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """env id → its workload of the highest generation (ours only: with a project annotation)."""
    best: dict[str, dict[str, Any]] = {}
    for item in workloads:
        if item["kind"] == "Pod" and o.owned_by_controller(item):
            continue
        if not o.project(item) or not o.instance(item):
            continue
        current = best.get(env_id(item))
        if current is None or o.generation(item) > o.generation(current):
            best[env_id(item)] = item
    return best


def pod_of(workload: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Pod running ``workload``'s configuration: the bare Pod itself, or the set's Pod with
    its template's config hash (a Pod of the old revision is not it)."""
    if workload["kind"] == "Pod":
        return workload
    wanted = o.config_hash(workload)
    mine = [p for p in pods if o.owned_by_controller(p) and o.annotations(p).get(o.CONFIG_HASH) == wanted
            and not o.meta(p).get("deletionTimestamp")]
    mine.sort(key=lambda p: str(o.meta(p).get("creationTimestamp", "")), reverse=True)
    return mine[0] if mine else None


def state(workload: dict[str, Any], pod: dict[str, Any] | None, namespace: str) -> EnvState:
    notes = o.annotations(workload)
    spec = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    container = (spec.get("containers") or [{}])[0]
    names = _port_names(notes)
    endpoints = tuple(Endpoint(names.get(int(p["containerPort"]), p.get("name") or f"port-{p['containerPort']}"),
                               int(p["containerPort"])) for p in container.get("ports") or ())
    labels = {**(o.meta(workload).get("labels") or {}), **notes}
    image_id = ""
    if pod is not None:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        image_id = next((s.get("imageID", "") for s in statuses if s.get("name") == container.get("name")), "")
    return EnvState(
        id=env_id(workload), name=notes.get(ENV_NAME_LABEL) or labels.get("app.kubernetes.io/name", ""),
        instance=o.instance(workload), project=o.project(workload), project_dir=notes.get(PROJECT_DIR_LABEL, ""),
        status=o.pod_status(pod), image=str(container.get("image", "")), image_id=image_id,
        config_hash=o.config_hash(workload), claim=Claim.from_labels(notes), ssh_user=notes.get(SSH_USER_LABEL, ""),
        endpoints=endpoints, labels=labels, object_id=o.name(pod) if pod is not None else "",
        where=namespace, kind=workload["kind"],
    )


def _port_names(notes: dict[str, str]) -> dict[int, str]:
    try:
        return {int(p["port"]): str(p["name"]) for p in json.loads(notes.get(PORTS_KEY) or "[]")}
    except (ValueError, TypeError, KeyError):
        return {}
