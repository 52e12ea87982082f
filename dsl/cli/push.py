"""``dsl push [PATH]``: push the last ``dsl build`` of a project to a registry.

The image is the one the project's newest build record names (``dsl build`` keeps one per set
of options, with the image ID it produced), else the default tag ``<env>:dev``; it is looked
up in the Docker engine that built it. It goes to ``--to REF``, else to
``<context registry>/<instance>`` — where ``dsl up --target k8s`` pushes. The registry's
manifest digest is printed: ``pushed: REF@sha256:...``, the reference a cluster pulls.
Credentials come from the Docker config (``docker login``), as for ``dsl build``'s pushes.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from dsl.cli._options import from_option, path_argument
from dsl.errors import UsageError


@click.command("push")
@path_argument
@from_option
@click.option("--to", "to", metavar="REF", help="Where to push (default: <context registry>/<env instance>).")
def push(path: str, from_: str | None, to: str | None) -> None:
    """Push PATH's last built image to the context's registry (or --to REF); print its digest."""
    from compiler._names import default_image_ref
    from compiler._runtime import instance_name
    from dsl.cli._load import load_environment
    from dsl.engines.buildkit import docker_image_id
    from dsl.engines.buildkit._build import _push
    from dsl.engines.buildkit._hijack import docker_host_from_env
    from dsl.engines.buildkit.session import DockerCredentials
    from dsl.rules import tag_reference

    env = load_environment(path, from_)
    target = to or _registry_target(instance_name(env))
    from dsl.cli._options import check_references

    check_references((target,), tag_reference, "--to")
    found = _last_build(path, from_)
    if found is not None:
        docker_host, image_id, built_as = found
    else:
        docker_host, built_as = docker_host_from_env(), default_image_ref(env.name)
        image_id = docker_image_id(docker_host, built_as)
        if image_id is None:
            raise UsageError(f"no build of {path} to push: no build record, and no image {built_as} in the Docker "
                             f"engine at {docker_host}", hint=f"run `dsl build {path}` first")
    _tag(docker_host, image_id, target)
    digest = _push(docker_host, target, DockerCredentials())
    click.echo(f"image: {built_as}", err=True)
    click.echo(f"pushed: {target}@{digest}" if digest else f"pushed: {target}")


def _registry_target(instance: str) -> str:
    from dsl.contexts import current_context

    context = current_context()
    if context is None or not context.registry:
        raise UsageError("`dsl push` needs a destination: no --to given, and the context names no registry",
                         hint="pass --to REGISTRY/REPO[:TAG], or `dsl context create NAME --registry REGISTRY/PATH --use`")
    return f"{context.registry}/{instance}"


def _last_build(path: str, from_: str | None) -> tuple[str, str, str] | None:
    """``(docker host, image ID, tag)`` of the newest build record of this build file whose
    image is still in its engine, or None."""
    from dsl.engines.buildkit import docker_image_id
    from dsl.engines.buildkit._uptodate import records_dir

    wanted = {os.path.realpath(path)}
    if os.path.isdir(path):
        wanted.add(os.path.realpath(os.path.join(path, "build.envd")))
    elif os.path.basename(path) == "build.envd":
        wanted.add(os.path.realpath(os.path.dirname(os.path.abspath(path))))
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        entries = list(os.scandir(records_dir()))
    except OSError:
        return None
    for entry in entries:
        try:
            with open(entry.path, encoding="utf-8") as handle:
                record = json.load(handle)
            inputs = record["inputs"]
            if inputs["file"] in wanted and inputs["function"] == (from_ or "") and record["images"]:
                records.append((entry.stat().st_mtime_ns, record))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a record of ours, or half-written: never the one to push
    for _, record in sorted(records, key=lambda r: r[0], reverse=True):
        host = str(record["inputs"].get("builder", "")).removeprefix("docker://")
        for tag, image_id in sorted(record["images"].items()):
            if docker_image_id(host, tag) == image_id:
                return host, image_id, tag
    return None


def _tag(docker_host: str, image_id: str, target: str) -> None:
    from dsl.engines.buildkit import _dockerapi as api
    from dsl.errors import EngineError
    from dsl.rules import tag_reference

    name = tag_reference(target)
    query = f"repo={api.quote(name.familiar_name())}&tag={api.quote(name.tag or 'latest')}"
    status, payload = api.request(docker_host, "POST", f"/images/{api.quote(image_id)}/tag?{query}")
    if status != 201:
        raise EngineError(f"cannot tag {image_id} as {target}: {api.error_message(payload)}")
