"""Field sets: which fields of an object a manager owns, as structured-merge-diff sees them.

A path is a tuple of elements in the FieldsV1 spelling: ``f:<field>`` (a struct field or map
key), ``k:{"name":"x"}`` (an item of an associative list, by its map keys), ``v:<json>`` (an
item of a set list). Which paths an object contributes follows the schema: scalars, atomic
lists and atomic maps are leaves; associative-list items count themselves and their fields;
set items count themselves; granular maps count only their contents (an empty one counts as
a leaf, so that ``emptyDir: {}`` has an owner). ``compare`` tells which paths changed
between two objects; for Update operations a newly created map also counts itself, which
is why such managers' FieldsV1 show ``.: {}`` entries.
"""

from __future__ import annotations

import json
from typing import Any

from . import schema

Path = tuple[str, ...]

# Fields no manager owns: identity and server-maintained metadata (fieldmanager's stripMeta).
_UNOWNED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                 "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# Schema defaults of list-map key fields: an applied port without a protocol is the TCP port.
_KEY_DEFAULTS = {"protocol": "TCP"}


def item_element(item: Any, keys: tuple[str, ...]) -> str:
    if not isinstance(item, dict):
        return "v:" + _json(item)
    found = {key: item.get(key, _KEY_DEFAULTS.get(key)) for key in keys}
    return "k:" + _json({key: value for key, value in found.items() if value is not None})


def _top_level(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of an object that field ownership covers (no status, no identity metadata)."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in _UNOWNED_META}
        if not body["metadata"]:
            body.pop("metadata")
    return body


def _fields(value: Any, node: schema.Node | None, prop: schema.Node, path: Path, out: set[Path],
            with_maps: bool) -> None:
    if isinstance(value, dict):
        if schema.map_is_atomic(prop) or not value:
            out.add(path)
            return
        if with_maps and path:
            out.add(path)
        for key, child in value.items():
            _fields(child, schema.field(node, key), schema.property_node(node, key), path + (f"f:{key}",), out, with_maps)
    elif isinstance(value, list):
        kind, keys = schema.list_semantics(prop)
        if kind == "atomic" or not value:
            out.add(path)
            return
        item_node = schema.items(prop)
        for item in value:
            element = path + (item_element(item, keys if kind == "map" else ()),)
            out.add(element)
            if kind == "map" and isinstance(item, dict):
                for key, child in item.items():
                    _fields(child, schema.field(item_node, key), schema.property_node(item_node, key),
                            element + (f"f:{key}",), out, with_maps)
    else:
        out.add(path)


def field_set(obj: dict[str, Any], node: schema.Node, with_maps: bool = False) -> set[Path]:
    """Every owned path of ``obj`` (the set an Apply of ``obj`` claims)."""
    out: set[Path] = set()
    _fields(_top_level(obj), node, {}, (), out, with_maps)
    out.discard(())
    return out


def compare(old: dict[str, Any], new: dict[str, Any], node: schema.Node) -> tuple[set[Path], set[Path], set[Path]]:
    """(added, modified, removed) paths from ``old`` to ``new``; added maps count themselves."""
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _compare(_top_level(old), _top_level(new), node, {}, (), added, modified, removed)
    for paths in (added, modified, removed):
        paths.discard(())
    return added, modified, removed


def _subtree(value: Any, node: schema.Node | None, prop: schema.Node, path: Path, out: set[Path]) -> None:
    _fields(value, node, prop, path, out, with_maps=True)


def _compare(old: Any, new: Any, node: schema.Node | None, prop: schema.Node, path: Path,
             added: set[Path], modified: set[Path], removed: set[Path]) -> None:
    if old == new:
        return
    if type(old) is type(new) and isinstance(old, (dict, list)) and (not old or not new):
        _subtree(old, node, prop, path, removed)  # an empty map or list is a leaf of its own
        _subtree(new, node, prop, path, added)
        removed.discard(path)
        return
    if isinstance(old, dict) and isinstance(new, dict) and old and new and not schema.map_is_atomic(prop):
        for key in old.keys() | new.keys():
            child, child_prop, child_path = schema.field(node, key), schema.property_node(node, key), path + (f"f:{key}",)
            if key not in new:
                _subtree(old[key], child, child_prop, child_path, removed)
            elif key not in old:
                _subtree(new[key], child, child_prop, child_path, added)
            else:
                _compare(old[key], new[key], child, child_prop, child_path, added, modified, removed)
        return
    kind, keys = schema.list_semantics(prop)
    if isinstance(old, list) and isinstance(new, list) and old and new and kind != "atomic":
        item_node = schema.items(prop)
        olds = {item_element(i, keys if kind == "map" else ()): i for i in old}
        news = {item_element(i, keys if kind == "map" else ()): i for i in new}
        for element in olds.keys() | news.keys():
            item_path = path + (element,)
            if element not in news:
                _subtree_item(olds[element], item_node, kind, item_path, removed)
            elif element not in olds:
                _subtree_item(news[element], item_node, kind, item_path, added)
            elif kind == "map":
                _compare(olds[element], news[element], item_node, {}, item_path, added, modified, removed)
        return
    if old != new:
        modified.add(path)


def _subtree_item(item: Any, item_node: schema.Node | None, kind: str, path: Path, out: set[Path]) -> None:
    out.add(path)
    if kind == "map" and isinstance(item, dict):
        for key, child in item.items():
            _subtree(child, schema.field(item_node, key), schema.property_node(item_node, key), path + (f"f:{key}",), out)


# --- FieldsV1 encoding ---------------------------------------------------------------------

def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return _collapse(root)


def _collapse(node: dict[str, Any]) -> dict[str, Any]:
    """A member with no children is ``{}``; one with children keeps ``.: {}``."""
    out = {}
    for key, child in node.items():
        if key == ".":
            continue
        grandchildren = _collapse(child)
        if "." in child and grandchildren:
            grandchildren = {".": {}, **grandchildren}
        out[key] = grandchildren
    return dict(sorted(out.items()))


def from_fields_v1(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, child in (fields or {}).items():
        if key == ".":
            paths.add(prefix)
            continue
        if not child:
            paths.add(prefix + (key,))
        else:
            paths |= from_fields_v1(child, prefix + (key,))
    return paths


def path_string(path: Path) -> str:
    """A path as conflict messages print it: ``.spec.containers[name="app"].image``."""
    out = ""
    for element in path:
        kind, rest = element[0], element[2:]
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            pairs = json.loads(rest)
            out += "[" + ",".join(f"{k}={_json(v)}" for k, v in pairs.items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


# --- removing owned paths ------------------------------------------------------------------

def remove_paths(obj: dict[str, Any], paths: set[Path], node: schema.Node) -> None:
    """Delete each path's field or list item from ``obj`` (a removed item takes its fields)."""
    for path in paths:
        if not any(path[:n] in paths for n in range(1, len(path))):
            _remove(obj, path, node, {})


def _remove(value: Any, path: Path, node: schema.Node | None, prop: schema.Node) -> None:
    element, rest = path[0], path[1:]
    if isinstance(value, dict) and element.startswith("f:"):
        key = element[2:]
        if key not in value:
            return
        if not rest:
            value.pop(key)
        else:
            _remove(value[key], rest, schema.field(node, key), schema.property_node(node, key))
    elif isinstance(value, list):
        kind, keys = schema.list_semantics(prop)
        for index, item in enumerate(value):
            if item_element(item, keys if kind == "map" else ()) == element:
                if not rest:
                    value.pop(index)
                else:
                    _remove(item, rest, schema.items(prop), {})
                return
