"""What a real server validates on create and update, for the kinds and fields we rely on.

Texts follow ``pkg/apis/core/validation`` and ``pkg/apis/apps/validation`` of Kubernetes
1.32 (field path, error type, detail), since kubectl prints them and people act on them.
Long Forbidden messages of the real server end with a Go ``cmp.Diff`` of the internal spec
after a newline; the fake keeps the first line exact and renders the diff its own way.

Modelled: names (DNS-1123 subdomain, DNS-1123 label for Namespace, DNS-1035 label for
Service), label and annotation keys and values, required fields of Pods, Services, PVCs and
the apps workloads, the update rules of Pod (``ValidatePodUpdate``), PVC, StatefulSet,
Deployment selector, Service cluster IP, immutable Secret/ConfigMap, and metadata identity.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .status import Cause, forbidden_field, invalid_field, required_field

Obj = dict[str, Any]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 f"validation is '{_SUBDOMAIN}')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{_LABEL}')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               f"regex used for validation is '{_DNS1035}')")
_NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                  f"an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{_QUALIFIED_NAME}')")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    f"'12345', regex used for validation is '{_LABEL_VALUE}')")

POD_UPDATABLE = ("`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
                 "`spec.tolerations` (only additions to existing tolerations)",
                 "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
POD_UPDATE_FORBIDDEN = "pod updates may not change fields other than " + ",".join(POD_UPDATABLE)
STS_UPDATE_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
PVC_UPDATE_FORBIDDEN = "spec is immutable after creation except resources.requests for bound claims"
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _full(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def name_causes(kind: str, name: Any, path: str = "metadata.name") -> list[Cause]:
    if kind == "Service":
        pattern, message, limit = _DNS1035, DNS1035_MSG, 63
    elif kind == "Namespace":
        pattern, message, limit = _LABEL, LABEL_MSG, 63
    else:
        pattern, message, limit = _SUBDOMAIN, SUBDOMAIN_MSG, 253
    causes = []
    if isinstance(name, str) and len(name) > limit:
        causes.append(invalid_field(path, name, f"must be no more than {limit} characters"))
    if not _full(pattern, name):
        causes.append(invalid_field(path, name, message))
    return causes


def _key_causes(key: str, path: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if prefix and (len(prefix) > 253 or not _full(_SUBDOMAIN, prefix)):
        causes.append(invalid_field(path, key, "prefix part " + SUBDOMAIN_MSG))
    if not name or len(name) > 63 or not _full(_QUALIFIED_NAME, name):
        causes.append(invalid_field(path, key, _NAME_PART_MSG))
    return causes


def metadata_causes(obj: Obj) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes = name_causes(obj.get("kind", ""), meta.get("name"))
    for key, value in (meta.get("labels") or {}).items():
        causes += _key_causes(key, "metadata.labels")
        if not isinstance(value, str) or len(value) > 63 or not _full(_LABEL_VALUE, value):
            causes.append(invalid_field("metadata.labels", value, _LABEL_VALUE_MSG))
    for key in meta.get("annotations") or {}:
        causes += _key_causes(key, "metadata.annotations")
    return causes


def _pod_spec_causes(spec: Obj, path: str, claim_templates: tuple[str, ...] = ()) -> list[Cause]:
    causes: list[Cause] = []
    volumes = [v.get("name") for v in spec.get("volumes") or ()]
    for i, name in enumerate(volumes):
        if not _full(_LABEL, name):
            causes.append(invalid_field(f"{path}.volumes[{i}].name", name, LABEL_MSG))
        if name in volumes[:i]:
            causes.append(Cause("FieldValueDuplicate", f"{path}.volumes[{i}].name", f"Duplicate value: {json.dumps(name)}"))
    if not spec.get("containers"):
        causes.append(required_field(f"{path}.containers"))
    for key in ("initContainers", "containers"):
        seen: list[Any] = []
        for i, container in enumerate(spec.get(key) or ()):
            where = f"{path}.{key}[{i}]"
            name = container.get("name")
            if not name:
                causes.append(required_field(f"{where}.name"))
            elif not _full(_LABEL, name):
                causes.append(invalid_field(f"{where}.name", name, LABEL_MSG))
            elif name in seen:
                causes.append(Cause("FieldValueDuplicate", f"{where}.name", f"Duplicate value: {json.dumps(name)}"))
            seen.append(name)
            if not container.get("image"):
                causes.append(required_field(f"{where}.image"))
            for j, env in enumerate(container.get("env") or ()):
                if not _full(_ENV_NAME, env.get("name")):
                    causes.append(invalid_field(f"{where}.env[{j}].name", env.get("name"),
                                                "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"))
            for j, port in enumerate(container.get("ports") or ()):
                number = port.get("containerPort")
                if not isinstance(number, int) or not 0 < number < 65536:
                    causes.append(invalid_field(f"{where}.ports[{j}].containerPort", number, "must be between 1 and 65535, inclusive"))
            for j, mount in enumerate(container.get("volumeMounts") or ()):
                if mount.get("name") not in volumes and mount.get("name") not in claim_templates:
                    causes.append(Cause("FieldValueNotFound", f"{where}.volumeMounts[{j}].name", f"Not found: {json.dumps(mount.get('name'))}"))
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(Cause("FieldValueNotSupported", f"{path}.restartPolicy",
                            f'Unsupported value: {json.dumps(policy)}: supported values: "Always", "OnFailure", "Never"'))
    return causes


def _selector_causes(spec: Obj) -> list[Cause]:
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not spec.get("selector"):
        return [required_field("spec.selector")]
    if not all(labels.get(k) == v for k, v in selector.items()):
        return [invalid_field("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")]
    return []


def create_causes(obj: Obj) -> list[Cause]:
    """Everything wrong with a new object, in the order the real validators report it."""
    causes = metadata_causes(obj)
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        causes += _pod_spec_causes(spec, "spec")
    elif kind in ("StatefulSet", "Deployment"):
        causes += _selector_causes(spec)
        template = spec.get("template") or {}
        # a StatefulSet's containers may mount its volumeClaimTemplates by name
        claims = tuple((c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or ())
        causes += _pod_spec_causes(template.get("spec") or {}, "spec.template.spec", claims)
        if kind == "Deployment" and (spec.get("strategy") or {}).get("type") == "Recreate" \
                and "rollingUpdate" in spec["strategy"]:
            causes.append(forbidden_field("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
        if kind == "StatefulSet" and (template.get("spec") or {}).get("restartPolicy", "Always") != "Always":
            causes.append(Cause("FieldValueNotSupported", "spec.template.spec.restartPolicy",
                                f'Unsupported value: {json.dumps(template["spec"]["restartPolicy"])}: supported values: "Always"'))
    elif kind == "Service":
        ports = spec.get("ports") or []
        if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
            causes.append(required_field("spec.ports"))
        for i, port in enumerate(ports):
            if len(ports) > 1 and not port.get("name"):
                causes.append(required_field(f"spec.ports[{i}].name"))
    elif kind == "PersistentVolumeClaim":
        if not spec.get("accessModes"):
            causes.append(required_field("spec.accessModes", "at least 1 access mode is required"))
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            causes.append(required_field("spec.resources[storage]"))
    return causes


# --- updates -------------------------------------------------------------------------------

def _normal(value: Any) -> Any:
    """Semantic equality as apimachinery's: nil and empty slices, maps and strings are equal."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def spec_diff(go_type: str, old: Obj, new: Obj) -> str:
    """A short rendering of what changed (the real message carries Go's cmp.Diff here)."""
    lines = [f"  {go_type}{{"]
    for key in sorted(old.keys() | new.keys()):
        if _normal(old.get(key)) != _normal(new.get(key)):
            field = key[0].upper() + key[1:]
            if key in old:
                lines.append(f"-\t{field}: {json.dumps(old[key], sort_keys=True)},")
            if key in new:
                lines.append(f"+\t{field}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def _pod_update_causes(old: Obj, new: Obj) -> list[Cause]:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    old_containers, new_containers = old_spec.get("containers") or [], new_spec.get("containers") or []
    if len(old_containers) != len(new_containers):
        return [forbidden_field("spec.containers", "pod updates may not add or remove containers")]
    causes: list[Cause] = []
    for i, container in enumerate(new_containers):
        if not container.get("image"):
            causes.append(required_field(f"spec.containers[{i}].image"))
    munged = json.loads(json.dumps(new_spec))
    for key in ("containers", "initContainers"):
        olds = old_spec.get(key) or []
        for i, container in enumerate(munged.get(key) or []):
            if i < len(olds):
                container["image"] = olds[i].get("image")
    old_deadline, new_deadline = old_spec.get("activeDeadlineSeconds"), new_spec.get("activeDeadlineSeconds")
    if old_deadline is not None and new_deadline is None:
        causes.append(invalid_field("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    elif old_deadline is not None and new_deadline > old_deadline:
        causes.append(invalid_field("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
    munged.pop("activeDeadlineSeconds", None)
    if old_deadline is not None:
        munged["activeDeadlineSeconds"] = old_deadline
    old_tolerations, new_tolerations = old_spec.get("tolerations") or [], new_spec.get("tolerations") or []
    for toleration in old_tolerations:
        same = [t for t in new_tolerations if {k: v for k, v in t.items() if k != "tolerationSeconds"}
                == {k: v for k, v in toleration.items() if k != "tolerationSeconds"}]
        if not same:
            causes.append(forbidden_field("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
            break
    munged["tolerations"] = old_tolerations
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if old_grace is not None and old_grace < 0 and new_spec.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if _normal(munged) != _normal(old_spec):
        detail = POD_UPDATE_FORBIDDEN + "\n" + spec_diff("core.PodSpec", old_spec, munged)
        causes.append(forbidden_field("spec", detail))
    return causes


def _pvc_update_causes(old: Obj, new: Obj) -> list[Cause]:
    old_spec, new_spec = json.loads(json.dumps(old.get("spec") or {})), json.loads(json.dumps(new.get("spec") or {}))
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")
    bound = (new.get("status") or {}).get("phase") == "Bound"
    old_size = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
    new_size = ((new_spec.get("resources") or {}).get("requests") or {}).get("storage")
    if bound and new_size is not None:
        new_spec["resources"]["requests"]["storage"] = old_size
    causes = []
    if _normal(new_spec) != _normal(old_spec):
        causes.append(forbidden_field("spec", PVC_UPDATE_FORBIDDEN + "\n" + spec_diff("core.PersistentVolumeClaimSpec", old_spec, new_spec)))
    if bound and new_size is not None and parse_quantity(new_size) < parse_quantity(old_size):
        causes.append(forbidden_field("spec.resources.requests.storage", "field can not be less than previous value"))
    return causes


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 10**-3, "": 1}


def parse_quantity(value: Any) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value or "0"))
    if not match or match[2] not in _SUFFIXES:
        return 0.0
    return float(match[1]) * _SUFFIXES[match[2]]


def update_causes(old: Obj, new: Obj) -> list[Cause]:
    """Why ``new`` may not replace ``old`` (empty when it may)."""
    causes = []
    old_meta, new_meta = old["metadata"], new["metadata"]
    if new_meta.get("uid") != old_meta.get("uid"):
        causes.append(invalid_field("metadata.uid", new_meta.get("uid"), "field is immutable"))
    causes += metadata_causes(new)
    kind = new.get("kind")
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind == "Pod":
        causes += _pod_update_causes(old, new)
    elif kind == "PersistentVolumeClaim":
        causes += _pvc_update_causes(old, new)
    elif kind == "StatefulSet":
        rest = lambda spec: _normal({k: v for k, v in spec.items() if k not in _STS_MUTABLE})
        if rest(old_spec) != rest(new_spec):
            causes.append(forbidden_field("spec", STS_UPDATE_FORBIDDEN))
        claims = tuple((c.get("metadata") or {}).get("name") for c in new_spec.get("volumeClaimTemplates") or ())
        causes += _pod_spec_causes((new_spec.get("template") or {}).get("spec") or {}, "spec.template.spec", claims)
    elif kind == "Deployment":
        if _normal(old_spec.get("selector")) != _normal(new_spec.get("selector")):
            causes.append(invalid_field("spec.selector", new_spec.get("selector"), "field is immutable"))
        causes += _pod_spec_causes((new_spec.get("template") or {}).get("spec") or {}, "spec.template.spec")
    elif kind == "Service":
        if old_spec.get("clusterIP") and new_spec.get("clusterIP") != old_spec["clusterIP"] and old_spec.get("type") != "ExternalName":
            causes.append(invalid_field("spec.clusterIPs[0]", new_spec.get("clusterIPs"), "may not change once set"))
    elif kind in ("Secret", "ConfigMap") and old.get("immutable"):
        if not new.get("immutable"):
            causes.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
        for key in ("data", "binaryData", "stringData"):
            if _normal(old.get(key)) != _normal(new.get(key)):
                causes.append(forbidden_field(key, "field is immutable when `immutable` is set"))
    if kind == "Secret" and old.get("type") != new.get("type"):
        causes.append(invalid_field("type", new.get("type"), "field is immutable"))
    return causes
