"""The write path of every resource: create, update, patch (all four types) and delete.

One pipeline, in the real server's order: decode and check identity, drop (or refuse)
undeclared fields, keep what the client may not change (uid, creation time, status on the
main resource, allocated cluster IPs), fill defaults, record field managers, run admission
for new Pods, validate, check ``resourceVersion`` preconditions, and write at the next
revision (or, with ``dryRun=All``, do all of that and write nothing). A write that changes
nothing is not written, so the ``resourceVersion`` stays.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from typing import Any

import yaml

from . import defaults, managed, patch, schema, strict, validation
from .resources import ResourceType, by_kind
from .status import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    required_field,
)
from .store import Store


def _atomic(method: Any) -> Any:
    """Run a write holding the store's lock from its read of the old object to its write, as
    etcd's compare-and-swap makes a real write atomic: a status written meanwhile by a
    kubelet or a controller is never overwritten with the copy read before it."""
    import functools

    @functools.wraps(method)
    def locked(self: Writer, *args: Any, **kwargs: Any) -> Any:
        with self.store.changed:
            return method(self, *args, **kwargs)

    return locked

Obj = dict[str, Any]
GENERATION_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "ReplicationController", "Job",
                    "CronJob", "Ingress"}
NAMESPACE = by_kind("Namespace")
SERVICE_ACCOUNT = by_kind("ServiceAccount")


@dataclasses.dataclass
class WriteOptions:
    dry_run: bool
    field_manager: str
    field_validation: str  # Strict | Warn | Ignore
    force: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)


def options_from(query: dict[str, str], user_agent: str, apply: bool = False) -> WriteOptions:
    dry_run = query.get("dryRun", "")
    if dry_run not in ("", "All"):
        raise invalid_options(f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
    validation_mode = query.get("fieldValidation", "Warn") or "Warn"
    if validation_mode not in ("Strict", "Warn", "Ignore"):
        raise bad_request(f'fieldValidation: Unsupported value: "{validation_mode}": supported values: "Ignore", "Strict", "Warn"')
    manager = query.get("fieldManager", "")
    if apply and not manager:
        raise invalid_options("fieldManager: Required value: is required for apply patch", kind="PatchOptions")
    if not manager:
        manager = user_agent.split("/")[0][:128]
    if len(manager) > 128:
        raise invalid_options('fieldManager: Too long: may not be more than 128 bytes', kind="PatchOptions")
    force = query.get("force", "").lower() == "true"
    if force and not apply:
        raise invalid_options("force: Forbidden: may not be specified for non-apply patch", kind="PatchOptions")
    return WriteOptions(dry_run == "All", manager, validation_mode, force)


def invalid_options(detail: str, kind: str = "CreateOptions") -> ApiError:
    return ApiError(422, "Invalid", f'{kind}.meta.k8s.io "" is invalid: {detail}',
                    {"group": "meta.k8s.io", "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": detail.split(": ", 1)[-1], "field": detail.split(":")[0]}]})


def decode_body(body: bytes, content_type: str) -> Any:
    """A request body as JSON data. Protobuf, which a real server also takes (and kubectl's
    imperative ``create namespace|configmap|secret`` sends), is refused with 415: the fake
    cannot decode it without the generated .proto schemas; ``create -f`` and ``apply`` send JSON."""
    if content_type == "application/vnd.kubernetes.protobuf":
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                       "accepted media types include: application/json, application/yaml (this fake API server does not decode protobuf)")
    if not body:
        raise bad_request("the request body is empty")
    try:
        if content_type in (patch.APPLY_PATCH, "application/yaml"):
            return yaml.safe_load(body)
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc


class Writer:
    """The write operations over one store (the fake's registry + admission chain)."""

    def __init__(self, store: Store, allocator: defaults.Allocator, auto_service_accounts: bool) -> None:
        self.store = store
        self.allocator = allocator
        self.auto_service_accounts = auto_service_accounts
        self.graceful_pods = False  # set when a kubelet runs the Pods (FakeKube(kubelet=...))

    # --- shared steps ---------------------------------------------------------------------

    def _check_identity(self, rtype: ResourceType, obj: Any, namespace: str | None, name: str | None) -> None:
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type Object)")
        if not obj.get("kind"):
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)}'")
        if obj.get("apiVersion") != rtype.api_version or obj.get("kind") != rtype.kind:
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({rtype.api_version})"
                              if obj.get("apiVersion") != rtype.api_version else
                              f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({rtype.kind})")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata: expected an object")
        if name is not None and meta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def _unknown_fields(self, rtype: ResourceType, obj: Obj, options: WriteOptions) -> Obj:
        node = schema.kind_node(rtype.group, rtype.version, rtype.kind)
        kept, unknown = strict.prune_unknown(obj, node)
        if unknown and options.field_validation == "Strict":
            raise bad_request(strict.strict_message(unknown))
        if unknown and options.field_validation == "Warn":
            options.warnings += [f'unknown field "{p}"' for p in unknown]
        return kept

    def _namespace_ready(self, rtype: ResourceType, obj: Obj) -> None:
        if not rtype.namespaced:
            return
        namespace = obj["metadata"]["namespace"]
        found = self.store.get(NAMESPACE, None, namespace)
        if found is None:
            raise not_found(NAMESPACE, namespace)
        if found.get("status", {}).get("phase") == "Terminating":
            raise forbidden(rtype, obj["metadata"]["name"], f"unable to create new content in namespace {namespace} because it is being terminated")

    @staticmethod
    def _secret_string_data(obj: Obj) -> None:
        import base64

        if obj.get("kind") == "Secret" and isinstance(obj.get("stringData"), dict):
            data = obj.setdefault("data", {})
            for key, value in obj.pop("stringData").items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def _admit_claim(self, claim: Obj) -> None:
        """DefaultStorageClass admission: a claim without ``storageClassName`` gets the default
        class, when one is marked ``storageclass.kubernetes.io/is-default-class``."""
        if claim.get("kind") != "PersistentVolumeClaim" or "storageClassName" in (claim.get("spec") or {}):
            return
        for candidate in self.store.list(by_kind("StorageClass", "storage.k8s.io"), None)[0]:
            if (candidate["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
                claim.setdefault("spec", {})["storageClassName"] = candidate["metadata"]["name"]
                return

    def _admit_pod(self, rtype: ResourceType, pod: Obj) -> None:
        if pod.get("kind") != "Pod":
            return
        namespace = pod["metadata"]["namespace"]
        account_name = pod["spec"].get("serviceAccountName") or pod["spec"].get("serviceAccount") or "default"
        account = self.store.get(SERVICE_ACCOUNT, namespace, account_name)
        if account is None:
            raise forbidden(rtype, pod["metadata"]["name"],
                            f'error looking up service account {namespace}/{account_name}: serviceaccount "{account_name}" not found')
        pod["spec"]["serviceAccountName"] = account_name
        defaults.admit_new_pod(pod, account)

    @staticmethod
    def _validate(rtype: ResourceType, obj: Obj, causes: list[Cause]) -> None:
        if causes:
            raise invalid(rtype, obj["metadata"].get("name", ""), causes)

    # --- create ---------------------------------------------------------------------------

    @_atomic
    def create(self, rtype: ResourceType, namespace: str | None, obj: Any, options: WriteOptions,
               applied_fields: list[Obj] | None = None) -> Obj:
        self._check_identity(rtype, obj, namespace, None)
        obj = self._unknown_fields(rtype, obj, options)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise invalid(rtype, "", [required_field("metadata.name", "name or generateName is required")])
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "Internal error occurred: resourceVersion should not be set on objects to be created")
        self._namespace_ready(rtype, obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = managed.now()
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        if rtype.kind in GENERATION_KINDS:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        self._secret_string_data(obj)
        obj.pop("status", None)
        defaults.apply_defaults(obj, self.allocator)
        defaults.initial_status(obj)
        node = schema.kind_node(rtype.group, rtype.version, rtype.kind)
        if applied_fields is not None:
            meta["managedFields"] = applied_fields
        else:
            meta["managedFields"] = managed.record_update(None, obj, node, options.field_manager, meta.get("managedFields"))
        if not meta["managedFields"]:
            meta.pop("managedFields")
        self._admit_pod(rtype, obj)
        self._admit_claim(obj)
        self._validate(rtype, obj, validation.create_causes(obj))
        if self.store.get(rtype, namespace, meta["name"]) is not None:
            raise already_exists(rtype, meta["name"])
        if options.dry_run:
            return obj
        stored = self.store.write(rtype, obj, "ADDED")
        if rtype.kind == "Namespace" and self.auto_service_accounts:
            self.ensure_default_service_account(meta["name"])
        return stored

    def ensure_default_service_account(self, namespace: str) -> None:
        """What the service account controller does for each namespace (synchronously here)."""
        if self.store.get(SERVICE_ACCOUNT, namespace, "default") is None:
            account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}
            self.create(SERVICE_ACCOUNT, namespace, account, WriteOptions(False, "kube-controller-manager", "Strict"))

    # --- update, patch --------------------------------------------------------------------

    def _finish_update(self, rtype: ResourceType, old: Obj, new: Obj, options: WriteOptions, applied: bool) -> Obj:
        meta, old_meta = new["metadata"], old["metadata"]
        if new["metadata"].get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise conflict(rtype, old_meta["name"])
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if not meta.get("uid"):
            meta["uid"] = old_meta["uid"]
        meta["creationTimestamp"] = old_meta["creationTimestamp"]
        for key in ("generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
            if key in old_meta:
                meta[key] = old_meta[key]
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
        self._secret_string_data(new)
        if new.get("kind") == "Service":
            self._keep_allocations(old, new)
        defaults.apply_defaults(new, self.allocator)
        if new.get("kind") == "Pod":
            defaults.admit_pod_update(old, new)
        node = schema.kind_node(rtype.group, rtype.version, rtype.kind)
        if not applied:
            given = meta.get("managedFields")
            base = given if managed.decode(given) and any(e.fields or e.manager for e in managed.decode(given)) else old_meta.get("managedFields")
            if given and all(not e.manager and not e.fields for e in managed.decode(given)):
                base = []  # `[{}]` clears managedFields, as documented
            meta["managedFields"] = managed.record_update(old, new, node, options.field_manager, base)
            if not meta["managedFields"]:
                meta.pop("managedFields")
        if rtype.kind in GENERATION_KINDS and validation._normal(old.get("spec")) != validation._normal(new.get("spec")):
            meta["generation"] = old_meta.get("generation", 1) + 1
        self._validate(rtype, new, validation.update_causes(old, new))
        if new == old or options.dry_run:
            return new
        return self.store.write(rtype, new, "MODIFIED")

    @staticmethod
    def _keep_allocations(old: Obj, new: Obj) -> None:
        """Service PrepareForUpdate: unset cluster IPs and node ports keep their allocated values."""
        old_spec, spec = old.get("spec") or {}, new.setdefault("spec", {})
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if not spec.get(key) and key in old_spec and spec.get("type", "ClusterIP") != "ExternalName":
                spec[key] = copy.deepcopy(old_spec[key])
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or ()}
        for port in spec.get("ports") or ():
            if not port.get("nodePort") and old_ports.get((port.get("port"), port.get("protocol", "TCP"))):
                port["nodePort"] = old_ports[(port.get("port"), port.get("protocol", "TCP"))]

    @_atomic
    def update(self, rtype: ResourceType, namespace: str | None, name: str, obj: Any, options: WriteOptions) -> Obj:
        self._check_identity(rtype, obj, namespace, name)
        obj["metadata"]["name"] = name
        old = self.store.get(rtype, namespace, name)
        if old is None:
            raise not_found(rtype, name)
        obj = self._unknown_fields(rtype, obj, options)
        return self._finish_update(rtype, old, obj, options, applied=False)

    @_atomic
    def patch(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str, body: bytes,
              options: WriteOptions) -> tuple[Obj, bool]:
        """Apply a patch; returns the object and whether it was created (apply only)."""
        if content_type not in (patch.JSON_PATCH, patch.MERGE_PATCH, patch.STRATEGIC_PATCH, patch.APPLY_PATCH):
            from .status import unsupported_media_type

            raise unsupported_media_type(content_type)
        document = decode_body(body, content_type)
        old = self.store.get(rtype, namespace, name)
        if content_type == patch.APPLY_PATCH:
            return self._apply(rtype, namespace, name, document, old, options)
        if old is None:
            raise not_found(rtype, name)
        node = schema.kind_node(rtype.group, rtype.version, rtype.kind)
        if content_type == patch.JSON_PATCH:
            new = patch.json_patch(old, document)
        elif content_type == patch.MERGE_PATCH:
            new = patch.merge_patch(old, document)
        else:
            new = patch.strategic_merge_patch(old, document, node)
        self._check_identity(rtype, new, namespace, name)
        new = self._unknown_fields(rtype, new, options)
        return self._finish_update(rtype, old, new, options, applied=False), False

    def _apply(self, rtype: ResourceType, namespace: str | None, name: str, applied: Any, old: Obj | None,
               options: WriteOptions) -> tuple[Obj, bool]:
        if not isinstance(applied, dict):
            raise bad_request("error decoding YAML: the apply patch must be an object")
        for key in ("apiVersion", "kind"):
            if not applied.get(key):
                raise bad_request(f"{key} must be set" if key == "kind" else "invalid object type: /, Kind=" + str(applied.get("kind", "")))
        self._check_identity(rtype, applied, namespace, name)
        meta = applied["metadata"]
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        meta["name"] = name
        node = schema.kind_node(rtype.group, rtype.version, rtype.kind)
        _, unknown = strict.prune_unknown(applied, node)
        if unknown:
            gvk = f"{rtype.api_version if rtype.group else '/' + rtype.version}, Kind={rtype.kind}"
            raise bad_request(strict.apply_message(gvk, unknown))
        if old is not None and meta.get("resourceVersion") not in (None, "", old["metadata"]["resourceVersion"]):
            raise conflict(rtype, name)
        if old is None:
            if meta.get("resourceVersion"):
                raise not_found(rtype, name)
            merged = managed.server_side_apply(None, applied, node, options.field_manager, options.force)
            fields = merged["metadata"].pop("managedFields")
            return self.create(rtype, namespace, merged, options, applied_fields=fields), True
        merged = managed.server_side_apply(old, applied, node, options.field_manager, options.force)
        merged["metadata"].pop("resourceVersion", None)
        return self._finish_update(rtype, old, merged, options, applied=True), False

    # --- delete ---------------------------------------------------------------------------

    @_atomic
    def delete(self, rtype: ResourceType, namespace: str | None, name: str, delete_options: Obj, dry_run: bool) -> Obj:
        old = self.store.get(rtype, namespace, name)
        if old is None:
            raise not_found(rtype, name)
        preconditions = delete_options.get("preconditions") or {}
        meta = old["metadata"]
        if preconditions.get("uid") not in (None, meta["uid"]):
            raise conflict(rtype, name, f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta['uid']}")
        if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise conflict(rtype, name, f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, ResourceVersion in object meta: {meta['resourceVersion']}")
        if dry_run:
            return old
        if rtype.kind == "Pod" and self.graceful_pods and old["spec"].get("nodeName"):
            graceful = self._graceful_pod_delete(old, delete_options)
            if graceful is not None:
                return graceful
        if rtype.kind == "Namespace":
            self._empty_namespace(name)
        return self.store.remove(rtype, namespace, name)

    def _graceful_pod_delete(self, pod: Obj, delete_options: Obj) -> Obj | None:
        """A bound Pod is marked (deletionTimestamp, deletionGracePeriodSeconds) and its kubelet
        removes it once the containers are stopped; a grace period of 0 deletes at once. A
        second delete may only shorten the period."""
        import datetime

        grace = delete_options.get("gracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        grace = int(grace)
        if grace <= 0:
            return None
        meta = pod["metadata"]
        if "deletionTimestamp" in meta and meta.get("deletionGracePeriodSeconds", grace) <= grace:
            return pod
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
        meta["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["deletionGracePeriodSeconds"] = grace
        return self.store.write(by_kind("Pod"), pod, "MODIFIED")

    def _empty_namespace(self, namespace: str) -> None:
        """The namespace controller's work, done at once: every object in it goes first."""
        from .resources import TYPES

        for rtype in TYPES:
            if rtype.namespaced:
                for obj in self.store.list(rtype, namespace)[0]:
                    self.store.remove(rtype, namespace, obj["metadata"]["name"])
