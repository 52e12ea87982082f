"""The Pod that runs the environment.

Security context (why each field; see docs/kubernetes.md):
- The dev entrypoint runs sshd as the image's ``envd`` user on port 2222 without privilege
  separation, so nothing needs root: ``runAsNonRoot`` with the user's UID/GID, no privilege
  escalation (sudo/setuid binaries cannot gain root), every capability dropped, the runtime's
  default seccomp profile.
- ``fsGroup`` = the user's GID so PVCs (often root-owned when provisioned) are writable;
  ``OnRootMismatch`` avoids re-chowning a large volume on every start.
- The root filesystem stays writable: developers install into ``~`` and ``/tmp``.
- The service-account token is not mounted unless a service account was asked for.
"""

from __future__ import annotations

from typing import Any

from compiler import _checks, _runtime
from compiler._names import AUTHORIZED_KEYS_ENV, HOST_KEY_PATH_ENV
from compiler.k8s._options import K8sOptions
from compiler.k8s._volumes import HOST_KEY_DIR, HOST_KEY_FILE, Volume
from dsl.errors import CompileError
from dsl.ir import JUPYTER_TOKEN_ENV, Environment

CONTAINER_NAME = "environment"
AUTHORIZED_KEYS_KEY = "authorized_keys"
JUPYTER_TOKEN_KEY = "token"


def pod_spec(
    env: Environment,
    opts: K8sOptions,
    ports: tuple[_runtime.NamedPort, ...],
    volumes: tuple[Volume, ...],
    ssh_secret: str,
    jupyter_secret: str = "",
) -> dict[str, Any]:
    """The Pod's ``spec``.

    Args:
        env: the environment.
        opts: compiler options.
        ports: the container ports (names included).
        volumes: the planned volumes.
        ssh_secret: name of the Secret with ``authorized_keys`` (dev environments).
        jupyter_secret: name of the Secret with the Jupyter ``token`` (when one is required).

    Returns:
        The spec as plain data.

    Raises:
        CompileError: a bad resource quantity or environment variable name.
    """
    dev = _runtime.is_dev(env)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": opts.image,
        "env": _env(env, opts, ssh_secret, jupyter_secret),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [_mount(v) for v in volumes],
    }
    keep_alive = _runtime.keep_alive_command(env)
    if keep_alive:  # `command` without `args`: the image's ENTRYPOINT and CMD are both replaced
        container["command"] = list(keep_alive)
    if ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.container_port, "protocol": "TCP"} for p in ports
        ]
    if dev:
        container["workingDir"] = _runtime.workdir(env)
        container["readinessProbe"] = {
            "tcpSocket": {"port": "ssh"}, "periodSeconds": 5, "failureThreshold": 3,
        }
    resources = _resources(env)
    if resources:
        container["resources"] = resources
    if not container["env"]:
        del container["env"]
    spec: dict[str, Any] = {
        "containers": [container],
        **_clone_repo(env, opts, container, volumes),
        "enableServiceLinks": False,  # no *_SERVICE_HOST variables leaking into the shell
        "securityContext": _pod_security(env),
        "volumes": [{"name": v.name, **v.source} for v in volumes],
    }
    if opts.service_account:
        spec["serviceAccountName"] = opts.service_account
    else:
        spec["automountServiceAccountToken"] = False
    if opts.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in opts.image_pull_secrets]
    return spec


# config.repo: clone the repository into the project directory before the environment starts,
# once (a kept PVC keeps the clone and any work in it). The script gets the directory and URL
# as arguments, never pasted into its text; `--` ends git's options.
CLONE_CONTAINER = "clone-repo"
CLONE_SCRIPT = "\n".join((
    'set -eu',
    'dir="$1" url="$2" tmp="$1/.dsl-clone"',
    'if [ -e "$dir/.git" ]; then echo "$dir is a git checkout already"; exit 0; fi',
    '# a new volume may hold lost+found; a clone that failed half-way is started again',
    'if [ -n "$(ls -A "$dir" | grep -vx -e lost+found -e .dsl-clone)" ]; then',
    '  echo "$dir is not empty; not cloning $url"; exit 0',
    'fi',
    'rm -rf "$tmp"',
    'git clone -- "$url" "$tmp"',
    'for f in "$tmp"/* "$tmp"/.[!.]* "$tmp"/..?*; do if [ -e "$f" ]; then mv "$f" "$dir/"; fi; done',
    'rmdir "$tmp"',
))


