"""A Pod's ``status`` from what the kubelet knows of its containers, in the kubelet's words.

Phase: Pending until the init containers are done and every app container has started once;
Running while any app container runs or will be restarted; Succeeded/Failed when all have
terminated for good. Conditions (in the kubelet's order): PodReadyToStartContainers (the
sandbox is up), Initialized, Ready, ContainersReady, PodScheduled, with the reasons and
messages a real node gives (``ContainersNotReady``, ``containers with unready status: [..]``).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

Obj = dict[str, Any]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class ContainerStatus:
    """One entry of ``containerStatuses``/``initContainerStatuses``."""

    name: str
    image: str
    state: Obj = dataclasses.field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = dataclasses.field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    container_id: str = ""
    image_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    def as_dict(self) -> Obj:
        out: Obj = {"name": self.name, "state": self.state, "lastState": self.last_state, "ready": self.ready,
                    "restartCount": self.restart_count, "image": self.image, "imageID": self.image_id,
                    "started": self.running}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def _condition(kind: str, ok: bool, reason: str = "", message: str = "", since: dict[str, tuple[bool, str]] | None = None) -> Obj:
    stamp = now()
    if since is not None:
        previous = since.get(kind)
        if previous is not None and previous[0] == ok:
            stamp = previous[1]
        since[kind] = (ok, stamp)
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": stamp}
    if not ok and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def build(pod: Obj, init: list[ContainerStatus], main: list[ContainerStatus], *, sandbox_ready: bool,
          initialized: bool, pod_ip: str, host_ip: str, start_time: str, transitions: dict[str, tuple[bool, str]],
          phase_override: str = "") -> Obj:
    """The whole ``status`` of a scheduled Pod."""
    restart = pod["spec"].get("restartPolicy", "Always")
    unready = [c.name for c in main if not c.ready]
    incomplete = [c.name for c in init if not (c.terminated and c.terminated.get("exitCode") == 0)]
    all_started = all(c.running or c.terminated or c.last_state for c in main)
    if phase_override:
        phase = phase_override
    elif not initialized or not all_started:
        phase = "Pending"
    elif any(c.running for c in main) or restart == "Always" or (restart == "OnFailure" and any((c.terminated or {}).get("exitCode") for c in main)):
        phase = "Running"
    else:
        phase = "Failed" if any((c.terminated or {}).get("exitCode") for c in main) else "Succeeded"
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ready, since=transitions),
        _condition("Initialized", initialized, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(incomplete)}]", transitions),
        _condition("Ready", not unready, "ContainersNotReady",
                   f"containers with unready status: [{' '.join(unready)}]", transitions),
        _condition("ContainersReady", not unready, "ContainersNotReady",
                   f"containers with unready status: [{' '.join(unready)}]", transitions),
        _condition("PodScheduled", True, since=transitions),
    ]
    if phase in ("Succeeded", "Failed"):
        for cond in conditions[2:4]:
            cond.update({"status": "False", "reason": "PodCompleted"})
            cond.pop("message", None)
    status: Obj = {"phase": phase, "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                   "startTime": start_time, "containerStatuses": [c.as_dict() for c in main],
                   "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort")}
    if pod_ip:
        status.update({"podIP": pod_ip, "podIPs": [{"ip": pod_ip}]})
    if init:
        status["initContainerStatuses"] = [c.as_dict() for c in init]
    return status


def unschedulable(pod: Obj, message: str) -> Obj:
    """The status the scheduler leaves on a Pod it cannot place."""
    status = dict(pod.get("status") or {})
    status["phase"] = "Pending"
    status["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                             "lastTransitionTime": now(), "reason": "Unschedulable", "message": message}]
    return status
