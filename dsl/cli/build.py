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
from dsl.cli._locked import LOCKED_HELP
from dsl.cli._options import check_references, check_tags, from_option, path_argument
from dsl.errors import UsageError

PROGRESS_MODES = ("auto", "tty", "plain", "json", "quiet")


@click.command("build")
@path_argument
@from_option
@builder_options
@click.option("--tag", "-t", "tags", multiple=True, metavar="REF", callback=check_tags,
              help="Image name, e.g. myteam/ws:1 (repeatable); default <env-name>:dev.")
@click.option("--output", "-o", "output", metavar="SPEC",
              help="type=docker (default) | type=image,name=REF,push=true | type=oci,dest=FILE | "
                   "type=tar,dest=FILE | type=local,dest=DIR")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="auto", show_default=True,
              help="Progress output: a live view on a terminal (auto), plain lines, JSON lines, or none.")
@click.option("--no-cache", is_flag=True, help="Run every step again, ignoring the build cache.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), envvar="DSL_CA_BUNDLE",
              help="Extra CA bundle trusted by build steps (mounted at build time, never in the image); "
                   "default $DSL_CA_BUNDLE, else the context's ca_bundle.")
@click.option("--platform", help="Target platform os/arch[/variant] (default: the builder's first).")
@click.option("--owner", help="Dev user UID[:GID] (default: config.owner, else the invoking user; 1000 for root).")
@click.option("--metadata-file", type=click.Path(dir_okay=False), help="Write the image reference and digest as JSON.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="Seconds the whole build may take.")
@click.option("--runtime-only", "runtime_only", metavar="REF",
              help="No build file: add the dev runtime to image REF (of the Docker engine), tagged "
                   "<repo>:<tag>-dsl-<hash12>; REF itself when it carries the runtime.")
@click.option("--locked", is_flag=True, help=LOCKED_HELP)
def build(path: str, from_: str | None, builder: str | None, tls_ca: str | None, tls_cert: str | None,
          tls_key: str | None, tags: tuple[str, ...], output: str | None, progress: str, no_cache: bool,
          ca_bundle: str | None, platform: str | None, owner: str | None, metadata_file: str | None,
          timeout: float, runtime_only: str | None = None, locked: bool = False) -> None:
    """Build PATH's environment into an image on a BuildKit.

    An unchanged build (same options, build file, loaded files, served context files, base
    image, envdsl, and the image still tagged) is not run again: it prints "up to date".
    """
    started = time.time_ns()
    ca_bundle = ca_bundle or _context_ca_bundle()
    if runtime_only is not None:  # bring your own image: see dsl/cli/_runtime_image.py
        _runtime_only(runtime_only, builder, (tls_ca, tls_cert, tls_key), ca_bundle, progress, timeout)
        return
    # a --locked build is never skipped as "up to date": the record does not key on the lock
    inputs = None if locked else _record_inputs(path, from_, builder, tags, output, platform, owner, ca_bundle)
    code = None
    if inputs is not None:
        from dsl.engines.buildkit import code_fingerprint

        code = code_fingerprint()  # before anything is imported or evaluated
        if not no_cache and _print_if_up_to_date(inputs, code, metadata_file, progress):
            return  # (a --no-cache build is still recorded: its image is a build of these inputs)
    from compiler._names import default_image_ref
    from dsl.cli._load import invoking_owner, load_evaluation
    from dsl.engines.buildkit import parse_output

    env, evaluation = load_evaluation(path, from_, owner=owner, default_owner=invoking_owner())
    pins, lock = None, {}
    if locked:
        from dsl.cli._locked import locked_pins

        pins, lock = locked_pins(env, evaluation, path=path, from_=from_, platform=platform)
        platform = platform or lock["inputs"]["platform"]
    spec = parse_output(output, tags=tags, default_name=default_image_ref(env.name))
    if output:  # names given as --output type=image,name=A,B (the push targets)
        from dsl.rules import tag_reference

        check_references(spec.names, tag_reference, "--output name")
    context_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    seen: dict[str, Any] = {}
    from compiler._runtime import instance_name

    with connect_from_options(builder, tls_ca, tls_cert, tls_key, affinity=instance_name(env)) as bk:
        if locked:
            from dsl.cli._locked import check_local_images

            check_local_images(bk, lock, path=path, from_=from_)
        recording = inputs is not None and bk.is_dockerd and spec.type == "docker"
        result = _run(bk, env, spec, context_dir=context_dir, progress=progress, no_cache=no_cache,
                      ca_bundle=ca_bundle, platform=platform, timeout=timeout,
                      seen=seen if recording else None, pins=pins)
    report = _report(result, metadata_file)
    if recording and inputs is not None:
        _record(inputs, started, code, evaluation, context_dir, seen, result, report, bk.docker_host or "")


def _runtime_only(ref: str, builder: str | None, tls: tuple[str | None, str | None, str | None],
                  ca_bundle: str | None, progress: str, timeout: float) -> None:
    """``--runtime-only REF``: print the image to run (REF, or REF + runtime, built once)."""
    from compiler._names import validate_image_ref
    from dsl.cli._runner import open_runner
    from dsl.cli._runtime_image import with_runtime

    runner = open_runner()
    try:
        ref = with_runtime(runner, validate_image_ref(ref), builder=builder, tls=tls, ca_bundle=ca_bundle,
                           progress=progress, timeout=timeout)
    finally:
        runner.close()
    click.echo(f"image: {ref}")


def _context_ca_bundle() -> str | None:
    """The current context's CA bundle, when it has one (checked: it may have moved since)."""
    from dsl.contexts import current_context

    context = current_context()
    if context is None or not context.ca_bundle:
        return None
    if not os.path.isfile(context.ca_bundle):
        raise UsageError(f"the CA bundle {context.ca_bundle} of context {context.name!r} is not a file",
                         hint=f"fix it with `dsl context create {context.name} --overwrite --ca-bundle FILE ...`")
    return context.ca_bundle


def _record_inputs(path: str, from_: str | None, builder: str | None, tags: tuple[str, ...], output: str | None,
                   platform: str | None, owner: str | None, ca_bundle: str | None) -> dict[str, Any] | None:
    """The build-record key inputs, or None when this build can never be skipped (a push, a
    file output, a builder other than dockerd).

    Raises:
        UsageError: the builder address, ``DOCKER_HOST`` or the current context is malformed.
    """
    if output not in (None, "type=docker"):
        return None
    from dsl.engines.buildkit import (
        parse_builder_url,
        record_inputs,
        resolve_builder_url,
    )

    # a bad address (or DOCKER_HOST, or context) is bad input: reported now, before evaluating
    address = parse_builder_url(resolve_builder_url(builder)[0])
    if not address.is_dockerd:
        return None
    cwd = os.getcwd()
    names = tags
    if tags:  # `-t ws:1` and `-t docker.io/library/ws:1` name one image: one record
        from dsl.rules import tag_reference

        names = tuple(tag_reference(t).normalized() for t in tags)
    inputs = record_inputs(build_file=os.path.join(cwd, path), function=from_ or "", context_dir=cwd,
                           builder_url=address.url, tags=names, output=output, platform=platform, owner=owner,
                           ca_bundle=ca_bundle)
    from dsl.cli._runtime_base import runtime_base

    bundle_base = runtime_base()
    if bundle_base is not None:  # another dev runtime base is another build (default: no key, as before)
        inputs["runtime_base"] = bundle_base
    return inputs


def _print_if_up_to_date(inputs: dict[str, Any], code: str, metadata_file: str | None, progress: str) -> bool:
    from dsl.engines.buildkit import check_up_to_date

    record, reason = check_up_to_date(inputs, inputs["builder"].removeprefix("docker://"), code)
    if record is None:
        if reason and progress in ("auto", "tty", "plain"):  # json/quiet: no free-form lines
            click.echo(f"rebuilding: {reason}", err=True)
        return False
    report = record["report"]
    for line in report["stdout"]:
        click.echo(line)
    click.echo("up to date: nothing the image depends on changed since it was built (--no-cache rebuilds)", err=True)
    if metadata_file:  # nothing was solved this time
        _write_metadata(metadata_file, {**report["metadata"], "solve_seconds": 0.0})
    return True


def _record(inputs: dict[str, Any], started: int, code: str | None, evaluation: Any, context_dir: str,
            seen: dict[str, Any], result: Any, report: dict[str, Any], docker_host: str) -> None:
    from dsl.engines.buildkit import BuildFacts, record_key, write_record

    llb = seen.get("llb")
    if llb is None or not result.digest:
        return
    facts = BuildFacts(
        started_ns=started, files=evaluation.files, includes=evaluation.includes,
        context_dir=context_dir, local_sources=[(s.name, s.include) for s in llb.local_sources],
        base_ref=llb.base_image, base_id_before=seen.get("base_id"), base_digest=result.outcome.base_digest,
        sources_before=seen["sources"].result() if "sources" in seen else None,
        images={name: result.digest for name in result.output.names}, report=report, code=code,
    )
    write_record(record_key(inputs), inputs, facts, docker_host)


def _run(bk: Any, env: Any, spec: Any, *, context_dir: str, progress: str, no_cache: bool,
         ca_bundle: str | None, platform: str | None, timeout: float, seen: dict[str, Any] | None = None,
         pins: Any = None) -> Any:
    from dsl.cli._runtime_base import runtime_base
    from dsl.engines.buildkit import BuildRequest, PlainRenderer, Plan, ProgressTracker, TeeRenderer, make_renderer
    from dsl.engines.buildkit import build as run_build
    from dsl.errors import DslError, SolveFailed

    bundle_base = runtime_base()

    def plan(caps: frozenset[str], target: str) -> Plan:
        from compiler.llb import compile_environment

        res = compile_environment(env, caps=caps, platform=target, ca_bundle=bool(ca_bundle), no_cache=no_cache,
                                  runtime_base=bundle_base, pins=pins)
        if seen is not None:  # what the build record needs: the served sources, the base's ID now
            from dsl.engines.buildkit import ImageStates, docker_image_id, image_sources

            others = image_sources(res.definition, besides=res.base_image)  # looked up while it builds
            seen.update(llb=res, base_id=docker_image_id(bk.docker_host or "", res.base_image),
                        sources=ImageStates(others, bk.docker_host or "", ca_bundle))
        return Plan(res.definition, res.base_image, res.vertex_spans)

    def image_config(base: dict[str, Any] | None, target: str) -> dict[str, Any]:
        from compiler.image_config import image_config as make_config

        return make_config(env, base_config=base, platform=target, runtime_base=bundle_base)

    request = BuildRequest(
        plan=plan, image_config=image_config, output=spec, context_dir=context_dir,
        secrets={"dsl-ca-bundle": ca_bundle} if ca_bundle else {}, platform=platform, timeout=timeout,
        exporter_attrs=_reproducible(bk, pins),
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


def _reproducible(bk: Any, pins: Any) -> dict[str, str]:
    if pins is None:
        return {}
    from dsl.cli._locked import reproducible_attrs

    return reproducible_attrs(bk, pins.source_date_epoch)


def _log_path(env_name: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "envdsl" / "logs"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the build-log directory {directory}: {exc.strerror or exc}",
                         hint="make it writable, or point XDG_CACHE_HOME elsewhere") from exc
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return str(directory / f"build-{env_name}-{stamp}-{os.getpid()}.log")


def _report(result: Any, metadata_file: str | None) -> dict[str, Any]:
    """Print the result; return what was printed and the metadata (kept in the build record)."""
    out = result.output
    lines = []
    if out.type in ("docker", "image"):
        lines += [f"image: {name}" for name in out.names]
        if result.digest:
            lines.append(f"digest: {result.digest}")
        lines += [f"pushed: {ref}@{digest}" if digest else f"pushed: {ref}" for ref, digest in result.pushed.items()]
    else:
        lines.append(f"wrote: {out.dest} ({out.type})")
    for line in lines:
        click.echo(line)
    vertices, cached = result.outcome.vertices, result.outcome.cached
    click.echo(f"steps: {vertices}, cached: {cached}", err=True)
    metadata = result.metadata()
    if metadata_file:
        _write_metadata(metadata_file, metadata)
    return {"stdout": lines, "metadata": metadata}


def _write_metadata(path: str, metadata: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    except OSError as exc:  # e.g. its directory does not exist: click only checks it is not a dir
        raise UsageError(f"--metadata-file {path}: cannot write it ({exc.strerror or exc})",
                         hint="the image was built; write the file into an existing directory") from exc
