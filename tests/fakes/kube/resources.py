"""The resource types the fake serves: their names, scope and verbs, as discovery shows them.

The first group (Namespace ... Deployment) is what our manifests and the runner use; the rest
are served so that kubectl's default ``--prune`` list resolves (kubectl 1.32 fails the whole
apply when one of its default prune kinds is missing from discovery). All of them share the
generic REST behaviour; rules of their own live in ``validation`` and ``defaults``.
"""

from __future__ import annotations

import dataclasses

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """The resource as errors name it: ``pods``, ``statefulsets.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """The kind as Invalid errors name it: ``Pod``, ``StatefulSet.apps``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def prefix(self, namespace: str | None) -> str:
        """The URL path up to (and including) the plural, for one namespace or all."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


_ALL = ("all",)
TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), _ALL),
    ResourceType("", "v1", "Service", "services", True, ("svc",), _ALL),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), _ALL),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), _ALL),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    # Served for kubectl's default prune list; nothing of ours creates them.
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",)),
    ResourceType("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), _ALL),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _ALL),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _ALL),
    ResourceType("batch", "v1", "Job", "jobs", True, (), _ALL),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), _ALL),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
)


def by_plural(group: str, version: str, plural: str) -> ResourceType | None:
    for rtype in TYPES:
        if (rtype.group, rtype.version, rtype.plural) == (group, version, plural):
            return rtype
    return None


def by_kind(kind: str, group: str = "") -> ResourceType:
    for rtype in TYPES:
        if (rtype.group, rtype.kind) == (group, kind):
            return rtype
    raise KeyError(kind)


def group_versions() -> dict[str, list[str]]:
    """Named API groups and their versions (the core group is served under /api)."""
    groups: dict[str, list[str]] = {}
    for rtype in TYPES:
        if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
            groups[rtype.group].append(rtype.version)
    return groups
