"""``up`` on Kubernetes: server-side apply of the compiled objects, ordered by generation.

Every object carries its configuration's generation (annotation ``envdsl/generation``).
Each write is a compare-and-swap on that object: read it; if its generation is at least ours,
back off (a newer ``dsl up`` won); else apply ours with the read ``resourceVersion`` as a
precondition, so a write that happened in between makes ours fail (409) and we read and decide
again. An absent object is created with POST (409 AlreadyExists: someone else created it
first, read and decide again) and then taken over by a server-side apply of the same bytes,
so later applies by field manager ``envdsl`` never conflict with our own creation.

Objects of other names (an older config's hash-named Pod, a StatefulSet after a switch to
``--workload pod``) are retired before ours are written and once more after: every writer
writes first and looks second, so of two concurrent writers at least one sees the other, and
the older one always loses (it deletes its own workload and says why). PVCs and Secrets are
never retired. No local lock is involved: the API server's resourceVersion is the only
arbiter, as it is for every controller.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from compiler.k8s import dump_yaml
from dsl.engines.kube import _objects as o
from dsl.engines.kube._client import APPLY_PATCH, FIELD_MANAGER, MERGE_PATCH, Kube, KubeStatus, collection_path, \
    object_path, retry_delays
from dsl.engines.runner import RunConflict, UpRequest
from dsl.errors import EngineError, UsageError
from dsl.identity import Claim

_ATTEMPTS = 16
_SERVICE_ACCOUNT_WAIT = 20.0  # a fresh namespace's `default` ServiceAccount comes within seconds
HOST_KEY_SECRET_KEY = "ssh_host_key"  # compiler.k8s.HOST_KEY_FILE
JUPYTER_TOKEN_KEY = "token"  # compiler.k8s.JUPYTER_TOKEN_KEY


class Applier:
    """Applies one ``UpRequest``'s objects (``request.spec``: the compiled objects)."""

    def __init__(self, kube: Kube, request: UpRequest, say: Callable[[str], None]) -> None:
        self.kube = kube
        self.request = request
        self.say = say
        self.generation = request.claim.generation
        self.project = request.identity.project
        self.objects = [dict(obj) for obj in request.spec] + runtime_secrets(request)
        self.workload = next(obj for obj in self.objects if obj["kind"] in o.WORKLOAD_KINDS)
        self.instance = o.instance(self.workload)
        self.mine = {o.key(obj) for obj in self.objects}

    # ---- the steps ----------------------------------------------------------------------

    def live_workloads(self) -> list[dict[str, Any]]:
        """This environment's workloads as they are now (Pods made by a controller left out)."""
        found = []
        for kind in o.WORKLOAD_KINDS:
            items, _ = self.kube.list(kind, o.selector(self.instance))
            found += [item for item in items if not (kind == "Pod" and o.owned_by_controller(item))]
        for item in found:
            self.check_project(item)
        return found

    def newer_claim(self) -> Claim | None:
        """The claim of a newer generation on any object of this environment, if there is one.

        Not only the workloads: a newer writer puts the Secrets, PVCs and Service first and
        deletes our workload before it writes its own, so for a moment they are all it has."""
        held = self.live_workloads() + [self.kube.get(*o.key(obj)) for obj in self.objects if obj is not self.workload]
        newest = max((h for h in held if h is not None and o.project(h) == self.project), key=o.generation,
                     default=None)
        if newest is None or o.generation(newest) <= self.generation:
            return None
        return Claim.from_labels(o.annotations(newest))

    def check_project(self, live: dict[str, Any]) -> None:
        theirs = o.project(live)
        if theirs and theirs != self.project:
            where = o.annotations(live).get("envdsl/project-dir") or theirs
            raise UsageError(f"{live['kind']} {o.name(live)} in namespace {self.kube.namespace} belongs to the "
                             f"environment of another project ({where})",
                             hint="use another namespace (-n) for this project, or `dsl down` the other one")

    def refuse_if_newer(self, workloads: list[dict[str, Any]]) -> None:
        newest = max(workloads, key=o.generation, default=None)
        if newest is None:
            return
        claim = Claim.from_labels(o.annotations(newest))
        if claim.generation > self.generation or (claim.generation == self.generation
                                                  and o.config_hash(newest) != o.config_hash(self.workload)):
            raise _newer(claim, self.generation, o.config_hash(newest) == o.config_hash(self.workload))

    def retire(self, workloads_only: bool = False) -> list[dict[str, Any]]:
        """Delete this environment's objects of older generations that are not in our set; the
        Claims replaced (oldest first)."""
        replaced = []
        for kind in (o.WORKLOAD_KINDS if workloads_only else o.RETIRED_KINDS):
            items, _ = self.kube.list(kind, o.selector(self.instance))
            for item in items:
                if o.key(item) in self.mine or o.project(item) != self.project or o.generation(item) >= self.generation:
                    continue
                if kind == "Pod" and o.owned_by_controller(item):
                    continue  # goes with its StatefulSet/Deployment
                if self.delete(item):
                    replaced.append(item)
        return replaced

    def delete(self, live: dict[str, Any]) -> bool:
        """Delete ``live`` unless it changed since it was read; True when it went."""
        body = {"preconditions": {"resourceVersion": o.meta(live)["resourceVersion"]},
                "propagationPolicy": "Background"}
        try:
            self.kube.request("DELETE", object_path(live["kind"], self.kube.namespace, o.name(live)), body=body)
        except KubeStatus as exc:
            if exc.code in (404, 409):  # gone already / rewritten meanwhile: its writer decides
                return False
            raise
        return True

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update ``obj`` unless a newer generation holds it (compare-and-swap)."""
        kind, name = o.key(obj)
        for _ in range(_ATTEMPTS):
            live = self.kube.get(kind, name)
            if live is None:
                created = self._create(obj)
                if created is None:
                    continue  # someone else created it: read and decide again
                return self._adopt(created, obj)
            self.check_project(live)
            theirs = Claim.from_labels(o.annotations(live))
            if theirs.generation >= self.generation:
                if theirs.generation == self.generation and _same(live, obj):
                    return live  # this very configuration (an equal `dsl up` got here first)
                raise _newer(theirs, self.generation, False)
            applied = self._apply(obj, o.meta(live)["resourceVersion"])
            if applied is not None:
                return applied
        raise EngineError(f"could not write {kind} {name}: other writers kept changing it",
                          hint="run `dsl up` again")

    # ---- the API calls ------------------------------------------------------------------

    def _create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        path = collection_path(obj["kind"], self.kube.namespace)
        waits = retry_delays(_SERVICE_ACCOUNT_WAIT, first=0.1)
        while True:
            try:
                return self.kube.request("POST", path, query={"fieldManager": FIELD_MANAGER}, body=obj)
            except KubeStatus as exc:
                if exc.code == 409 and exc.reason == "AlreadyExists":
                    return None
                if exc.code == 404 and exc.details.get("kind") == "namespaces":
                    raise UsageError(f"namespace {self.kube.namespace} does not exist",
                                     hint=f"create it (`kubectl create namespace {self.kube.namespace}`) "
                                          "or pick another with -n") from exc
                if exc.code == 403 and 'serviceaccount "default" not found' in exc.message:
                    delay = next(waits, None)  # a fresh namespace: its controller adds it shortly
                    if delay is not None:
                        time.sleep(delay)
                        continue
                raise

    def _adopt(self, created: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        """Make field manager ``envdsl`` own ``obj`` as an applier (not as the creator), so our
        later applies of changed values do not conflict with our own creation.

        Others may write the object in between (a PV binder annotates a new claim): the apply
        is retried on the object as it is then, as long as it is still this generation's."""
        live = created
        for _ in range(_ATTEMPTS):
            applied = self._apply(obj, o.meta(live)["resourceVersion"])
            if applied is not None:
                return self._drop_creator_entry(applied) or applied
            live = self.kube.get(*o.key(obj))
            if live is None or o.generation(live) != self.generation:
                return live or created  # deleted, or a newer writer's now: whoever reads next decides
        return live

    def _drop_creator_entry(self, live: dict[str, Any]) -> dict[str, Any] | None:
        """``live`` without the managedFields entry of our own POST (``envdsl``, Update); None
        when there is none or the object changed meanwhile."""
        entries = o.meta(live).get("managedFields") or []
        kept = [e for e in entries if not (e.get("manager") == FIELD_MANAGER and e.get("operation") == "Update")]
        if len(kept) == len(entries):
            return None
        # an empty list would mean "unchanged" to the server; one empty entry clears them
        patch = {"metadata": {"resourceVersion": o.meta(live)["resourceVersion"], "managedFields": kept or [{}]}}
        try:
            return self.kube.request("PATCH", object_path(live["kind"], self.kube.namespace, o.name(live)),
                                     query={"fieldManager": FIELD_MANAGER}, body=patch, content_type=MERGE_PATCH)
        except KubeStatus as exc:
            if exc.code in (404, 409):
                return None
            raise

    def _apply(self, obj: dict[str, Any], resource_version: str) -> dict[str, Any] | None:
        """Server-side apply of ``obj`` (the compiler's YAML bytes) if the object is still at
        ``resource_version``; None when it is not (409: read and decide again).

        Raises:
            EngineError: another field manager owns a field we set (never forced).
        """
        meta = {**obj["metadata"], "resourceVersion": resource_version}
        body = dump_yaml({**obj, "metadata": meta})
        try:
            return self.kube.request("PATCH", object_path(obj["kind"], self.kube.namespace, o.name(obj)),
                                     query={"fieldManager": FIELD_MANAGER}, body=body, content_type=APPLY_PATCH)
        except KubeStatus as exc:
            if exc.code == 409 and any(c.get("reason") == "FieldManagerConflict" for c in exc.causes):
                if all(_our_creation(c) for c in exc.causes):
                    # only with our own POST's entry (an adoption that did not finish): drop it and
                    # let the caller read and apply again; no other manager's field is touched
                    live = self.kube.get(obj["kind"], o.name(obj))
                    if live is not None:
                        self._drop_creator_entry(live)
                    return None
                raise _field_conflict(obj, exc) from exc
            if exc.code in (404, 409):
                return None
            raise


