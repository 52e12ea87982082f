"""A Pod container as a Docker container-create body, with the kubelet's semantics.

- ``command`` replaces the image's ENTRYPOINT and drops its CMD; ``args`` alone keep the
  ENTRYPOINT and replace CMD (Docker's merge does the same once Entrypoint is set);
  ``$(VAR)`` in command, args and env values expands from the container's env, ``$$`` escapes;
- env: ``value``, ``valueFrom.secretKeyRef`` / ``configMapKeyRef`` (a missing object or key
  is a ``CreateContainerConfigError`` with the kubelet's message unless ``optional``),
  ``fieldRef`` for the common Pod fields, ``envFrom``; the image's env stays underneath;
- the user: ``runAsUser``/``runAsGroup`` (container over Pod), ``fsGroup`` and
  ``supplementalGroups`` as extra groups; ``runAsNonRoot`` refuses an image user that is root;
- capabilities, ``allowPrivilegeEscalation: false`` (no-new-privileges), privileged,
  read-only root filesystem, the seccomp profile (RuntimeDefault = Docker's default);
- the Pod's network (and hostname) comes from its sandbox container.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """The container cannot be configured yet (``CreateContainerConfigError``)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is ``$``."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(one, text)


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": status.get("podIP", ""), "status.hostIP": status.get("hostIP", "")}
    if path in simple:
        return simple[path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise ConfigError(f"unsupported fieldPath: {path}")


def resolve_env(pod: Obj, container: Obj, lookup: Callable[[str, str], Obj | None]) -> list[tuple[str, str]]:
    """The container's environment, in order, as the kubelet makes it.

    ``lookup(kind, name)`` reads a Secret or ConfigMap of the Pod's namespace (``None`` if absent)."""
    namespace = pod["metadata"].get("namespace", "default")
    values: dict[str, str] = {}

    def source(kind: str, ref: Obj, key: str | None) -> dict[str, str] | None:
        obj = lookup(kind, ref.get("name", ""))
        optional = bool(ref.get("optional"))
        label = "secret" if kind == "Secret" else "configmap"
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{label} "{ref.get("name", "")}" not found')
        data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()} if kind == "Secret" \
            else dict(obj.get("data") or {})
        if key is not None and key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{ref.get('name', '')}")
        return data

    for env_from in container.get("envFrom") or ():
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if field in env_from:
                for key, value in (source(kind, env_from[field], None) or {}).items():
                    values[env_from.get("prefix", "") + key] = value
    for var in container.get("env") or ():
        name, value_from = var["name"], var.get("valueFrom")
        if value_from is None:
            values[name] = expand(var.get("value", ""), values)
        elif "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
            kind, ref = ("Secret", value_from["secretKeyRef"]) if "secretKeyRef" in value_from \
                else ("ConfigMap", value_from["configMapKeyRef"])
            data = source(kind, ref, ref.get("key", ""))
            if data is not None:
                values[name] = data[ref["key"]]
        elif "fieldRef" in value_from:
            values[name] = _field(pod, value_from["fieldRef"]["fieldPath"])
        else:
            raise ConfigError(f"unsupported valueFrom for {name}: {sorted(value_from)}")
    return list(values.items())


def _security(pod: Obj, container: Obj) -> tuple[Obj, Obj]:
    return pod["spec"].get("securityContext") or {}, container.get("securityContext") or {}


def user_of(pod: Obj, container: Obj, image_user: str) -> str:
    """The Docker ``User`` (``uid[:gid]``), checking ``runAsNonRoot`` like the kubelet."""
    pod_sc, sc = _security(pod, container)
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    name = f'{pod["metadata"]["name"]}_{pod["metadata"].get("namespace", "")}({pod["metadata"].get("uid", "")})'
    if non_root:
        where = f'(pod: "{name}", container: {container["name"]})'
        if uid is not None and int(uid) == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        if uid is None:
            image_uid = image_user.split(":")[0]
            if image_uid in ("", "0", "root"):
                raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
            if not image_uid.isdigit():
                raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({image_uid}), "
                                  f"cannot verify user is non-root {where}")
    user = str(uid) if uid is not None else image_user.split(":")[0]
    if gid is not None:
        return f"{user or 0}:{gid}"
    return user if uid is not None else image_user


def host_config(pod: Obj, container: Obj, sandbox_id: str, binds: list[str], tmpfs: dict[str, str]) -> Obj:
    """The ``HostConfig`` part: namespaces of the sandbox, mounts, groups, security."""
    pod_sc, sc = _security(pod, container)
    groups = [str(g) for g in ([pod_sc["fsGroup"]] if "fsGroup" in pod_sc else []) + list(pod_sc.get("supplementalGroups") or ())]
    caps = sc.get("capabilities") or {}
    security_opt = []
    if sc.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        security_opt.append("seccomp=unconfined")
    config: Obj = {"NetworkMode": f"container:{sandbox_id}", "IpcMode": f"container:{sandbox_id}",
                   "Binds": binds, "Tmpfs": tmpfs, "GroupAdd": groups,
                   "CapAdd": list(caps.get("add") or ()), "CapDrop": list(caps.get("drop") or ()),
                   "SecurityOpt": security_opt, "Privileged": bool(sc.get("privileged")),
                   "ReadonlyRootfs": bool(sc.get("readOnlyRootFilesystem"))}
    return config


def create_body(pod: Obj, container: Obj, image: str, image_config: Obj, env: list[tuple[str, str]],
                labels: dict[str, str], host: Obj) -> Obj:
    """The body of ``POST /containers/create`` for one container of ``pod``."""
    env_map = dict(env)
    body: Obj = {"Image": image, "Env": [f"{k}={v}" for k, v in env], "Labels": labels, "HostConfig": host,
                 "User": user_of(pod, container, image_config.get("User") or ""),
                 "Tty": bool(container.get("tty")), "OpenStdin": bool(container.get("stdin")),
                 "StdinOnce": bool(container.get("stdinOnce"))}
    if container.get("command"):
        body["Entrypoint"] = [expand(a, env_map) for a in container["command"]]
        body["Cmd"] = [expand(a, env_map) for a in container.get("args") or ()]
    elif container.get("args"):
        body["Cmd"] = [expand(a, env_map) for a in container["args"]]
    if container.get("workingDir"):
        body["WorkingDir"] = container["workingDir"]
    return body
