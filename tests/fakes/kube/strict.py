"""Unknown fields: refused, warned about or dropped, per the request's ``fieldValidation``.

A real server decodes a body into typed structs, so a field the schema does not declare
never reaches storage. ``fieldValidation=Strict`` (kubectl's default) turns that into 400
``strict decoding error: unknown field "spec.foo"``; ``Warn`` (the server default) adds a
``Warning`` header; ``Ignore`` drops it silently. Server-side apply refuses undeclared
fields whatever the setting (``field not declared in schema``). Types are not checked.
"""

from __future__ import annotations

from typing import Any

from . import schema


def prune_unknown(value: Any, node: schema.Node | None, path: str = "") -> tuple[Any, list[str]]:
    """``value`` without undeclared fields, and the dotted paths of those it dropped."""
    node = schema.resolve(node)
    if node is None:
        return value, []
    unknown: list[str] = []
    if isinstance(value, dict) and schema.is_struct(node):
        kept = {}
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            child_node = schema.field(node, key)
            if child_node is None:
                unknown.append(child_path)
                continue
            kept[key], found = prune_unknown(child, child_node, child_path)
            unknown += found
        return kept, unknown
    if isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        out = {}
        for key, child in value.items():
            out[key], found = prune_unknown(child, node["additionalProperties"], f"{path}.{key}" if path else key)
            unknown += found
        return out, unknown
    if isinstance(value, list) and "items" in node:
        out_list = []
        for index, item in enumerate(value):
            kept_item, found = prune_unknown(item, node["items"], f"{path}[{index}]")
            out_list.append(kept_item)
            unknown += found
        return out_list, unknown
    return value, unknown


def strict_message(unknown: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)


def apply_message(gvk: str, unknown: list[str]) -> str:
    return f"failed to create typed patch object ({gvk}): " + "; ".join(f".{p}: field not declared in schema" for p in unknown)
