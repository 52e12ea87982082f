"""OpenAPI v3 documents, which kubectl downloads before it creates or patches anything.

kubectl 1.32 uses them for two decisions: whether the server validates fields itself (a
PATCH operation with a ``fieldValidation`` query parameter for the kind; then kubectl sends
``fieldValidation=Strict`` and validates nothing itself), and how client-side ``apply``
builds its strategic merge patch (the kind's schema with its patch merge keys). Each group
version's document holds the PATCH/GET/PUT/DELETE operations of its resources and the schema
components their kinds reference, converted from the JSON Schema that ``schema`` loads.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from . import resources, schema
from .resources import ResourceType
from .server import Request, Response, Router
from .status import page_not_found

_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")
_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}


def _convert(node: Any) -> Any:
    """JSON Schema (draft 2020, nullable type arrays) → OpenAPI 3.0 schema."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            return {"allOf": [{"$ref": value.replace("#/$defs/", "#/components/schemas/")}],
                    **{k: _convert(v) for k, v in node.items() if k != "$ref"}}
        if key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            out[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "additionalProperties" and value is False:
            continue
        elif key == "properties":
            out[key] = {name: _convert(prop) for name, prop in value.items()}
        else:
            out[key] = _convert(value)
    return out


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/"):]
            if name not in found:
                found.add(name)
                _references(schema.definitions()[name], found)
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _operations(rtype: ResourceType) -> dict[str, Any]:
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    ref = {"$ref": f"#/components/schemas/{schema.kind_definition(rtype.group, rtype.version, rtype.kind)}"}
    reply = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    base = {"x-kubernetes-group-version-kind": gvk, "responses": reply}
    item = "/" + rtype.prefix("{namespace}").lstrip("/") + "/{name}"
    return {item: {
        "get": {**base, "operationId": f"read{rtype.kind}", "x-kubernetes-action": "get"},
        "put": {**base, "operationId": f"replace{rtype.kind}", "x-kubernetes-action": "put",
                "parameters": [_param(p) for p in ("dryRun", "fieldManager", "fieldValidation")],
                "requestBody": {"content": {"*/*": {"schema": ref}}}},
        "patch": {**base, "operationId": f"patch{rtype.kind}", "x-kubernetes-action": "patch",
                  "parameters": [_param(p) for p in ("dryRun", "fieldManager", "fieldValidation", "force")],
                  "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES}}},
        "delete": {**base, "operationId": f"delete{rtype.kind}", "x-kubernetes-action": "delete"},
    }}


@functools.cache
def document(group: str, version: str) -> bytes:
    members = [r for r in resources.TYPES if (r.group, r.version) == (group, version)]
    if not members:
        raise page_not_found()
    names: set[str] = set()
    paths: dict[str, Any] = {}
    for rtype in members:
        name = schema.kind_definition(rtype.group, rtype.version, rtype.kind)
        names.add(name)
        _references(schema.definitions()[name], names)
        paths.update(_operations(rtype))
    components = {n: _SPECIAL.get(n) or _convert(schema.definitions()[n]) for n in sorted(names)}
    title = "Kubernetes (a fake API server for tests)"
    doc = {"openapi": "3.0.0", "info": {"title": title, "version": "v1.32.0-fake"},
           "paths": paths, "components": {"schemas": components}}
    return json.dumps(doc).encode()


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def register(router: Router) -> None:
    def root(req: Request, m: object) -> Response:
        listed = {}
        for group, version in sorted({(r.group, r.version) for r in resources.TYPES}):
            digest = hashlib.sha512(document(group, version)).hexdigest().upper()[:128]
            listed[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
        return Response({"paths": listed})

    def one(req: Request, m: Any) -> Response:
        group, version = (m["group"] or "", m["version"])
        return Response(document(group, version))

    router.add("GET", "/openapi/v3/?", root)
    router.add("GET", r"/openapi/v3/(?:api|apis/(?P<group>[^/]+))/(?P<version>[^/]+)", one)
