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
_STR, _INT, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """PyYAML's safe dumper with a memo for implicit-tag resolution.

    Deciding whether a string must be quoted (``"yes"``, ``"0777"``, ``"2"``) runs a list of
    regexes per scalar; manifests repeat the same keys and values, so the answer is cached.
    """

    def descend_resolver(self, current_node, current_index):  # type: ignore[no-untyped-def]
        pass  # no path-dependent resolvers are registered; skip the per-node bookkeeping

    def ascend_resolver(self):  # type: ignore[no-untyped-def]
        pass

    def resolve(self, kind, value, implicit):  # type: ignore[no-untyped-def]
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            if len(_RESOLVED) > 100_000:
                _RESOLVED.clear()
            tag = _RESOLVED[key] = super().resolve(kind, value, implicit)
        return tag


def _node(value: Any) -> yaml.Node:
    """A YAML node for plain data (str, bool, int, dict, list); mapping keys sorted.

    Building nodes directly skips PyYAML's generic representer (type dispatch, alias
    tracking); the bytes are the same as ``yaml.safe_dump(value)``.
    """
    kind = type(value)
    if kind is str:
        return yaml.ScalarNode(_STR, value, style="|" if "\n" in value else None)
    if kind is dict:
        return yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, k), _node(value[k])) for k in sorted(value)],
                                flow_style=False)
    if kind is list or kind is tuple:
        return yaml.SequenceNode(_SEQ, [_node(v) for v in value], flow_style=False)
    if kind is bool:
        return yaml.ScalarNode(_BOOL, "true" if value else "false")
    if kind is int:
        return yaml.ScalarNode(_INT, str(value))
    raise TypeError(f"cannot emit {kind.__name__} in a manifest")


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


def dump_yaml(obj: dict[str, Any]) -> str:
    """One YAML document (no ``---``), block style, ``apiVersion, kind, metadata, spec`` first
    and every other key sorted."""
    head = [k for k in _FIRST_KEYS if k in obj]
    pairs = [(k, obj[k]) for k in head] + [(k, obj[k]) for k in sorted(obj) if k not in head]
    root = yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, k), _node(v)) for k, v in pairs], flow_style=False)
    return yaml.serialize(root, Dumper=_Dumper, allow_unicode=True, width=1 << 16)


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
