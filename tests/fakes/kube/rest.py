"""REST routes of the resources: get, list (with selectors and paging), watch, and the writes.

Paths as the real server lays them out: ``/api/v1/namespaces/{ns}/{plural}[/{name}]``,
``/api/v1/{plural}`` (all namespaces, or a cluster-scoped collection),
``/api/v1/{plural}/{name}``, and the same under ``/apis/{group}/{version}``. List items carry
no ``apiVersion``/``kind`` (a real server's typed lists don't; kubectl adds them). Human
``kubectl get`` asks for a Table, which the fake answers with the server's default columns
(Name, Created At).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from . import resources, watch
from .resources import ResourceType
from .selectors import field_matcher, label_matcher
from .server import Request, Response, Router, Stream
from .status import ApiError, bad_request, page_not_found
from .store import Store
from .writes import Writer, decode_body, options_from

_PREFIX = r"/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"


def _rtype(match: re.Match[str], namespaced_path: bool) -> ResourceType:
    group, version = (match["group"], match["version"]) if match["group"] else ("", match["core"])
    rtype = resources.by_plural(group, version, match["plural"])
    if rtype is None or (namespaced_path and not rtype.namespaced):
        raise page_not_found()
    return rtype


def _list_kind_item(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _table(rtype: ResourceType, items: list[dict[str, Any]], revision: int, include: str) -> dict[str, Any]:
    columns = [
        {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
        {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
    ]
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]}
        if include != "None":
            row["object"] = ({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
                             if include != "Object" else obj)
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(revision)},
            "columnDefinitions": columns, "rows": rows}


def _wants_table(request: Request) -> bool:
    accept = request.headers.get("Accept") or ""
    return "as=Table" in accept


class ResourceApi:
    def __init__(self, store: Store, writer: Writer) -> None:
        self.store = store
        self.writer = writer

    def register(self, router: Router) -> None:
        router.add("GET POST DELETE", _PREFIX + r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/?",
                   lambda req, m: self.collection(req, _rtype(m, True), m["ns"]))
        router.add("GET PUT PATCH DELETE", _PREFIX + r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)",
                   lambda req, m: self.item(req, _rtype(m, True), m["ns"], m["name"]))
        router.add("GET POST DELETE", _PREFIX + r"/(?P<plural>[^/]+)/?",
                   lambda req, m: self.collection(req, _rtype(m, False), None))
        router.add("GET PUT PATCH DELETE", _PREFIX + r"/(?P<plural>[^/]+)/(?P<name>[^/]+)", self._cluster_item)

    def _cluster_item(self, req: Request, m: re.Match[str]) -> Response | Stream:
        rtype = _rtype(m, False)
        if rtype.namespaced:
            raise page_not_found()
        return self.item(req, rtype, None, m["name"])

    # --- collections ----------------------------------------------------------------------

    def collection(self, request: Request, rtype: ResourceType, namespace: str | None) -> Response | Stream:
        if request.method == "POST":
            if namespace is None and rtype.namespaced:
                raise page_not_found()
            options = options_from(request.query, request.headers.get("User-Agent") or "")
            created = self.writer.create(rtype, namespace, decode_body(request.body, request.content_type), options)
            return Response(created, 201, _warnings(options.warnings))
        if request.method == "DELETE":
            return self._delete_collection(request, rtype, namespace)
        if request.flag("watch"):
            return watch.stream(self.store, request, rtype, namespace)
        return self._list(request, rtype, namespace)

    def _select(self, request: Request, rtype: ResourceType, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        labels = label_matcher(request.query.get("labelSelector"))
        fields = field_matcher(request.query.get("fieldSelector"), rtype.kind)
        items, revision = self.store.list(rtype, namespace)
        return [obj for obj in items if labels(obj) and fields(obj)], revision

    def _list(self, request: Request, rtype: ResourceType, namespace: str | None) -> Response:
        items, revision = self._select(request, rtype, namespace)
        start = 0
        if request.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(request.query["continue"]))
                start, revision = int(token["start"]), int(token["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from exc
        limit = int(request.query.get("limit") or 0)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        page = items[start:]
        if limit and len(page) > limit:
            page = page[:limit]
            token = json.dumps({"start": start + limit, "rv": revision}).encode()
            metadata["continue"] = base64.urlsafe_b64encode(token).decode()
            metadata["remainingItemCount"] = len(items) - start - limit
        if _wants_table(request):
            return Response(_table(rtype, page, revision, request.query.get("includeObject", "Metadata")))
        body = {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": metadata,
                "items": [_list_kind_item(obj) for obj in page]}
        return Response(body)

    def _delete_collection(self, request: Request, rtype: ResourceType, namespace: str | None) -> Response:
        if rtype.kind == "Namespace":
            from .status import method_not_allowed

            raise method_not_allowed()
        items, _ = self._select(request, rtype, namespace)
        delete_options = json.loads(request.body) if request.body else {}
        dry_run = request.query.get("dryRun") == "All" or delete_options.get("dryRun") == ["All"]
        deleted = [self.writer.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], {}, dry_run)
                   for obj in items]
        return Response({"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                         "metadata": {"resourceVersion": str(self.store.revision)},
                         "items": [_list_kind_item(obj) for obj in deleted]})

    # --- items ----------------------------------------------------------------------------

    def item(self, request: Request, rtype: ResourceType, namespace: str | None, name: str) -> Response:
        agent = request.headers.get("User-Agent") or ""
        if request.method == "GET":
            obj = self.store.get(rtype, namespace, name)
            if obj is None:
                from .status import not_found

                raise not_found(rtype, name)
            if _wants_table(request):
                return Response(_table(rtype, [obj], int(obj["metadata"]["resourceVersion"]), request.query.get("includeObject", "Metadata")))
            return Response(obj)
        if request.method == "PUT":
            options = options_from(request.query, agent)
            updated = self.writer.update(rtype, namespace, name, decode_body(request.body, request.content_type), options)
            return Response(updated, 200, _warnings(options.warnings))
        if request.method == "PATCH":
            options = options_from(request.query, agent, apply=request.content_type == "application/apply-patch+yaml")
            patched, created = self.writer.patch(rtype, namespace, name, request.content_type, request.body, options)
            return Response(patched, 201 if created else 200, _warnings(options.warnings))
        delete_options = {}
        if request.body:
            delete_options = decode_body(request.body, "application/json")
            if not isinstance(delete_options, dict):
                raise bad_request("DeleteOptions must be an object")
        if request.query.get("gracePeriodSeconds") and "gracePeriodSeconds" not in delete_options:
            delete_options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
        dry_run_values = delete_options.get("dryRun") or ([request.query["dryRun"]] if request.query.get("dryRun") else [])
        if any(v != "All" for v in dry_run_values):
            raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: {json.dumps(dry_run_values)}')
        deleted = self.writer.delete(rtype, namespace, name, delete_options, bool(dry_run_values))
        return Response(deleted, 200)


def _warnings(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"Warning": ", ".join(f'299 - {json.dumps(w)}' for w in warnings)}