def _our_creation(cause: dict[str, str]) -> bool:
    """A conflict with field manager ``envdsl``'s Update entry, which only our POST makes."""
    return cause.get("message", "").startswith(f'conflict with "{FIELD_MANAGER}" using ')


def _same(live: dict[str, Any], obj: dict[str, Any]) -> bool:
    mine = o.annotations(obj)
    return all(o.annotations(live).get(k) == mine.get(k) for k in (o.CONTENT_HASH, "envdsl/owner", "envdsl/created"))


def _newer(claim: Claim, ours: int, same_config: bool) -> RunConflict:
    if claim.generation == ours:
        return RunConflict(f"generation {ours} is being applied right now by another `dsl up` ({claim.describe()})",
                           hint="wait for it to finish, or run `dsl up` again to apply yours as the next generation")
    return RunConflict(f"a newer configuration is already applied ({claim.describe()}); not applying generation {ours}",
                       hint="run `dsl up` again to apply this build file as the next generation")


def _field_conflict(obj: dict[str, Any], exc: KubeStatus) -> EngineError:
    fields = [f"{c.get('field', '?')} ({c.get('message', '').removeprefix('conflict with ')})" for c in exc.causes
              if c.get("reason") == "FieldManagerConflict"]
    return EngineError(f"cannot apply {obj['kind']} {o.name(obj)}: another field manager owns "
                       f"{', '.join(fields)}; not forcing it",
                       hint="their change stays; undo it (or remove their ownership of those fields) and run "
                            "`dsl up` again, or change the build file to agree")


