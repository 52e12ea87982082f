"""Reading the runner's bookkeeping back from Kubernetes objects (plain dicts).

Identity and ownership are annotations the compiler writes (``dsl compile --annotation``), so
they are part of exactly what ``dsl compile`` prints; the selection labels are the compiler's
own ``app.kubernetes.io/*`` labels.
"""

from __future__ import annotations

from typing import Any

from dsl.identity import CONFIG_LABEL, GENERATION_LABEL, PROJECT_LABEL

INSTANCE_KEY = "app.kubernetes.io/instance"
MANAGED_KEY = "app.kubernetes.io/managed-by"
CONTENT_HASH = "envdsl/content-hash"
CONFIG_HASH = CONFIG_LABEL  # the compiler's envdsl/config-hash (what only a new Pod takes up)
WORKLOAD_KINDS = ("Pod", "StatefulSet", "Deployment")
RETIRED_KINDS = (*WORKLOAD_KINDS, "Service")  # never PVCs or Secrets: data and keys stay


def selector(instance: str = "") -> str:
    """The label selector of every object envdsl made (of one environment, given its instance)."""
    managed = f"{MANAGED_KEY}=envdsl"
    return f"{INSTANCE_KEY}={instance},{managed}" if instance else managed


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def name(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], name(obj)


def generation(obj: dict[str, Any]) -> int:
    try:
        return int(annotations(obj).get(GENERATION_LABEL, "0"))
    except ValueError:
        return 0


def project(obj: dict[str, Any]) -> str:
    return annotations(obj).get(PROJECT_LABEL, "")


def instance(obj: dict[str, Any]) -> str:
    return (meta(obj).get("labels") or {}).get(INSTANCE_KEY, "")


def owned_by_controller(obj: dict[str, Any]) -> bool:
    """A Pod a StatefulSet or Deployment made: its controller, not we, replaces or removes it."""
    return any(ref.get("controller") for ref in meta(obj).get("ownerReferences") or ())


def config_hash(workload: dict[str, Any]) -> str:
    """The config hash a workload's Pods carry (a bare Pod's own, or its template's)."""
    if workload["kind"] == "Pod":
        return annotations(workload).get(CONFIG_HASH, "")
    template = (workload.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(CONFIG_HASH, "")


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions) \
        and not meta(pod).get("deletionTimestamp")


def pod_status(pod: dict[str, Any] | None) -> str:
    """``running`` (Ready), ``starting``, ``failed``, ``stopping`` or ``stopped`` (no Pod)."""
    if pod is None:
        return "stopped"
    if meta(pod).get("deletionTimestamp"):
        return "stopping"
    if is_ready(pod):
        return "running"
    phase = (pod.get("status") or {}).get("phase", "Pending")
    return {"Failed": "failed", "Succeeded": "stopped"}.get(phase, "starting")
