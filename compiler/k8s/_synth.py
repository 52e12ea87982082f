"""Synthesis: Kubernetes objects → deterministic YAML/JSON text (the only serialising code).

Objects go out in a fixed kind order (Secret, PersistentVolumeClaim, Service, Pod); in each
object ``apiVersion, kind, metadata, spec`` come first and every other key is sorted, at every
depth, so the bytes depend on nothing but the objects.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

KIND_ORDER = ("Secret", "PersistentVolumeClaim", "Service", "Pod")
_FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")
_FILE_PREFIX = {"Secret": "secret", "PersistentVolumeClaim": "pvc", "Service": "service", "Pod": "pod"}
KUSTOMIZATION = "kustomization.yaml"

# libyaml's emitter when present (several times faster); both emitters give the same bytes
# for what we emit: block style, no line folding, plain or quoted scalars.
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


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
    """The objects sorted by kind (stable within a kind), keys ordered."""
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return [ordered(o) for o in sorted(objects, key=lambda o: rank.get(o["kind"], len(rank)))]


def dump_yaml(obj: Any) -> str:
    """One YAML document (no ``---``), block style, keys in the given order."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16)


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
    doc = {"apiVersion": "v1", "kind": "List", "items": in_kind_order(objects)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def file_name(obj: dict[str, Any]) -> str:
    """The file an object is written to under ``-o DIR``: ``<kind>-<name>.yaml``."""
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
