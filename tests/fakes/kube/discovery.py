"""Discovery: ``/version``, ``/api``, ``/apis`` and each group version's resource list.

kubectl 1.32 first asks for aggregated discovery (``as=APIGroupDiscoveryList``) and falls
back to these legacy documents when the server answers plain ``application/json``, as
servers before 1.26 did; the fake serves only the legacy form.
"""

from __future__ import annotations

import hashlib

from . import resources
from .resources import VERBS, ResourceType
from .server import Request, Response, Router

GIT_VERSION = "v1.32.0-fake"  # a fake, and says so wherever a version is shown


def _resource(rtype: ResourceType) -> dict:
    verbs = [v for v in VERBS if not (rtype.kind == "Namespace" and v == "deletecollection")]
    entry = {"name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced,
             "kind": rtype.kind, "verbs": verbs}
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entry["storageVersionHash"] = hashlib.sha256(rtype.qualified.encode()).hexdigest()[:11]
    return entry


def _resource_list(group: str, version: str) -> Response:
    gv = f"{group}/{version}" if group else version
    found = [_resource(r) for r in resources.TYPES if (r.group, r.version) == (group, version)]
    return Response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": found})


def register(router: Router, address: str) -> None:
    router.add("GET", "/version/?", lambda req, m: Response({
        "major": "1", "minor": "32", "gitVersion": GIT_VERSION, "gitCommit": "0" * 40,
        "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3",
        "compiler": "gc", "platform": "linux/amd64"}))
    router.add("GET", "/api/?", lambda req, m: Response({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}))
    router.add("GET", "/api/v1/?", lambda req, m: _resource_list("", "v1"))

    def groups(req: Request, m: object) -> Response:
        listed = []
        for name, versions in resources.group_versions().items():
            entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            listed.append({"name": name, "versions": entries, "preferredVersion": entries[0]})
        return Response({"kind": "APIGroupList", "apiVersion": "v1", "groups": listed})

    router.add("GET", "/apis/?", groups)
    router.add("GET", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/?",
               lambda req, m: _resource_list(m["group"], m["version"]) if m["group"] in resources.group_versions()
               else _missing())
    router.add("GET", r"/(healthz|livez|readyz)", lambda req, m: Response("ok"))


def _missing() -> Response:
    from .status import page_not_found

    raise page_not_found()
