"""The OCI image config of a built environment.

Starts from the base image's config (as BuildKit's ResolveImageConfig returns it) and sets
what the environment defines: Env (PATH first), Entrypoint/Cmd, User, WorkingDir,
ExposedPorts, and labels under ``dev.envdsl.*`` carrying the whole environment, so an image
alone is enough to run it or compile its manifests later (envd keeps the same idea in its
``ai.tensorchord.envd.*`` labels).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from compiler import _runtime
from compiler.llb._bundle import bundle_digest
from compiler.llb._dev import owner
from compiler.llb._layout import (
    DEFAULT_PATH,
    DEV_HOME,
    DEV_USER,
    ENTRYPOINT,
    LABEL_PREFIX,
    RUNTIME_LABEL,
    join_path,
    login_shell,
    path_entries,
    toolchain_env,
    trailing_path_entries,
)
from compiler.llb._ops import Platform
from dsl.errors import CompileError
from dsl.ir import Environment, canonical_json

SYNTAX_VERSION = "v1"


def default_base_config(platform: str = "linux/amd64") -> dict[str, Any]:
    """The config assumed when the base image's own is unknown: BuildKit's default
    (PATH only, WorkingDir /) for ``platform``."""
    p = Platform.parse(platform)
    cfg: dict[str, Any] = {"architecture": p.architecture, "os": p.os,
                           "config": {"Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}}
    if p.variant:
        cfg["variant"] = p.variant
    return cfg


def image_config(env: Environment, *, base_config: dict | None, platform: str = "linux/amd64",
                 runtime_base: str | None = None) -> dict:
    """The image config JSON (as a dict) for ``env``.

    Args:
        env: the environment.
        base_config: the base image's config JSON, or None for ``default_base_config``.
        platform: used for architecture/os when ``base_config`` is None.
        runtime_base: the dev runtime bundle's base (as given to ``compile_environment``):
            its digest is the ``dev.envdsl.runtime.bundle`` label of a dev image.

    Returns:
        A new dict (``base_config`` is not modified); ``created`` is removed so the exporter
        stamps the build time instead of the base image's.

    Raises:
        CompileError: ``config.entrypoint`` in a dev image, or invalid runtime values.
    """
    cfg = copy.deepcopy(base_config) if base_config is not None else default_base_config(platform)
    cfg.pop("created", None)
    if base_config is not None and "architecture" not in cfg:
        p = Platform.parse(platform)
        cfg["architecture"], cfg["os"] = p.architecture, p.os
    c = cfg.setdefault("config", {}) or {}
    cfg["config"] = c
    dev = env.build.base.dev
    c["Env"] = _env(env, c.get("Env") or [])
    if dev:
        if env.build.entrypoint:
            raise CompileError("config.entrypoint is only for non-dev images", hint=(
                "a dev image runs sshd; use runtime.init or runtime.daemon to start programs"))
        o = owner(env)
        c["Entrypoint"], c["Cmd"] = [ENTRYPOINT], None
        c["User"] = f"{o.uid}:{o.gid}"  # numeric, so Kubernetes can verify runAsNonRoot
        c["WorkingDir"] = _runtime.workdir(env)
    elif env.build.entrypoint:
        c["Entrypoint"], c["Cmd"] = list(env.build.entrypoint), None
    ports = _runtime.ports(env)
    if ports:
        exposed = dict(c.get("ExposedPorts") or {})
        exposed.update({f"{p.container_port}/tcp": {} for p in ports})
        c["ExposedPorts"] = dict(sorted(exposed.items()))
    labels = dict(c.get("Labels") or {})
    labels.update(_labels(env, ports))
    if dev:  # which runtime the image carries: `dsl up --image` reuses an image that has it
        labels[RUNTIME_LABEL] = bundle_digest(Platform.parse(platform), runtime_base)
    c["Labels"] = dict(sorted(labels.items()))
    return cfg


def _env(env: Environment, base: list[str]) -> list[str]:
    values = dict(item.split("=", 1) if "=" in item else (item, "") for item in base)
    ours: dict[str, str] = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **dict(toolchain_env(env))}
    ours.update(_runtime.environ(env))
    if env.build.base.dev:
        ours.update({"USER": DEV_USER, "HOME": DEV_HOME, "SHELL": login_shell(env),
                     "ENVD_WORKDIR": _runtime.workdir(env)})
    ours["PATH"] = join_path(path_entries(env), values.get("PATH", DEFAULT_PATH), trailing_path_entries(env))
    values.update(ours)
    order = [k for k in values if k in dict.fromkeys(i.split("=", 1)[0] for i in base)]
    order += sorted(k for k in values if k not in order)
    return [f"{k}={values[k]}" for k in order]


def _labels(env: Environment, ports: tuple) -> dict[str, str]:
    p = LABEL_PREFIX
    out = {
        f"{p}.vendor": "envdsl",
        f"{p}.syntax.version": SYNTAX_VERSION,
        f"{p}.env.name": env.name,
        f"{p}.dev": "true" if env.build.base.dev else "false",
        f"{p}.content.hash": env.content_hash(),
        f"{p}.runtime": canonical_json(env.to_data(spans=False)["runtime"]).decode(),
        f"{p}.environment": canonical_json(env.to_data(spans=False)).decode(),
        f"{p}.ports": json.dumps([{"name": q.name, "port": q.container_port} for q in ports],
                                 separators=(",", ":")),
    }
    if env.runtime.commands:  # runtime.command: what `dsl exec --command NAME` (or a user) runs
        out[f"{p}.commands"] = json.dumps(dict(env.runtime.commands), sort_keys=True,
                                          separators=(",", ":"), ensure_ascii=False)
    if env.build.repo is not None:  # config.repo, as envd's ai.tensorchord.envd.repo
        out[f"{p}.repo"] = json.dumps({"url": env.build.repo.url, "description": env.build.repo.description},
                                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if env.build.cuda is not None:
        out[f"{p}.gpu"] = "true"
        out[f"{p}.gpu.cuda"] = env.build.cuda.version
        out[f"{p}.gpu.cudnn"] = env.build.cuda.cudnn
    return out

