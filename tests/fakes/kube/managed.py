"""Field managers: ``metadata.managedFields`` kept as a real server keeps it.

Every write records who set which fields. An Update (create, PUT, a non-apply PATCH) gives
its manager the fields it added or changed and takes them from everyone else, without
conflicts. An Apply (server-side apply) claims exactly the fields of the applied
configuration: a field another manager owns with a different value is a conflict (409,
nothing written) unless ``force=true``, which moves ownership; the same value makes the
ownership shared; fields the applier owned before and no longer applies are removed from the
object unless someone else owns them. Entries are per (manager, operation, apiVersion), with
``fieldsType: FieldsV1`` and the time of their last change; empty entries are dropped.

Not modelled: subresources, version conversion of field sets, unions, and the
"last applied" upgrade that kubectl performs itself (it uses ordinary patches of
``managedFields``, which the fake accepts as a real server does).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from . import fieldsets, schema
from .fieldsets import Path
from .status import ApiError


@dataclasses.dataclass
class Entry:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    fields: set[Path]
    subresource: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": fieldsets.to_fields_v1(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """How conflict messages name the manager (printManager in apimachinery)."""
        if self.operation == "Update":
            return f'"{self.manager}" using {self.api_version} at {self.time}'
        return f'"{self.manager}"'


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(entries: list[dict[str, Any]] | None) -> list[Entry]:
    return [Entry(e.get("manager", ""), e.get("operation", "Update"), e.get("apiVersion", ""), e.get("time", ""),
                  fieldsets.from_fields_v1(e.get("fieldsV1") or {}), e.get("subresource", ""))
            for e in entries or () if isinstance(e, dict)]


def encode(entries: list[Entry]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in entries if e.fields]


def _entry(entries: list[Entry], manager: str, operation: str, api_version: str) -> Entry:
    for entry in entries:
        if (entry.manager, entry.operation, entry.subresource) == (manager, operation, ""):
            entry.api_version = api_version
            return entry
    entry = Entry(manager, operation, api_version, now(), set())
    entries.append(entry)
    return entry


def record_update(old: dict[str, Any] | None, new: dict[str, Any], node: schema.Node, manager: str,
                  base: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The managedFields after an Update by ``manager`` from ``old`` to ``new``."""
    entries = decode(base)
    added, modified, removed = fieldsets.compare(old or {}, new, node)
    changed = added | modified
    own = _entry(entries, manager, "Update", new["apiVersion"])
    for entry in entries:
        if entry is not own:
            entry.fields -= changed
    updated = (own.fields - removed) | changed
    if updated != own.fields:
        own.time = now()
    own.fields = updated
    return encode(entries)


def _conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    conflicts.sort(key=lambda c: (c[0].manager, fieldsets.path_string(c[1])))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {entry.describe()}",
               "field": fieldsets.path_string(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {fieldsets.path_string(path)}"
    else:
        lines = []
        for manager in sorted({e.describe() for e, _ in conflicts}):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {fieldsets.path_string(p)}" for e, p in conflicts if e.describe() == manager]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def merge_applied(live: Any, applied: Any, node: schema.Node | None, prop: schema.Node) -> Any:
    """The applied configuration laid over the live object (SMD's merge)."""
    if isinstance(live, dict) and isinstance(applied, dict) and not schema.map_is_atomic(prop):
        out = copy.deepcopy(live)
        for key, value in applied.items():
            out[key] = merge_applied(live.get(key), value, schema.field(node, key), schema.property_node(node, key))
        return out
    kind, keys = schema.list_semantics(prop)
    if isinstance(live, list) and isinstance(applied, list) and kind in ("map", "set"):
        element = lambda item: fieldsets.item_element(item, keys if kind == "map" else ())
        applied_by = {element(item): item for item in applied}
        out_list, seen = [], set()
        for item in live:
            key = element(item)
            if key in applied_by:
                item = merge_applied(item, applied_by[key], schema.items(prop), {}) if kind == "map" else item
            out_list.append(item)
            seen.add(key)
        out_list += [copy.deepcopy(item) for item in applied if element(item) not in seen]
        return out_list
    return copy.deepcopy(applied)


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], node: schema.Node, manager: str,
                      force: bool) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` (with its managedFields set)."""
    entries = decode((live or {}).get("metadata", {}).get("managedFields"))
    merged = merge_applied(live or {}, applied, node, {}) if live else copy.deepcopy(applied)
    added, modified, _ = fieldsets.compare(live or {}, merged, node)
    changed = added | modified
    own = _entry(entries, manager, "Apply", applied["apiVersion"])
    conflicts = [(entry, path) for entry in entries if entry is not own for path in entry.fields & changed]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.fields.discard(path)
    new_set = fieldsets.field_set(applied, node)
    others = set().union(*(e.fields for e in entries if e is not own))
    kept = others | new_set
    stale = {p for p in own.fields - kept if not any(k[:len(p)] == p for k in kept)}
    fieldsets.remove_paths(merged, stale, node)
    if new_set != own.fields:
        own.time = now()
    own.fields = new_set
    merged.setdefault("metadata", {})["managedFields"] = encode(entries)
    return merged
