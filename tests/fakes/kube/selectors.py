"""Label and field selectors, parsed and matched as the API server does.

Label selector grammar (k8s.io/apimachinery ``pkg/labels``): comma-separated requirements,
each ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``,
``key`` (exists) or ``!key`` (does not exist). ``!=`` and ``notin`` also match objects without
the key. Field selectors support ``metadata.name`` and ``metadata.namespace`` with ``=``,
``==`` and ``!=`` (the fields every resource has), and for Pods also the fields the Pod
strategy adds (``spec.nodeName``, ``status.phase``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .status import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if match := _EQ.match(text):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET.match(text):
        negate, key, op, values = match.groups()
        if negate and op:
            raise bad_request(f"unable to parse requirement: {text!r}")
        if op:
            wanted = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                return lambda labels: key in labels and labels[key] in wanted
            return lambda labels: key not in labels or labels[key] not in wanted
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: found '{text.strip()}', expected: in, notin, =, ==, !=, gt, lt")


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda obj: True
    requirements = [_requirement(part) for part in _split(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


_COMMON = ("metadata.name", "metadata.namespace")
_BY_KIND = {"Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                    "status.phase", "status.podIP", "status.nominatedNodeName"),
            "Event": tuple(f"involvedObject.{f}" for f in ("kind", "namespace", "name", "uid", "apiVersion",
                                                            "resourceVersion", "fieldPath"))
            + ("reason", "reportingComponent", "source", "type"),
            "Secret": ("type",)}


def _lookup(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None, kind: str) -> Matcher:
    if not selector:
        return lambda obj: True
    checks = []
    for part in _split(selector):
        match = _EQ.match(part)
        if not match:
            raise bad_request(f'invalid selector: \'{selector}\'; can\'t understand \'{part}\'')
        path, op, value = match.groups()
        if path not in _COMMON + _BY_KIND.get(kind, ()):
            raise bad_request(f"field label not supported: {path}")
        checks.append((path, op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_lookup(obj, path) == value) != negate for path, negate, value in checks)

    return matches
