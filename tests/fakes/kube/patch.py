"""The three non-apply PATCH types: JSON patch, JSON merge patch and strategic merge patch.

Strategic merge patch follows k8s.io/apimachinery ``pkg/util/strategicpatch`` as far as
kubectl's client-side ``apply`` and ``patch`` use it: maps merge, ``null`` deletes a key,
lists whose schema says ``x-kubernetes-patch-strategy: merge`` merge by their
``x-kubernetes-patch-merge-key`` (containers by name, ports by containerPort, ...), other lists
are replaced; the directives ``$patch`` (replace/delete/merge), ``$setElementOrder/<list>``,
``$deleteFromPrimitiveList/<list>`` and ``$retainKeys`` are honoured. Not modelled: the
``replaceKeys`` and ``$patch: replace`` inside primitive lists.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import schema
from .status import ApiError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


# --- RFC 6902 JSON patch -------------------------------------------------------------------

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f"the server rejected our request due to an error in our request: invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], op: str) -> tuple[Any, str]:
    for part in parts[:-1]:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise _unprocessable(f"the server rejected our request due to an error in our request: {op} operation does not apply: doc is missing path: /{'/'.join(parts)}")
    return doc, parts[-1]


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _walk(doc, parts, "add")
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise _unprocessable("the server rejected our request due to an error in our request: add operation does not apply: index out of range")
        parent.insert(index, value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str], op: str = "remove") -> Any:
    parent, last = _walk(doc, parts, op)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    raise _unprocessable(f"the server rejected our request due to an error in our request: {op} operation does not apply: doc is missing key: /{'/'.join(parts)}")


def _get(doc: Any, parts: list[str]) -> Any:
    parent, last = _walk(doc, parts, "copy") if parts else (None, "")
    if not parts:
        return doc
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise _unprocessable(f"the server rejected our request due to an error in our request: doc is missing path: /{'/'.join(parts)}")


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for operation in operations:
        op, path = operation.get("op"), _pointer(operation.get("path", ""))
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            _remove(doc, path, "replace")
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = _remove(doc, source, op) if op == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation.get("value"):
                raise _unprocessable("the server rejected our request due to an error in our request: testing value failed")
        else:
            raise _unprocessable(f"the server rejected our request due to an error in our request: Unexpected kind: {op}")
    return doc


# --- RFC 7386 JSON merge patch -------------------------------------------------------------

def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- strategic merge patch -----------------------------------------------------------------

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strip_directives(value: Any) -> Any:
    """A patch value as a plain object (new content that had directives for an absent target)."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return None
        return {k: strip_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [strip_directives(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


def strategic_merge_patch(doc: dict[str, Any], patch: Any, node: schema.Node) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    return _merge_map(copy.deepcopy(doc), patch, node)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: schema.Node | None) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        prop = schema.property_node(node, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(original.get(key), dict):
            merged = _merge_map(original[key], value, schema.field(node, key))
            if merged is None:
                original.pop(key)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(original.get(key), value, prop, patch.get(_ORDER + key))
        else:
            original[key] = strip_directives(value)
    for key, values in patch.items():
        if key.startswith(_DELETE_PRIMITIVES):
            name = key[len(_DELETE_PRIMITIVES):]
            if isinstance(original.get(name), list):
                original[name] = [v for v in original[name] if v not in values]
        elif key.startswith(_ORDER) and key[len(_ORDER):] not in patch:
            name = key[len(_ORDER):]
            if isinstance(original.get(name), list):
                original[name] = _reorder(original[name], values, schema.patch_strategy(schema.property_node(node, name))[1])
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                original.pop(key)
    return original


def _reorder(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    def identity(item: Any) -> str:
        value = item.get(merge_key) if merge_key and isinstance(item, dict) else item
        return json.dumps(value, sort_keys=True)

    wanted = {identity(item): index for index, item in enumerate(order)}
    return sorted(items, key=lambda item: wanted.get(identity(item), len(wanted)))


def _merge_list(original: Any, patch: list[Any], prop: schema.Node, order: Any) -> list[Any]:
    strategies, merge_key = schema.patch_strategy(prop)
    if "merge" not in strategies or not isinstance(original, list):
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            patch = [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
        return strip_directives(patch)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return strip_directives(patch)
    result = list(original)
    if merge_key is None:  # a primitive list merged as a set
        for item in patch:
            if item not in result:
                result.append(item)
    else:
        item_node = schema.items(prop)
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
            matches = [i for i, old in enumerate(result) if isinstance(old, dict) and old.get(merge_key) == item[merge_key]]
            if item.get("$patch") == "delete":
                result = [old for i, old in enumerate(result) if i not in matches]
            elif matches:
                merged = _merge_map(result[matches[0]], item, item_node)
                result[matches[0]] = merged
            else:
                result.append(strip_directives(item))
        result = [item for item in result if item is not None]
    if isinstance(order, list):
        result = _reorder(result, order, merge_key)
    return result
