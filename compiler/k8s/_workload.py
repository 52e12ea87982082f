"""The object that runs the environment's Pod: a bare Pod (default), a StatefulSet or a Deployment.

A bare Pod's spec is immutable, so a changed configuration must be a new object for GitOps
tools to roll it out: the Pod is named ``<env>-<config hash>`` and the old one is pruned
(``kubectl apply --prune -l app.kubernetes.io/instance=<env>``, Argo CD prune, Flux garbage
collection). A StatefulSet (``<env>``, Pod ``<env>-0``) or Deployment (``<env>``) keeps its
name, and its controller replaces the Pod when the template changes. All three carry the same
labels, annotations, Pod spec and Service; PVCs are referenced by claim name (never
``volumeClaimTemplates``), so their names and data stay whatever the workload.

The config hash (annotation ``envdsl/config-hash``, its first 8 hex digits in a bare Pod's
name) is SHA-256 over the canonical JSON of exactly what a running Pod cannot pick up without
being replaced:

- the Pod template's labels and its whole ``spec`` (image, command, env, ports, volumes,
  resources, security context, ...);
- the ``data`` of every Secret the tree emits (the ``--ssh-public-key`` Secret), because the
  container reads it into its environment at start: a new key needs a new Pod.

It leaves out the name and namespace (the identity, not the configuration), the workload
kind (the same environment has the same hash whatever runs it), the ``envdsl/content-hash``
annotation (it also covers PVCs and the Service, whose changes need no new Pod) and
everything about the machine. Secrets made outside the tree (``--ssh-secret``, the Jupyter
token, ``--host-key-secret``) are not seen: restart the Pod after changing one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compiler._names import dns_label, short_hash
from dsl.ir import content_hash

WORKLOADS = ("pod", "statefulset", "deployment")
CONFIG_HASH_ANNOTATION = "envdsl/config-hash"
_LABEL_MAX = 63
# The StatefulSet controller labels each Pod ``controller-revision-hash: <set>-<10 chars>``,
# a label value (<= 63): the set's name must leave room for it.
_STATEFUL_SET_MAX = _LABEL_MAX - 11


def config_hash(labels: dict[str, str], spec: dict[str, Any], secrets: dict[str, dict[str, str]]) -> str:
    """``sha256:<hex>`` of what only a new Pod takes up (see the module docstring).

    Args:
        labels: the Pod template's labels.
        spec: the Pod spec.
        secrets: name → ``data`` of each Secret emitted with the Pod.

    Returns:
        The digest; deterministic (canonical JSON, no ``hash()``).
    """
    return content_hash({"labels": labels, "spec": spec, "secrets": secrets})


def pod_name(base: str, digest: str) -> str:
    """``<base>-<first 8 hex of the config hash>``, the base cut so the whole is a DNS label."""
    suffix = digest.removeprefix("sha256:")[:8]
    return f"{base[: _LABEL_MAX - len(suffix) - 1].rstrip('-')}-{suffix}"


def stateful_set_name(base: str) -> str:
    """``base``, or when too long for the controller's revision label, cut with a hash suffix."""
    if len(base) <= _STATEFUL_SET_MAX:
        return base
    return dns_label(f"{base[: _STATEFUL_SET_MAX - 9].rstrip('-')}-{short_hash(base)}")


def workload(
    kind: str,
    base: str,
    metadata: Callable[[str], dict[str, Any]],
    labels: dict[str, str],
    selector: dict[str, str],
    spec: dict[str, Any],
    digest: str,
) -> dict[str, Any]:
    """The object running ``spec``.

    Args:
        kind: one of ``WORKLOADS``.
        base: the environment's base name (also the Service's).
        metadata: ``name -> metadata`` of a top-level object (labels, content hash, namespace).
        labels: the labels of every object, and of the Pod.
        selector: the stable labels the Service (and a set's selector) select.
        spec: the Pod spec.
        digest: the config hash.

    Returns:
        A Pod, StatefulSet or Deployment as plain data.
    """
    if kind == "pod":
        meta = metadata(pod_name(base, digest))
        meta["annotations"] = {**meta["annotations"], CONFIG_HASH_ANNOTATION: digest}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    template = {"metadata": {"labels": labels, "annotations": {CONFIG_HASH_ANNOTATION: digest}}, "spec": spec}
    if kind == "statefulset":
        # RollingUpdate (the default) of one replica: the controller deletes <env>-0 and makes it
        # anew from the new template; never two Pods on the ReadWriteOnce volumes.
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata(stateful_set_name(base)),
                "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "serviceName": base,
                         "template": template}}
    # Recreate: the old Pod is gone before the new one starts, as the ReadWriteOnce volumes
    # need (a RollingUpdate's surge Pod could not mount them on another node).
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(base),
            "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "strategy": {"type": "Recreate"},
                     "template": template}}
