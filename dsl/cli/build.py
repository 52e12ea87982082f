"""``dsl build``: compile the build file to LLB and solve it on a BuildKit.

The engine work lives in ``dsl.engines.buildkit``; this module parses options, evaluates the
build file, wires the compilers to the solve, renders progress and reports the result.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from dsl.cli._builder_options import builder_options, connect_from_options
from dsl.cli._options import from_option, path_argument

PROGRESS_MODES = ("auto", "tty", "plain", "json", "quiet")


@click.command("build")
@path_argument
@from_option
@builder_options
@click.option("--tag", "-t", "tags", multiple=True, metavar="REF", help="Image name (repeatable); default <env-name>:dev.")
@click.option("--output", "-o", "output", metavar="SPEC",
              help="type=docker (default) | type=image,name=REF,push=true | type=oci,dest=FILE | "
                   "type=tar,dest=FILE | type=local,dest=DIR")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="auto", show_default=True,
              help="Progress output: a live view on a terminal (auto), plain lines, JSON lines, or none.")
@click.option("--no-cache", is_flag=True, help="Run every step again, ignoring the build cache.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
              help="Extra CA bundle trusted by build steps (mounted at build time, never in the image).")
@click.option("--platform", help="Target platform os/arch[/variant] (default: the builder's first).")
@click.option("--owner", help="Dev user UID[:GID] (default: config.owner, else the invoking user).")
@click.option("--metadata-file", type=click.Path(dir_okay=False), help="Write the image reference and digest as JSON.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="Seconds the whole build may take.")
def build(path: str, from_: str | None, builder: str | None, tls_ca: str | None, tls_cert: str | None,
          tls_key: str | None, tags: tuple[str, ...], output: str | None, progress: str, no_cache: bool,
          ca_bundle: str | None, platform: str | None, owner: str | None, metadata_file: str | None,
          timeout: float) -> None:
    """Build PATH's environment into an image on a BuildKit."""
    from compiler._names import default_image_ref, validate_image_ref
    from dsl.cli._load import load_environment
    from dsl.engines.buildkit._outputs import parse_output

    env = load_environment(path, from_, owner=owner)
    for tag in tags:
        validate_image_ref(tag)
    spec = parse_output(output, tags=tags, default_name=default_image_ref(env.name))
    context_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    with connect_from_options(builder, tls_ca, tls_cert, tls_key) as bk:
        result = _run(bk, env, spec, context_dir=context_dir, progress=progress, no_cache=no_cache,
                      ca_bundle=ca_bundle, platform=platform or "linux/amd64", timeout=timeout)
    _report(result, metadata_file)


def _run(bk: Any, env: Any, spec: Any, *, context_dir: str, progress: str, no_cache: bool,
         ca_bundle: str | None, platform: str, timeout: float) -> Any:
    from dsl.engines.buildkit import Plan, ProgressTracker, make_renderer
    from dsl.engines.buildkit._build import BuildRequest, build as run_build
    from dsl.engines.buildkit._progress import PlainRenderer, TeeRenderer
    from dsl.errors import DslError, SolveFailed

    def plan(caps: frozenset[str]) -> Plan:
        from compiler.llb import compile_environment

        res = compile_environment(env, caps=caps, platform=platform, ca_bundle=bool(ca_bundle))
        return Plan(res.definition, res.base_image, res.vertex_spans)

    def image_config(base: dict[str, Any] | None) -> dict[str, Any]:
        from compiler.image_config import image_config as make_config

        return make_config(env, base_config=base, platform=platform)

    request = BuildRequest(
        plan=plan, image_config=image_config, output=spec, context_dir=context_dir,
        secrets={"dsl-ca-bundle": ca_bundle} if ca_bundle else {}, platform=platform,
        no_cache=no_cache, timeout=timeout,
    )
    tracker = ProgressTracker()
    log_path = _log_path(env.name)
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below, kept on failure
    renderer = TeeRenderer(make_renderer(progress, tracker), PlainRenderer(log))
    try:
        return run_build(bk, request, renderer=renderer, tracker=tracker)
    except DslError as exc:
        log.close()
        if isinstance(exc, SolveFailed) and exc.log_tail and progress in ("quiet", "json"):
            click.echo("\n".join(f"  | {line}" for line in exc.log_tail), err=True)
        click.echo(f"build log: {log_path}", err=True)
        raise
    finally:
        if not log.closed:
            log.close()
            if sys.exc_info()[0] is None:
                os.unlink(log_path)


def _log_path(env_name: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "envdsl" / "logs"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return str(directory / f"build-{env_name}-{stamp}-{os.getpid()}.log")


def _report(result: Any, metadata_file: str | None) -> None:
    out = result.output
    if out.type in ("docker", "image"):
        for name in out.names:
            click.echo(f"image: {name}")
        if result.digest:
            click.echo(f"digest: {result.digest}")
        for ref, digest in result.pushed.items():
            click.echo(f"pushed: {ref}@{digest}" if digest else f"pushed: {ref}")
    else:
        click.echo(f"wrote: {out.dest} ({out.type})")
    vertices, cached = result.outcome.vertices, result.outcome.cached
    click.echo(f"steps: {vertices}, cached: {cached}", err=True)
    if metadata_file:
        Path(metadata_file).write_text(json.dumps(result.metadata(), indent=2, sort_keys=True) + "\n")
