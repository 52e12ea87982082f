"""``dsl context``: named builder/runner pairs (``create``, ``ls``, ``use``, ``rm``)."""

from __future__ import annotations

import click

from dsl.cli._options import echo_table


@click.group("context")
def context() -> None:
    """Manage contexts: which BuildKit builds and where environments run."""


@context.command("create")
@click.argument("name")
@click.option("--builder", default="docker", show_default=True,
              help="docker, docker://HOST, unix:///path/buildkitd.sock, tcp://HOST:PORT, docker-container://NAME "
                   "or kube-pod://NAME?namespace=NS&context=C.")
@click.option("--runner", default="docker", show_default=True,
              help="docker, a Docker host (unix://, tcp://), k8s, or kubernetes[://KUBECONTEXT].")
@click.option("--registry", default="", metavar="REF",
              help="Where `dsl up --target k8s` pushes what it builds, e.g. registry.example.com/team.")
@click.option("--kube-context", default="", metavar="NAME", help="The kubeconfig context (default: its current one).")
@click.option("--namespace", "-n", default="", metavar="NS", help="The Kubernetes namespace (default: the kube context's).")
@click.option("--description", default="", help="A note shown by `dsl context ls`.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
              help="Extra CA bundle every `dsl build` in this context trusts (e.g. a TLS-inspecting proxy's root CA).")
@click.option("--ssh-key", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
              help="Your own SSH private key (FILE.pub beside it) for `dsl up`/`ssh` in this context.")
@click.option("--use", "use_it", is_flag=True, help="Make it the current context.")
@click.option("--overwrite", is_flag=True, help="Replace an existing context of that name.")
def create(name: str, builder: str, runner: str, registry: str, kube_context: str, namespace: str, description: str,
           ca_bundle: str | None, ssh_key: str | None, use_it: bool, overwrite: bool) -> None:
    """Create context NAME."""
    from dsl.contexts import Context, create_context, use_context
    from dsl.errors import UsageError

    if (kube_context or namespace) and runner.split("://", 1)[0] not in ("k8s", "kubernetes"):
        raise UsageError("--kube-context and --namespace are for a Kubernetes runner", hint="add --runner k8s")
    create_context(Context(name=name, builder=builder, runner=runner, description=description,
                           ca_bundle=ca_bundle or "", ssh_key=ssh_key or "", registry=registry.rstrip("/"),
                           kube_context=kube_context, namespace=namespace), overwrite=overwrite)
    if use_it:
        use_context(name)
    click.echo(name)


@context.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def ls(fmt: str) -> None:
    """List contexts; the current one is marked with *."""
    import json

    from dsl.contexts import DEFAULT_NAME, Context, list_contexts

    items, current = list_contexts()
    items = [Context(name=DEFAULT_NAME), *items]
    current = current or DEFAULT_NAME
    if fmt == "json":
        rows = [{"name": c.name, "builder": c.builder, "runner": c.runner, "description": c.description,
                 "ca_bundle": c.ca_bundle, "ssh_key": c.ssh_key, "registry": c.registry,
                 "kube_context": c.kube_context, "namespace": c.namespace, "current": c.name == current}
                for c in items]
        click.echo(json.dumps(rows, indent=2))
        return
    rows = [("NAME", "BUILDER", "RUNNER", "REGISTRY", "DESCRIPTION")]
    rows += [(c.name + (" *" if c.name == current else ""), c.builder, _runner(c), c.registry or "-", c.description)
             for c in items]
    echo_table(rows)


def _runner(c: object) -> str:
    """The runner column: a Kubernetes runner with its kube context and namespace, if set."""
    text = c.runner  # type: ignore[attr-defined]
    extra = [v for v in (c.kube_context, c.namespace) if v]  # type: ignore[attr-defined]
    return f"{text} ({'/'.join(extra)})" if extra else text


@context.command("use")
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the current context (``default`` = docker builder, docker runner)."""
    from dsl.contexts import use_context

    use_context(name)
    click.echo(name)


@context.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm(names: tuple[str, ...]) -> None:
    """Remove contexts."""
    from dsl.contexts import remove_context

    for name in names:
        remove_context(name)
        click.echo(name)
