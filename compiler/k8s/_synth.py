"""Synthesis: Kubernetes objects → deterministic YAML/JSON text.

YAML documents are written by ``_block_yaml`` (exact PyYAML bytes for simple values) or, for
the rest, by PyYAML itself (``_pyyaml``, imported only then).

Objects go out in a fixed kind order (Secret, PersistentVolumeClaim, Service, then the
workload: Pod, StatefulSet or Deployment); in each
object ``apiVersion, kind, metadata, spec`` come first and every other key is sorted, at every
depth, so the bytes depend on nothing but the objects.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.k8s._block_yaml import block_yaml

KIND_ORDER = ("Secret", "PersistentVolumeClaim", "Service", "Pod", "StatefulSet", "Deployment",
              "ServiceAccount", "Role", "RoleBinding", "CronJob")  # the in-cluster gc last (_gc.py)
_FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")
_FILE_PREFIX = {"Secret": "secret", "PersistentVolumeClaim": "pvc", "Service": "service", "Pod": "pod",
                "StatefulSet": "statefulset", "Deployment": "deployment"}
KUSTOMIZATION = "kustomization.yaml"


def ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with the conventional top-level key order and sorted keys below it."""
    head = {k: _sorted(obj[k]) for k in _FIRST_KEYS if k in obj}
    tail = {k: _sorted(obj[k]) for k in sorted(obj) if k not in head}
    return {**head, **tail}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def in_kind_order(objects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The objects sorted by kind (stable within a kind)."""
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return sorted(objects, key=lambda o: rank.get(o["kind"], len(rank)))


def top_level_pairs(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The object's top-level items in output order: ``apiVersion, kind, metadata, spec``
    first, then the other keys sorted."""
    head = [k for k in _FIRST_KEYS if k in obj]
    return [(k, obj[k]) for k in head] + [(k, obj[k]) for k in sorted(obj) if k not in head]


def dump_yaml(obj: dict[str, Any]) -> str:
    """One YAML document (no ``---``), block style, ``apiVersion, kind, metadata, spec`` first
    and every other key sorted.

    Written by ``_block_yaml`` when every value is simple (nearly always), else by PyYAML;
    the bytes are the same either way.

    Raises:
        TypeError: a value is not str, bool, int, dict, list or tuple.
    """
    pairs = top_level_pairs(obj)
    text = block_yaml(pairs)
    if text is None:
        from compiler.k8s._pyyaml import pyyaml_document  # imports yaml: only when needed

        text = pyyaml_document(pairs)
    return text


def synth_yaml(objects: tuple[dict[str, Any], ...]) -> str:
    """Multi-document YAML for ``kubectl apply -f -``.

    Args:
        objects: the objects from ``compile_k8s``.

    Returns:
        The documents, each starting with ``---``.
    """
    return "".join("---\n" + dump_yaml(o) for o in in_kind_order(objects))


def synth_json(objects: tuple[dict[str, Any], ...]) -> str:
    """A ``v1 List`` of the objects as indented JSON (``--format json``)."""
    doc = {"apiVersion": "v1", "kind": "List", "items": [ordered(o) for o in in_kind_order(objects)]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def file_name(obj: dict[str, Any]) -> str:
    """The file an object is written to under ``-o DIR``: ``<kind>-<name>.yaml`` (one object a
    file; a Pod's name carries its config hash, so a changed Pod is a new file and the old
    one is removed as stale)."""
    return f"{_FILE_PREFIX.get(obj['kind'], obj['kind'].lower())}-{obj['metadata']['name']}.yaml"


def synth_files(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    """One YAML file per object plus a ``kustomization.yaml`` listing them in kind order.

    Args:
        objects: the objects from ``compile_k8s``.

    Returns:
        File name → content, in write order (objects first, kustomization last).
    """
    files = {file_name(o): dump_yaml(o) for o in in_kind_order(objects)}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    files[KUSTOMIZATION] = dump_yaml(kustomization)
    return files
