"""``dsl builder``: in-cluster BuildKit builders (``create --kubernetes``, ``ls``, ``rm``).

The objects are compiled by ``compiler.k8s._builder`` (pure) and applied by
``dsl.engines.kube._builder``; builds reach them as ``kube-pod://NAME?namespace=NS&context=C``.
"""

from __future__ import annotations

from typing import Any

import click

from dsl.cli._options import echo_table

_KUBE_OPTIONS = (
    click.option("--kube-context", default="", metavar="NAME", help="The kubeconfig context (default: its current one)."),
    click.option("--namespace", "-n", default="", metavar="NS", help="The namespace (default: the kube context's)."),
)


def _kube_options(fn: Any) -> Any:
    for option in reversed(_KUBE_OPTIONS):
        fn = option(fn)
    return fn


def _kube(kube_context: str, namespace: str) -> Any:
    from dsl.engines.kube import Kube

    return Kube(kube_context or None, namespace or None)


def builder_url(name: str, namespace: str, context: str) -> str:
    """The ``--builder`` address of builder ``name`` (values quoted: kube context names such as
    EKS ARNs may hold ``/``, ``:``, even ``#``)."""
    from urllib.parse import quote

    return f"kube-pod://{name}?namespace={quote(namespace, safe='')}&context={quote(context, safe=':/@')}"


@click.group("builder")
def builder() -> None:
    """Manage in-cluster BuildKit builders (reached through the exec API, no port exposed)."""


@builder.command("create")
@click.argument("name")
@click.option("--kubernetes", is_flag=True, help="Run it on Kubernetes (the only kind `dsl builder` creates).")
@_kube_options
@click.option("--replicas", type=click.IntRange(1, 64), default=1, show_default=True,
              help="buildkitd Pods, each with its own cache; a build goes to one by a hash of its environment.")
@click.option("--image", default=None, metavar="REF@sha256:...",
              help="A rootless moby/buildkit image pinned by digest (default: a pinned moby/buildkit rootless).")
@click.option("--cache-size", default="20Gi", show_default=True, help="Each replica's cache claim.")
@click.option("--storage-class", default="", help="StorageClass of the cache claims (default: the cluster's).")
@click.option("--cpu-request", default="", metavar="Q", help="e.g. 500m")
@click.option("--cpu-limit", default="", metavar="Q", help="e.g. 4")
@click.option("--memory-request", default="", metavar="Q", help="e.g. 1Gi")
@click.option("--memory-limit", default="", metavar="Q", help="e.g. 8Gi")
def create(name: str, kubernetes: bool, kube_context: str, namespace: str, replicas: int, image: str | None,
           cache_size: str, storage_class: str, cpu_request: str, cpu_limit: str, memory_request: str,
           memory_limit: str) -> None:
    """Create (or update) builder NAME; print its builder URL."""
    from compiler.k8s._builder import DEFAULT_IMAGE, BuilderSpec, compile_builder
    from dsl.errors import UsageError

    if not kubernetes:
        raise UsageError("`dsl builder create` makes in-cluster builders only: add --kubernetes",
                         hint="for a local one use --builder docker or docker-container://NAME")
    kube = _kube(kube_context, namespace)
    try:
        spec = BuilderSpec(name=name, namespace=kube.namespace, replicas=replicas, image=image or DEFAULT_IMAGE,
                           cache_size=cache_size, storage_class=storage_class, cpu_request=cpu_request,
                           cpu_limit=cpu_limit, memory_request=memory_request, memory_limit=memory_limit)
        objects = compile_builder(spec)  # bad input fails before anything is sent
        from dsl.engines.kube import apply_builder

        apply_builder(kube, objects)
        click.echo(builder_url(name, kube.namespace, kube.where.context))
    finally:
        kube.close()


@builder.command("ls")
@_kube_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def ls(kube_context: str, namespace: str, fmt: str) -> None:
    """List the in-cluster builders of the namespace, and the builder builds use now."""
    import json

    from dsl.engines.buildkit import resolve_builder_url
    from dsl.engines.kube import list_builders

    kube = _kube(kube_context, namespace)
    try:
        found = list_builders(kube)
        context = kube.where.context
    finally:
        kube.close()
    current, origin = resolve_builder_url(None)
    if fmt == "json":
        rows = [{"name": b.name, "namespace": b.namespace, "replicas": b.replicas, "ready": b.ready, "image": b.image,
                 "url": builder_url(b.name, b.namespace, context)} for b in found]
        click.echo(json.dumps({"builders": rows, "current": {"url": current, "from": origin}}, indent=2))
        return
    table = [("NAME", "READY", "URL", "IMAGE")]
    table += [(b.name, f"{b.ready}/{b.replicas}", builder_url(b.name, b.namespace, context), b.image) for b in found]
    echo_table(table)
    click.echo(f"builds use: {current} ({origin})")


@builder.command("rm")
@click.argument("name")
@_kube_options
@click.option("--purge", is_flag=True, help="Also delete the cache claims (kept by default).")
def rm(name: str, kube_context: str, namespace: str, purge: bool) -> None:
    """Delete builder NAME (its cache claims stay unless --purge)."""
    from dsl.engines.kube import remove_builder

    kube = _kube(kube_context, namespace)
    try:
        for what in remove_builder(kube, name, purge=purge):
            click.echo(f"deleted {what}")
    finally:
        kube.close()
