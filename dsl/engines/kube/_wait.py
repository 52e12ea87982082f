"""Waiting for the environment's Pod to become Ready, by watching it (no sleep-polling), and
saying why not when it cannot: one message with the cause, the Pod's events printed above.

Fatal at once (no amount of waiting helps): the image cannot be pulled, the container cannot
be configured (a missing Secret key), the container keeps crashing (its last log lines are
shown). Unschedulable for an unbound PVC (the claim and its StorageClass are named) is given a
grace first, since a provisioner may be about to bind the claim; unschedulable for want of
resources waits (an autoscaler may add a node) and the timeout names it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dsl.engines.kube import _objects as o
from dsl.engines.kube._client import Kube, KubeStatus, collection_path, object_path
from dsl.errors import EngineError, EngineTimeout

UNSCHEDULABLE_GRACE = 30.0  # a dynamic provisioner binds a claim within seconds
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CONFIG_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_LOG_LINES = 20


class PodFailed(EngineError):
    """The Pod cannot become Ready; the message says why."""


def wait_ready(kube: Kube, pick: Callable[[list[dict[str, Any]]], dict[str, Any] | None], instance: str,
               timeout: float, still_ours: Callable[[], str | None]) -> dict[str, Any]:
    """The Ready Pod ``pick`` chooses among the environment's Pods.

    Args:
        kube: the connection.
        pick: chooses our Pod among the environment's Pods (None: not there yet).
        instance: the environment's instance label.
        timeout: seconds in all.
        still_ours: None while our configuration is the one applied, else why not (checked when
            our Pod is missing: a newer ``dsl up`` may have replaced it).

    Raises:
        PodFailed: a cause that waiting cannot fix (events shown on stderr).
        EngineTimeout: not Ready in time (the last cause named, events shown).
        RunConflict: (from ``still_ours``) a newer configuration replaced ours.
    """
    return _Wait(kube, pick, instance, timeout, still_ours).run()


class _Wait:
    """One wait: the environment's Pods as last listed and watched, judged after every change."""

    def __init__(self, kube: Kube, pick: Callable[[list[dict[str, Any]]], dict[str, Any] | None], instance: str,
                 timeout: float, still_ours: Callable[[], str | None]) -> None:
        self.kube, self.pick, self.instance, self.timeout, self.still_ours = kube, pick, instance, timeout, still_ours
        self.deadline = time.monotonic() + timeout
        self.unschedulable_since: float | None = None

    def run(self) -> dict[str, Any]:
        while True:  # a list, then a watch from its version; a fresh list when history expired
            items, version = self.kube.list("Pod", o.selector(self.instance))
            pods = {o.name(p): p for p in items}
            for kind, obj in self._changes(version):
                if kind == "":  # the watch ended (its bounded wait): judge again
                    pass
                elif kind == "DELETED":
                    pods.pop(o.name(obj), None)
                elif kind in ("ADDED", "MODIFIED"):
                    pods[o.name(obj)] = {**obj, "kind": "Pod"}
                else:  # ERROR (410 Gone mid-stream): list again
                    break
                ready = self._judge(self.pick(list(pods.values())))
                if ready is not None:
                    return ready

    def _changes(self, version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``("", {})`` first and after each bounded watch, then the watch's events; ends on 410."""
        path = collection_path("Pod", self.kube.namespace)
        while True:
            yield "", {}
            remaining = self.deadline - time.monotonic()
            # bounded, so that the grace period and the deadline are honoured without events
            wait = max(0.1, min(remaining, 2.0 if self.unschedulable_since else remaining))
            try:
                for kind, obj in self.kube.watch(path, {"labelSelector": o.selector(self.instance),
                                                        "resourceVersion": version}, wait):
                    version = str(o.meta(obj).get("resourceVersion") or version)
                    yield kind, obj
            except KubeStatus as exc:
                if exc.code == 410:  # history expired: the caller lists again
                    yield "ERROR", {}
                    return
                raise

    def _judge(self, pod: dict[str, Any] | None) -> dict[str, Any] | None:
        """The Pod once Ready; None to wait on; raises when waiting cannot help or time is up."""
        if pod is None:
            reason = self.still_ours()
            if reason is not None:
                from dsl.engines.runner import RunConflict

                raise RunConflict(reason)
        else:
            if o.is_ready(pod):
                return pod
            cause = _fatal(self.kube, pod)
            if cause is not None:
                _show_events(self.kube, pod)
                raise PodFailed(cause, hint=f"`kubectl -n {self.kube.namespace} describe pod {o.name(pod)}` shows more")
            self._check_scheduling(pod)
        if time.monotonic() >= self.deadline:
            if pod is not None:
                _show_events(self.kube, pod)
            blocked = _unschedulable(self.kube, pod) if pod is not None else None
            why = blocked.message if blocked else _waiting(pod) if pod is not None else "no Pod was made"
            raise EngineTimeout(f"the environment's Pod was not Ready within {self.timeout:g}s ({why})",
                                hint="`dsl up --timeout SECONDS` waits longer")
        return None

    def _check_scheduling(self, pod: dict[str, Any]) -> None:
        """Unschedulable for want of a volume for longer than the grace period: fail, naming the
        claims. (For want of CPU or memory an autoscaler may still add a node: that waits, and
        the timeout's message names it.)"""
        blocked = _unschedulable(self.kube, pod)
        if blocked is None or not blocked.claims:
            self.unschedulable_since = None
            return
        self.unschedulable_since = self.unschedulable_since or time.monotonic()
        if time.monotonic() - self.unschedulable_since >= min(UNSCHEDULABLE_GRACE, self.timeout):
            _show_events(self.kube, pod)
            raise PodFailed(blocked.message, hint="see the events above")


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def _fatal(kube: Kube, pod: dict[str, Any]) -> str | None:
    """Why the Pod can never become Ready as it is, or None."""
    for status in _statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason", ""), waiting.get("message", "")
        if reason in _PULL_FAILURES:
            return (f"cannot pull the image {status.get('image') or _image(pod, status['name'])} ({reason}"
                    + (f": {message}" if message else "") + ")")
        if reason in _CONFIG_FAILURES:
            return f"container {status['name']} cannot start ({reason}" + (f": {message}" if message else "") + ")"
        if reason == "CrashLoopBackOff":
            _show_log(kube, pod, status["name"])
            last = (status.get("lastState") or {}).get("terminated") or {}
            code = f", exit status {last['exitCode']}" if "exitCode" in last else ""
            return f"container {status['name']} keeps crashing (CrashLoopBackOff{code}); its last log lines are above"
    if (pod.get("status") or {}).get("phase") == "Failed":
        _show_log(kube, pod, "environment")
        return f"the Pod failed: {(pod.get('status') or {}).get('message') or (pod.get('status') or {}).get('reason') or 'its containers exited'}"
    return None


def _image(pod: dict[str, Any], container: str) -> str:
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        if c.get("name") == container:
            return str(c.get("image", "?"))
    return "?"


@dataclass(frozen=True, slots=True)
class _Blocked:
    message: str
    claims: bool  # for want of a bound volume (else: resources, affinity, taints)


def _unschedulable(kube: Kube, pod: dict[str, Any]) -> _Blocked | None:
    """Why the scheduler cannot place the Pod (its unbound claims named), or None."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    blocked = next((c for c in conditions if c.get("type") == "PodScheduled" and c.get("status") == "False"
                    and c.get("reason") == "Unschedulable"), None)
    if blocked is None:
        return None
    pending = []
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim_name:
            continue
        claim = kube.get("PersistentVolumeClaim", claim_name)
        if claim is None:
            pending.append(f"PVC {claim_name} does not exist")
        elif (claim.get("status") or {}).get("phase") != "Bound":
            storage = (claim.get("spec") or {}).get("storageClassName")
            pending.append(f"PVC {claim_name} is {(claim.get('status') or {}).get('phase', 'Pending')} "
                           + (f"(StorageClass {storage!r})" if storage else "(no StorageClass: the cluster's default)"))
    if pending:
        return _Blocked("the Pod cannot be scheduled: " + "; ".join(pending) +
                        " — no volume was provisioned for it (is there a provisioner for that class?)", True)
    return _Blocked(f"the Pod cannot be scheduled: {blocked.get('message') or 'Unschedulable'}", False)


def _waiting(pod: dict[str, Any]) -> str:
    for status in _statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"container {status['name']}: {waiting['reason']}"
    phase = (pod.get("status") or {}).get("phase", "Pending")
    return f"Pod {o.name(pod)} is {phase}, not Ready"


def _show_events(kube: Kube, pod: dict[str, Any]) -> None:
    """The Pod's events on stderr (what `kubectl describe` ends with)."""
    try:
        events, _ = kube.list("Event", fields=f"involvedObject.name={o.name(pod)}")
    except KubeStatus:
        return
    events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    if events:
        sys.stderr.write(f"events of Pod {o.name(pod)}:\n")
    for event in events:
        count = f" (x{event['count']})" if (event.get("count") or 1) > 1 else ""
        sys.stderr.write(f"  | {event.get('type', '')} {event.get('reason', '')}: "
                         f"{str(event.get('message', '')).strip()}{count}\n")


def _show_log(kube: Kube, pod: dict[str, Any], container: str) -> None:
    """The crashed container's last log lines on stderr (the previous run's, when it restarted)."""
    path = object_path("Pod", kube.namespace, o.name(pod)) + "/log"
    for previous in ("true", "false"):
        try:
            data = kube.get_bytes(path, {"container": container, "tailLines": str(_LOG_LINES), "previous": previous},
                                  timeout=10)
        except KubeStatus:
            continue  # no previous run (400), or no log at all
        if data.strip():
            sys.stderr.write("".join(f"  | {line}\n" for line in data.decode(errors="replace").rstrip().splitlines()))
            return
