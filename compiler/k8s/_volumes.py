"""Pod volumes and the PersistentVolumeClaims behind them.

Mapping (documented in docs/kubernetes.md):
- the dev project directory ``/home/envd/<env>``: a PVC ``<name>-workdir`` (emptyDir with
  ``--ephemeral-workdir``);
- ``runtime.mount()`` without a host path: a PVC; with ``data.envd(name)``: a PVC
  ``<name>-data-<dataset>``; with a host path: an emptyDir, since a developer's directory does
  not exist in a cluster (``runtime.kubernetes.mount`` at the same path makes it persistent);
- ``runtime.kubernetes.mount()``: a PVC with its size, storage class and access mode, replacing
  whatever another mount put at that path;
- ``/dev/shm``: a memory-backed emptyDir of ``config.shm_size``;
- the SSH host key Secret, read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler import _checks, _runtime
from compiler._names import child_name, dns_label, path_label, short_hash
from compiler.k8s._options import DEFAULT_PVC_SIZE, K8sOptions
from dsl import rules
from dsl.errors import CompileError
from dsl.ir import Environment, KubernetesMount, Span

HOST_KEY_DIR = "/etc/dsl/host-key"
HOST_KEY_FILE = "ssh_host_key"
ACCESS_MODES = rules.ACCESS_MODES


@dataclass(frozen=True, slots=True)
class Claim:
    """A PersistentVolumeClaim to emit."""

    name: str
    size: str
    access_mode: str = "ReadWriteOnce"
    storage_class: str = ""


@dataclass(frozen=True, slots=True)
class Volume:
    """One Pod volume and where the container mounts it."""

    name: str
    mount_path: str
    source: dict[str, Any]
    claim: Claim | None = None
    read_only: bool = False
    span: Span | None = field(default=None, compare=False)


def plan_volumes(env: Environment, base: str, opts: K8sOptions) -> tuple[Volume, ...]:
    """Every volume of the Pod, in a fixed order: workdir, mounts, shm, host key.

    Args:
        env: the environment.
        base: the DNS-safe base name of its objects.
        opts: compiler options (ephemeral workdir, host key Secret).

    Returns:
        The volumes; those with a ``claim`` need a PVC.

    Raises:
        CompileError: a relative mount path, a bad size or access mode, two mounts at a path.
    """
    by_path: dict[str, Volume] = {}
    if _runtime.is_dev(env):
        wd = _runtime.workdir(env)
        if opts.ephemeral_workdir:
            by_path[wd] = Volume("workdir", wd, {"emptyDir": {}})
        else:
            claim = Claim(child_name(base, "workdir"), DEFAULT_PVC_SIZE)
            by_path[wd] = Volume("workdir", wd, _pvc_source(claim), claim)
    generic: set[str] = set()
    for mount in env.runtime.mounts:
        path = _checks.absolute_path(mount.target, what="mount path", span=mount.span)
        if path in generic:
            raise CompileError(f"two mounts at {path}", span=mount.span, hint="mount each path once")
        generic.add(path)
        if mount.host_path is not None and mount.data_name is None:
            suffix = "scratch-" + path_label(path, span=mount.span)
            by_path[path] = Volume(dns_label(suffix), path, {"emptyDir": {}}, span=mount.span)
            continue
        if mount.data_name is not None:
            suffix = "data-" + dns_label(mount.data_name, span=mount.span, what="data set name")
        else:
            suffix = path_label(path, span=mount.span)
        claim = Claim(child_name(base, suffix), DEFAULT_PVC_SIZE)
        by_path[path] = Volume(dns_label(suffix), path, _pvc_source(claim), claim, span=mount.span)
    _add_kubernetes_mounts(by_path, env.runtime.kubernetes.mounts, base)
    volumes = _unique_names(list(by_path.values()))
    size = f"{_runtime.shm_mb(env)}Mi"
    volumes.append(Volume("dshm", "/dev/shm", {"emptyDir": {"medium": "Memory", "sizeLimit": size}}))
    if opts.host_key_secret and _runtime.is_dev(env):
        # 0440 + fsGroup: the non-root sshd can read it; sshd only rejects key files that
        # the running user owns and leaves group/world readable, and these are root-owned.
        secret = {"secretName": opts.host_key_secret, "defaultMode": 0o440,
                  "items": [{"key": HOST_KEY_FILE, "path": HOST_KEY_FILE}]}
        volumes.append(Volume("host-key", HOST_KEY_DIR, {"secret": secret}, read_only=True))
    return tuple(volumes)


def _add_kubernetes_mounts(by_path: dict[str, Volume], mounts: tuple[KubernetesMount, ...], base: str) -> None:
    names: set[str] = set()
    paths: set[str] = set()
    for mount in mounts:
        path = _checks.absolute_path(mount.target, what="mount path", span=mount.span)
        label = dns_label(mount.name, span=mount.span, what="mount name")
        if label in names or path in paths:
            raise CompileError(
                f"runtime.kubernetes.mount {mount.name!r} at {path} repeats a name or path",
                span=mount.span, hint="give each mount its own name and path",
            )
        names.add(label)
        paths.add(path)
        size = _checks.quantity(mount.size, what="PVC size", span=mount.span)
        if mount.access_mode not in ACCESS_MODES:
            raise CompileError(
                f"access mode {mount.access_mode!r} is not one Kubernetes knows",
                span=mount.span, hint="one of " + ", ".join(ACCESS_MODES),
            )
        if mount.storage_class:
            _checks.guard(rules.dns_subdomain, mount.storage_class, what="storage class", span=mount.span)
        claim = Claim(child_name(base, label), size, mount.access_mode, mount.storage_class)
        by_path[path] = Volume(label, path, _pvc_source(claim), claim, span=mount.span)


def _unique_names(volumes: list[Volume]) -> list[Volume]:
    """Give colliding volume (and claim) names a hash suffix of their mount path."""
    seen: set[str] = {"dshm", "host-key"}
    out: list[Volume] = []
    for vol in volumes:
        if vol.name in seen:
            name = dns_label(f"{vol.name}-{short_hash(vol.mount_path)}")
            claim = vol.claim
            if claim is not None:
                claim = Claim(child_name(claim.name, short_hash(vol.mount_path)), claim.size,
                              claim.access_mode, claim.storage_class)
                source = _pvc_source(claim)
            else:
                source = vol.source
            vol = Volume(name, vol.mount_path, source, claim, vol.read_only, vol.span)
        seen.add(vol.name)
        out.append(vol)
    return out


def _pvc_source(claim: Claim) -> dict[str, Any]:
    return {"persistentVolumeClaim": {"claimName": claim.name}}
