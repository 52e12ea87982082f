"""Environment + image → the Docker Engine API container-create body (``POST /containers/create``).

Pure: host paths are resolved with the build directory and home directory the caller passes,
never by looking at the machine. Mounts use the structured ``HostConfig.Mounts`` form, so a
missing bind source is an error at create time instead of a root-owned directory appearing
(envd issue #1437); the runner creates missing host directories as the invoking user.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from compiler import _checks, _runtime
from compiler._names import (
    AUTHORIZED_KEYS_ENV,
    HASH_ANNOTATION,
    HOST_KEY_PATH_ENV,
    MANAGED_BY,
    child_name,
    dns_label,
    path_label,
    short_hash,
)
from dsl.errors import CompileError
from dsl.ir import JUPYTER_TOKEN_ENV, Environment, content_hash, to_data

# Bump when the shape of the body changes, so the hash label changes with it and a runner does
# not keep a container made from the older shape (2: the host key mounted from the runner's
# file, volume names per project, the keep-alive Entrypoint).
OUTPUT_VERSION = 2
# The create body never carries key material or tokens: the runner replaces these values with
# the public key(s) and the Jupyter token just before it calls the Engine API (and the dev
# entrypoint refuses a value still in this ${...} form).
AUTHORIZED_KEYS_PLACEHOLDER = "${" + AUTHORIZED_KEYS_ENV + "}"
JUPYTER_TOKEN_PLACEHOLDER = "${" + JUPYTER_TOKEN_ENV + "}"
# The SSH host key is made per environment by the runner (so clients can pin it) and bind-
# mounted read-only at the path the Kubernetes Pod mounts its host-key Secret at; the body
# names the host file only by this placeholder.
HOST_KEY_FILE_ENV = "DSL_HOST_KEY_FILE"
HOST_KEY_FILE_PLACEHOLDER = "${" + HOST_KEY_FILE_ENV + "}"
HOST_KEY_MOUNT_PATH = "/etc/dsl/host-key/ssh_host_key"
RESTART_POLICY = "unless-stopped"
NAME_LABEL = "envdsl/name"
FUNCTION_LABEL = "envdsl/function"
MANAGED_BY_LABEL = "envdsl/managed-by"
DATA_VOLUME_PREFIX = "envdsl-data-"


@dataclass(frozen=True, slots=True)
class DockerOptions:
    """Inputs of ``compile_container`` that do not come from the build file.

    Attributes:
        image: the image reference to run (already validated).
        build_dir: absolute directory of the build file; relative host paths resolve here.
        home: absolute home directory that ``~`` in a host path stands for.
    """

    image: str
    build_dir: str
    home: str


@dataclass(frozen=True, slots=True)
class PlannedMount:
    """A bind mount (``kind == "bind"``, absolute host ``source``) or a named volume."""

    kind: str
    source: str
    target: str
    read_only: bool = False


def host_path(path: str, opts: DockerOptions) -> str:
    """Resolve a build-file host path: ``~`` → ``opts.home``, relative → ``opts.build_dir``."""
    if path == "~" or path.startswith("~/"):
        path = opts.home + path[1:]
    return posixpath.normpath(posixpath.join(opts.build_dir, path))


def plan_mounts(env: Environment, opts: DockerOptions) -> tuple[PlannedMount, ...]:
    """The container's mounts: project dir (dev), ``runtime.mount``, ``runtime.docker.mount``.

    A named volume of the environment's own is ``<instance>-<project hash>-<path>``, the
    project hash being the first 8 hex digits of SHA-256 of ``opts.build_dir``; a data set
    (``data.envd(name)``) is ``envdsl-data-<name>``, shared on purpose.

    A later mount at the same target replaces an earlier one (target-specific settings win).

    Raises:
        CompileError: a relative container path, or a path ``~`` cannot resolve.
    """
    # Docker volumes are global to the engine: the project's hash keeps two projects with the
    # same environment name apart (the runner names the container <instance>.<hash> too).
    base = f"{_runtime.instance_name(env)}-{short_hash(opts.build_dir)}"
    by_target: dict[str, PlannedMount] = {}
    if _runtime.is_dev(env):
        # As envd: the directory of the build file is the project directory.
        by_target[_runtime.workdir(env)] = PlannedMount("bind", opts.build_dir, _runtime.workdir(env))
    for m in env.runtime.mounts:
        target = _checks.absolute_path(m.target, what="mount path", span=m.span)
        if m.data_name is not None:
            volume = DATA_VOLUME_PREFIX + dns_label(m.data_name, span=m.span, what="data set name")
            by_target[target] = PlannedMount("volume", volume, target)
        elif m.host_path:
            by_target[target] = PlannedMount("bind", host_path(m.host_path, opts), target)
        else:
            by_target[target] = PlannedMount("volume", child_name(base, path_label(target, span=m.span)), target)
    for d in env.runtime.docker.mounts:
        target = _checks.absolute_path(d.target, what="mount path", span=d.span)
        if d.source:
            by_target[target] = PlannedMount("bind", host_path(d.source, opts), target, d.read_only)
        else:
            by_target[target] = PlannedMount("volume", child_name(base, path_label(target, span=d.span)), target, d.read_only)
    for m in by_target.values():
        if m.kind == "bind" and not m.source.startswith("/"):
            raise CompileError(f"host path {m.source!r} is not absolute", hint="pass an absolute build directory")
    return tuple(by_target.values())


def runtime_digest(env: Environment, opts: DockerOptions) -> str:
    """The content hash of everything that defines the container spec."""
    return content_hash({"output": OUTPUT_VERSION, "environment": env.content_hash(),
                         "function": env.function, "options": to_data(opts)})


def labels(env: Environment, opts: DockerOptions) -> dict[str, str]:
    """Container labels: who made it, for which environment, from which inputs."""
    return {NAME_LABEL: env.name, FUNCTION_LABEL: env.function or "build",
            MANAGED_BY_LABEL: MANAGED_BY, HASH_ANNOTATION: runtime_digest(env, opts)}


def compile_container(env: Environment, opts: DockerOptions) -> dict[str, Any]:
    """Compile an environment to the Engine API container-create body.

    Args:
        env: the evaluated environment.
        opts: image and host directories.

    Returns:
        The body as plain data (keys as the Engine API spells them).

    Raises:
        CompileError: a port, path or variable Docker cannot express (with its span).
    """
    ports = _runtime.ports(env)
    env_list = [f"{k}={v}" for k, v in _runtime.environ(env)]
    mounts = [_mount(m) for m in plan_mounts(env, opts)]
    if _runtime.is_dev(env):
        env_list.append(f"{AUTHORIZED_KEYS_ENV}={AUTHORIZED_KEYS_PLACEHOLDER}")
        if _runtime.needs_jupyter_token(env):
            env_list.append(f"{JUPYTER_TOKEN_ENV}={JUPYTER_TOKEN_PLACEHOLDER}")
        env_list.append(f"{HOST_KEY_PATH_ENV}={HOST_KEY_MOUNT_PATH}")
        mounts.append(_mount(PlannedMount("bind", HOST_KEY_FILE_PLACEHOLDER, HOST_KEY_MOUNT_PATH, read_only=True)))
    host_config: dict[str, Any] = {
        "PortBindings": {
            f"{p.container_port}/tcp": [{"HostIp": p.listen_addr,
                                         "HostPort": str(p.host_port) if p.host_port else ""}]
            for p in ports
        },
        "Mounts": mounts,
        "ShmSize": _runtime.shm_mb(env) * 1024 * 1024,
        "RestartPolicy": {"Name": RESTART_POLICY},
    }
    gpus = _runtime.gpu_count(env)
    if gpus:
        host_config["DeviceRequests"] = [{"Driver": "nvidia", "Count": gpus, "Capabilities": [["gpu"]]}]
    body: dict[str, Any] = {
        "Image": opts.image,
        "Hostname": _runtime.instance_name(env),
        "Env": env_list,
        "ExposedPorts": {f"{p.container_port}/tcp": {} for p in ports},
        "Labels": labels(env, opts),
        "HostConfig": host_config,
    }
    if _runtime.is_dev(env):
        body["WorkingDir"] = _runtime.workdir(env)
    keep_alive = _runtime.keep_alive_command(env)
    if keep_alive:  # an Entrypoint of the body also stops the image's Cmd from being used
        body["Entrypoint"] = list(keep_alive)
    return body


def _mount(m: PlannedMount) -> dict[str, Any]:
    return {"Type": m.kind, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