def _clone_repo(env: Environment, opts: K8sOptions, container: dict[str, Any],
                volumes: tuple[Volume, ...]) -> dict[str, Any]:
    """``initContainers`` cloning ``config.repo`` into the dev project directory (as
    envd-server's git-cloner does), with the environment's own image (the dev layer has git)
    and the same user and restrictions. Only ``https://`` URLs: the Pod has no credentials and
    no known host key for SSH, and plain http or git:// could be tampered with."""
    repo = env.build.repo
    if repo is None or not _runtime.is_dev(env) or not repo.url.startswith("https://"):
        return {}
    wd = _runtime.workdir(env)
    mounts = [_mount(v) for v in volumes if v.mount_path == wd]
    init = {
        "name": CLONE_CONTAINER,
        "image": opts.image,
        "command": ["/bin/sh", "-c", CLONE_SCRIPT, CLONE_CONTAINER, wd, repo.url],
        "env": [{"name": "GIT_TERMINAL_PROMPT", "value": "0"}],  # a private repo fails, never waits
        "securityContext": container["securityContext"],
        "volumeMounts": mounts,
    }
    return {"initContainers": [init]}


def _env(env: Environment, opts: K8sOptions, ssh_secret: str, jupyter_secret: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in _runtime.environ(env)]
    if _runtime.is_dev(env):
        # The key and the token arrive from Secrets at run time; the spec only names where.
        out.append({"name": AUTHORIZED_KEYS_ENV, "valueFrom": {
            "secretKeyRef": {"name": ssh_secret, "key": AUTHORIZED_KEYS_KEY}}})
        if _runtime.needs_jupyter_token(env):
            # not optional: a missing Secret keeps the Pod from starting, with the reason
            out.append({"name": JUPYTER_TOKEN_ENV, "valueFrom": {
                "secretKeyRef": {"name": jupyter_secret, "key": JUPYTER_TOKEN_KEY}}})
        if opts.host_key_secret:
            out.append({"name": HOST_KEY_PATH_ENV, "value": f"{HOST_KEY_DIR}/{HOST_KEY_FILE}"})
    return out


def _mount(volume: Volume) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path}
    if volume.read_only:
        mount["readOnly"] = True
    return mount


def _resources(env: Environment) -> dict[str, Any]:
    """Requests = limits (Guaranteed QoS when CPU and memory are both given; GPUs require it)."""
    limits: dict[str, Any] = {}
    res = env.runtime.kubernetes.resources
    if res is not None:
        if res.cpu:
            limits["cpu"] = _checks.quantity(res.cpu, what="CPU", span=res.span, example="2")
        if res.memory:
            limits["memory"] = _checks.quantity(res.memory, what="memory", span=res.span, example="8Gi")
        if res.gpu < 0:
            raise CompileError(f"GPU count {res.gpu} is negative", span=res.span, hint="use 0 or more")
    gpus = res.gpu if res is not None and res.gpu else _runtime.gpu_count(env)
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)  # a quantity is a string
    return {"limits": limits, "requests": dict(limits)} if limits else {}


def _pod_security(env: Environment) -> dict[str, Any]:
    context: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if not _runtime.is_dev(env) and env.build.owner is None:
        # A serving image runs as whatever user it declares; we do not know that it is
        # non-root, and runAsNonRoot would stop a root image from starting.
        return context
    uid, gid = _runtime.owner(env)
    context.update({"runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                    "fsGroupChangePolicy": "OnRootMismatch"})
    if uid != 0:
        context["runAsNonRoot"] = True
    return context
