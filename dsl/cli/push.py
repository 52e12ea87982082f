"""``dsl push [PATH]``: push the last ``dsl build`` of a project to a registry.

The image is the one the project's newest build record names (``dsl build`` keeps one per set
of options, with the image ID it produced), else the default tag ``<env>:dev``; it is looked
up in the Docker engine that built it. It goes to ``--to REF``, else to
``<context registry>/<instance>`` — where ``dsl up --target k8s`` pushes. The registry's
manifest digest is printed: ``pushed: REF@sha256:...``, the reference a cluster pulls.
Credentials come from the Docker config (``docker login``), as for ``dsl build``'s pushes.
A build made on a standalone or in-cluster BuildKit is not in the Docker engine: push it from
the build itself (``dsl build --output type=image,name=REF,push=true``).
"""

from __future__ import annotations

import os

import click

from dsl.cli._options import check_references, from_option, path_argument
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
    from dsl.engines.buildkit import docker_host_from_env, last_build, local_image, push_image
    from dsl.rules import tag_reference

    env = load_environment(path, from_)
    target = to or _registry_target(instance_name(env))
    check_references((target,), tag_reference, "--to")
    image = last_build(_build_file_names(path), from_ or "")
    if image is None:
        docker_host, default_tag = docker_host_from_env(), default_image_ref(env.name)
        image = local_image(docker_host, default_tag)
        if image is None:
            raise UsageError(f"no build of {path} to push: no build record, and no image {default_tag} in the Docker "
                             f"engine at {docker_host}", hint=f"run `dsl build {path}` first")
    digest = push_image(image, target)
    click.echo(f"image: {image.tag}", err=True)
    click.echo(f"pushed: {target}@{digest}" if digest else f"pushed: {target}")


def _registry_target(instance: str) -> str:
    from dsl.contexts import current_context

    context = current_context()
    if context is None or not context.registry:
        raise UsageError("`dsl push` needs a destination: no --to given, and the context names no registry",
                         hint="pass --to REGISTRY/REPO[:TAG], or `dsl context create NAME --registry REGISTRY/PATH --use`")
    return f"{context.registry}/{instance}"


def _build_file_names(path: str) -> set[str]:
    """The paths ``dsl build`` may have recorded for this build file (it keeps what it was given)."""
    names = {os.path.realpath(path)}
    if os.path.isdir(path):
        names.add(os.path.realpath(os.path.join(path, "build.envd")))
    elif os.path.basename(path) == "build.envd":
        names.add(os.path.realpath(os.path.dirname(os.path.abspath(path))))
    return names
