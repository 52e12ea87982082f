"""The Kubernetes 1.32 OpenAPI schema, as the fake API server uses it.

The fake needs the real schema for four things a real server derives from it: strict field
validation (``fieldValidation=Strict``, kubectl's default), the list and map semantics of
server-side apply (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``,
``x-kubernetes-map-type``), the merge keys of strategic merge patch
(``x-kubernetes-patch-merge-key``, ``x-kubernetes-patch-strategy``), and the OpenAPI v3
documents kubectl downloads. The definitions come from the ``kubernetes-validate`` package
(the official OpenAPI converted to JSON Schema, extensions kept), which the test suite
already installs; no copy is kept in this repository.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

KUBE_VERSION = "1.32.0"
_REF = "#/$defs/"

Node = dict[str, Any]


@functools.cache
def definitions() -> dict[str, Node]:
    """All definitions of the strict 1.32 schema, keyed by their OpenAPI name."""
    import kubernetes_validate

    root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    path = os.path.join(root, f"v{KUBE_VERSION}-local-strict", "_definitions.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["$defs"]


@functools.cache
def kind_definition(group: str, version: str, kind: str) -> str:
    """The definition name of a top-level kind (``io.k8s.api.core.v1.Pod``)."""
    for name, node in definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind", ()):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                return name
    raise KeyError(f"{group}/{version} {kind} is not in the schema")


def resolve(node: Node | None) -> Node | None:
    """Follow ``$ref`` (possibly wrapped in ``allOf``) to the node it names."""
    while node is not None:
        if "$ref" in node:
            node = definitions()[node["$ref"][len(_REF):]]
        elif len(node.get("allOf", ())) == 1:
            node = node["allOf"][0]
        else:
            return node
    return None


def kind_node(group: str, version: str, kind: str) -> Node:
    return definitions()[kind_definition(group, version, kind)]


def types_of(node: Node) -> set[str]:
    """The JSON types a node allows ("object", "array", "string", ...), null left out."""
    if "oneOf" in node:
        return set().union(*(types_of(alt) for alt in node["oneOf"]))
    kind = node.get("type", ())
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds - {"null"}


def field(node: Node | None, name: str) -> Node | None:
    """The schema of field or map key ``name`` of an object node (None: not declared)."""
    node = resolve(node)
    if node is None:
        return None
    if name in node.get("properties", {}):
        return resolve(node["properties"][name]) or {}
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra) or {}
    if extra is False or "properties" in node:
        return None
    return {}  # a free-form object (RawExtension and the like): anything goes


def is_struct(node: Node | None) -> bool:
    """True for an object with declared fields (a struct), false for a map or a free-form object."""
    node = resolve(node)
    return bool(node) and "properties" in node


def items(node: Node | None) -> Node | None:
    node = resolve(node)
    return resolve(node.get("items")) if node else None


def property_node(parent: Node | None, name: str) -> Node:
    """The raw (unresolved) property node, where the list and patch extensions live."""
    parent = resolve(parent)
    if parent is None:
        return {}
    prop = parent.get("properties", {}).get(name)
    if prop is None:
        extra = parent.get("additionalProperties")
        prop = extra if isinstance(extra, dict) else {}
    return prop


def list_semantics(prop: Node) -> tuple[str, tuple[str, ...]]:
    """Server-side apply's view of a list property: ("atomic" | "set" | "map", map keys)."""
    kind = prop.get("x-kubernetes-list-type", "atomic")
    return kind, tuple(prop.get("x-kubernetes-list-map-keys", ()))


def map_is_atomic(prop: Node) -> bool:
    """True when server-side apply treats the object at ``prop`` as one value."""
    target = resolve(prop) or {}
    return prop.get("x-kubernetes-map-type") == "atomic" or target.get("x-kubernetes-map-type") == "atomic"


def patch_strategy(prop: Node) -> tuple[set[str], str | None]:
    """Strategic merge patch's view of a property: (strategies, merge key)."""
    strategy = prop.get("x-kubernetes-patch-strategy", "")
    return {s for s in strategy.split(",") if s}, prop.get("x-kubernetes-patch-merge-key")
