"""An in-cluster BuildKit (``dsl builder create NAME --kubernetes``) as Kubernetes objects.

One StatefulSet of rootless ``buildkitd`` replicas, each with a PersistentVolumeClaim of its
own mounted as buildkitd's state directory (``--root``), so the cache survives restarts. A StatefulSet
rather than a Deployment because buildkitd locks its state directory (two replicas on one
claim cannot both start) and because each replica keeps its name (``NAME-0``, ``NAME-1``)
and its claim across restarts: the build that hashed to ``NAME-1`` finds its cache there
again. No Service and no port: clients reach buildkitd through the exec API running
``buildctl dial-stdio`` against the unix socket below.

What the rootless image needs (BuildKit's ``examples/kubernetes`` and ``docs/rootless.md``):
user 1000, seccomp and AppArmor unconfined (the AppArmor annotation, which 1.29 understands
and later versions still honour) and ``--oci-worker-no-process-sandbox`` (no PID namespace
of its own for build steps without privileges).

Pure: options in, plain objects out; the same options give the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dsl.errors import UsageError

# Seen pinned by digest in public build scripts (freedomofpress/dangerzone); the index digest of
# the multi-platform image on Docker Hub.
DEFAULT_IMAGE = ("moby/buildkit:v0.19.0-rootless"
                 "@sha256:e901cffdad753892a7c3afb8b9972549fca02c73888cf340c91ed801fdd96d71")
CONTAINER = "buildkitd"
CACHE_VOLUME = "cache"
# In the Pod, not on any machine: the state directory we give buildkitd (`--root`; the cache
# claim is mounted there, made writable for uid 1000 by the Pod's fsGroup, rather than into the
# image user's home, where rootless buildkitd would look by default) and its socket.
CACHE_DIR = "/var/lib/buildkit"
SOCKET = "unix:///run/user/1000/buildkit/buildkitd.sock"
BUILDER_LABEL = "envdsl/builder"  # value: the builder's name; what `ls`, `rm` and kube-pod:// select on
COMPONENT = "buildkitd"
ROOTLESS_UID = 1000

_DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")  # a StatefulSet name leaves room for -N and the claim
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class BuilderSpec:
    """What ``dsl builder create`` was asked for (empty resource strings: not set)."""

    name: str
    namespace: str
    replicas: int = 1
    image: str = DEFAULT_IMAGE
    cache_size: str = "20Gi"
    storage_class: str = ""
    cpu_request: str = ""
    cpu_limit: str = ""
    memory_request: str = ""
    memory_limit: str = ""


def builder_labels(name: str) -> dict[str, str]:
    """The labels of every object of builder ``name`` (and of its Pods)."""
    return {"app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/managed-by": "envdsl", BUILDER_LABEL: name}


def builder_selector(name: str) -> str:
    """The label selector of builder ``name``'s objects and Pods."""
    return f"{BUILDER_LABEL}={name}"


def compile_builder(spec: BuilderSpec) -> tuple[dict[str, Any], ...]:
    """The objects of an in-cluster builder: one StatefulSet (its claims come from its template).

    Raises:
        UsageError: a name, image, replica count or quantity that a cluster would refuse,
            or an image not pinned by digest.
    """
    _check(spec)
    labels = builder_labels(spec.name)
    claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": spec.cache_size}}}
    if spec.storage_class:
        claim_spec["storageClassName"] = spec.storage_class
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {BUILDER_LABEL: spec.name}},
            "serviceName": spec.name,  # required by the 1.29 schema; no such Service is made (no port)
            "podManagementPolicy": "Parallel",  # replicas are independent: start them all at once
            "template": {
                "metadata": {"labels": builder_labels(spec.name),
                             "annotations": {f"container.apparmor.security.beta.kubernetes.io/{CONTAINER}": "unconfined"}},
                "spec": {"automountServiceAccountToken": False, "containers": [_container(spec)],
                         "securityContext": {"fsGroup": ROOTLESS_UID}},
            },
            "volumeClaimTemplates": [{"metadata": {"name": CACHE_VOLUME, "labels": builder_labels(spec.name)}, "spec": claim_spec}],
        },
    }
    return (statefulset,)


def _container(spec: BuilderSpec) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        return {"exec": {"command": ["buildctl", "debug", "workers"]}, "initialDelaySeconds": 5, "periodSeconds": 10,
                "timeoutSeconds": 5}

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "args": ["--addr", SOCKET, "--root", CACHE_DIR, "--oci-worker-no-process-sandbox"],
        # buildctl in the same container (probes, dial-stdio) finds the daemon through this
        "env": [{"name": "BUILDKIT_HOST", "value": SOCKET}],
        "readinessProbe": probe(),
        "livenessProbe": {**probe(), "failureThreshold": 6},
        "securityContext": {"runAsUser": ROOTLESS_UID, "runAsGroup": ROOTLESS_UID,
                            "seccompProfile": {"type": "Unconfined"}},
        "volumeMounts": [{"name": CACHE_VOLUME, "mountPath": CACHE_DIR}],
    }
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    return container


def _resources(spec: BuilderSpec) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part, values in (("requests", (spec.cpu_request, spec.memory_request)),
                         ("limits", (spec.cpu_limit, spec.memory_limit))):
        chosen = {k: v for k, v in zip(("cpu", "memory"), values) if v}
        if chosen:
            out[part] = chosen
    return out


def _check(spec: BuilderSpec) -> None:
    problems = []
    if not _NAME.match(spec.name):
        problems.append(f"builder name {spec.name!r} must be a DNS label of at most 52 characters "
                        "(lowercase letters, digits, '-')")
    if not _NAMESPACE.match(spec.namespace):
        problems.append(f"namespace {spec.namespace!r} is not a DNS label")
    if not _DIGEST_REF.match(spec.image):
        problems.append(f"--image {spec.image!r} must be pinned by digest (REF@sha256:<64 hex digits>)")
    if not 1 <= spec.replicas <= 64:
        problems.append(f"--replicas {spec.replicas} must be between 1 and 64")
    for flag, value in (("--cache-size", spec.cache_size), ("--cpu-request", spec.cpu_request),
                        ("--cpu-limit", spec.cpu_limit), ("--memory-request", spec.memory_request),
                        ("--memory-limit", spec.memory_limit)):
        if value and not _QUANTITY.match(value):
            problems.append(f"{flag} {value!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    if problems:
        raise UsageError("; ".join(problems), hint="see `dsl builder create --help`")