def runtime_secrets(request: UpRequest) -> list[dict[str, Any]]:
    """The Secrets ``up`` makes beside the compiled objects, from the user's machine: the SSH
    host key (the compiler's ``--host-key-secret``) and the Jupyter token. Named and shaped after
    what the compiled Pod references, labelled and annotated like the compiled objects."""
    workload = next(obj for obj in request.spec if obj["kind"] in o.WORKLOAD_KINDS)
    spec = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    first = request.spec[0]
    metadata = {k: v for k, v in first["metadata"].items() if k in ("labels", "namespace")}
    notes = {k: v for k, v in o.annotations(first).items() if k != o.CONTENT_HASH}
    secrets = []
    host_key = next((v["secret"]["secretName"] for v in spec.get("volumes") or () if v["name"] == "host-key"), None)
    key_file = request.values.get("DSL_HOST_KEY_FILE")
    if host_key and key_file:
        try:
            with open(key_file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read the environment's host key: {exc.strerror or exc}") from exc
        secrets.append(_secret(host_key, metadata, notes, {HOST_KEY_SECRET_KEY: data}))
    token = request.values.get("DSL_JUPYTER_TOKEN")
    for container in spec.get("containers") or ():
        for var in container.get("env") or ():
            ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
            if var.get("name") == "DSL_JUPYTER_TOKEN" and ref and token:
                secrets.append(_secret(ref["name"], metadata, notes, {ref["key"]: token.encode()}))
    return secrets


def _secret(name: str, metadata: dict[str, Any], notes: dict[str, str], data: dict[str, bytes]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {**metadata, "name": name, "annotations": notes},
            "type": "Opaque", "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
