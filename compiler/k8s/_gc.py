"""The in-cluster ``dsl gc``: a CronJob with its own ServiceAccount, Role and RoleBinding.

``dsl compile --target k8s --gc-schedule S --gc-idle D --gc-image REF`` adds these four
objects beside the environment's. The Job runs ``dsl gc --idle D --target k8s [-n NS]`` with the
ServiceAccount's token (the kube client's in-cluster configuration), and the Role grants only
the calls ``dsl gc`` makes in that namespace (``GC_RULES``; tests/engines/kube/test_kube_gc.py
records the calls against the fake API server and compares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler._names import child_name
from dsl import rules
from dsl.errors import UsageError

# What `dsl gc --target k8s` calls (dsl.engines.kube: list, the Pods' exec, down without purge):
# (apiGroup, resource, verbs). A WebSocket exec is a GET, authorized as `get` up to Kubernetes
# 1.34 and as `create` too from 1.35 (AuthorizePodWebsocketUpgradeCreatePermission): both.
GC_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "persistentvolumeclaims", ("list",)),  # down reports the PVCs it keeps
    ("", "pods", ("delete", "list")),
    ("", "pods/exec", ("create", "get")),  # dsl-activity report
    ("", "services", ("delete", "list")),  # down removes the environment's Service with it
    ("apps", "deployments", ("delete", "list")),
    ("apps", "statefulsets", ("delete", "list")),
)
_HOME = "/tmp"


@dataclass(frozen=True, slots=True)
class GcOptions:
    """``--gc-schedule``, ``--gc-idle`` and ``--gc-image``: all three or none."""

    schedule: str
    idle: str
    image: str

    def check(self) -> None:
        """Raises:
            UsageError: naming the option whose value Kubernetes or ``dsl gc`` would refuse.
        """
        for option, rule, value in (("--gc-schedule", rules.cron_schedule, self.schedule),
                                    ("--gc-idle", rules.duration, self.idle)):
            try:
                rule(value)
            except rules.Invalid as exc:
                raise UsageError(f"{option}: {exc.message}", hint=exc.hint) from exc
        try:
            rules.parse_image_ref(self.image)
        except rules.Invalid as exc:
            raise UsageError(f"--gc-image: {exc.message}", hint="an image with dsl installed, e.g. REPO/dsl@sha256:...") \
                from exc


def gc_objects(base: str, namespace: str, gc: GcOptions, labels: dict[str, str]) -> tuple[dict[str, Any], ...]:
    """The ServiceAccount, Role, RoleBinding and CronJob, all named ``<base>-gc``.

    Args:
        base: the environment's instance name.
        namespace: the objects' namespace ("" = none written; the Job then works in its own).
        gc: the checked options.
        labels: the environment's labels (the objects belong to its manifests).
    """
    gc.check()
    name = child_name(base, "gc")
    metadata: dict[str, Any] = {"name": name, "labels": {**labels, "app.kubernetes.io/component": "gc"}}
    if namespace:
        metadata["namespace"] = namespace
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
               "automountServiceAccountToken": False}  # only the Job's Pod mounts its token
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
            "rules": [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
                      for group, resource, verbs in GC_RULES]}
    subject = {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [subject]}
    return account, role, binding, _cron_job(metadata, name, namespace, gc)


def _cron_job(metadata: dict[str, Any], name: str, namespace: str, gc: GcOptions) -> dict[str, Any]:
    command = ["dsl", "gc", "--idle", gc.idle, "--target", "k8s", *(("-n", namespace) if namespace else ())]
    container = {
        "name": "gc", "image": gc.image, "command": command,
        "env": [{"name": "HOME", "value": _HOME}],
        "volumeMounts": [{"name": "home", "mountPath": _HOME}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    pod = {"serviceAccountName": name, "automountServiceAccountToken": True, "restartPolicy": "Never",
           "containers": [container], "volumes": [{"name": "home", "emptyDir": {}}]}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": {
        "schedule": gc.schedule,
        "concurrencyPolicy": "Forbid",  # one gc at a time: a slow one is not overtaken
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 1, "template": {"spec": pod}}},
    }}
