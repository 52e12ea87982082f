"""Bring your own image: the dev runtime added to an image built elsewhere.

``dsl build --runtime-only REF`` and ``dsl up --image REF`` use an image as it is when it
already carries the runtime (a dev image of ours: the ``dev.envdsl.runtime.bundle`` label);
otherwise they build ``REF`` + the dev layer once and tag it by content,
``<repo>:<tag>-dsl-<hash12>``. The hash covers the image's ID (its config digest, the same on
every machine that has the image) and the compiled definition (the runtime's digest, the dev
layer's scripts), so the same input gives the same tag everywhere and a rebuild is skipped
while the tag exists.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dsl.engines.runner import ImageInfo, Runner
    from dsl.ir import Environment

DEV_LABEL = "dev.envdsl.dev"
RUNTIME_LABEL = "dev.envdsl.runtime.bundle"
TAG_PLATFORM = "linux/amd64"  # the definition the tag's hash covers (the shape and platform are fixed)


def runtime_environment(ref: str) -> Environment:
    """The environment of ``REF`` + runtime: ``base(image=REF, dev=True)`` and nothing else,
    named after the image's repository (its work directory is ``/home/envd/<name>``)."""
    from dsl import rules
    from dsl.ir import BaseImage, BuildGraph, Environment

    last = rules.parse_image_ref(ref).familiar_name().rsplit("/", 1)[-1]
    name = re.sub(r"[^a-z0-9_-]+", "-", last.lower()).strip("-_") or "image"
    return Environment(name, BuildGraph(base=BaseImage(ref, dev=True)))


def derived_tag(ref: str, image_id: str, definition: bytes) -> str:
    """``<repo>:<tag>-dsl-<hash12>`` for ``ref`` + runtime (``latest`` when ``ref`` has no tag).

    Args:
        ref: the image reference as given.
        image_id: the image's ID (``sha256:...``).
        definition: the compiled LLB of ``ref`` + runtime (sequential shape, ``TAG_PLATFORM``).
    """
    from dsl import rules

    parsed = rules.parse_image_ref(ref)
    data = {"image": image_id, "definition": "sha256:" + hashlib.sha256(definition).hexdigest()}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    tag = (parsed.tag or ("digest-" + parsed.digest.split(":")[-1][:12] if parsed.digest else "latest"))
    return f"{parsed.familiar_name()}:{tag[:128 - 17]}-dsl-{digest}"


def carries_runtime(info: ImageInfo, bundle: str) -> bool:
    """True when the image can run as it is: it has this runtime, or it is a dev image of ours
    (built with another runtime: adding one would replace its entrypoint, init and daemons)."""
    if info.labels.get(RUNTIME_LABEL) == bundle:
        return True
    if info.labels.get(DEV_LABEL) == "true":
        click.echo(f"note: image {info.ref} was built with another envdsl dev runtime; rebuild it to update it",
                   err=True)
        return True
    return False


def with_runtime(runner: Runner, ref: str, *, builder: str | None, tls: tuple[str | None, str | None, str | None],
                 ca_bundle: str | None, progress: str, timeout: float = 3600) -> str:
    """The reference to run for ``ref``: itself when it carries the runtime, else the derived
    tag, built now unless it exists already.

    Raises:
        UsageError: ``ref`` is not in the Docker engine, or ``$DSL_RUNTIME_BASE`` is malformed.
        DslError: the build failed.
    """
    from compiler.llb import compile_environment
    from compiler.llb._bundle import bundle_digest
    from compiler.llb._ops import Platform
    from dsl.cli._runtime_base import runtime_base
    from dsl.errors import UsageError

    info = runner.image(ref)
    base = runtime_base()
    if carries_runtime(info, bundle_digest(Platform.parse(TAG_PLATFORM), base)):
        click.echo(f"image {ref} carries the dev runtime: used as it is", err=True)
        return ref
    env = runtime_environment(ref)
    definition = compile_environment(env, platform=TAG_PLATFORM, sequential=True, runtime_base=base).definition
    tag = derived_tag(ref, info.id, definition)
    try:
        runner.image(tag)
    except UsageError:
        pass
    else:
        click.echo(f"image {tag} ({ref} + the dev runtime) exists: not rebuilt", err=True)
        return tag
    click.echo(f"building {tag}: {ref} + the dev runtime", err=True)
    _build(env, tag, builder=builder, tls=tls, ca_bundle=ca_bundle, progress=progress, timeout=timeout)
    return tag


def _build(env: Environment, tag: str, *, builder: str | None, tls: tuple[str | None, str | None, str | None],
           ca_bundle: str | None, progress: str, timeout: float) -> Any:
    import contextlib
    import os
    import sys

    from dsl.cli._builder_options import connect_from_options
    from dsl.cli.build import _context_ca_bundle, _report, _run
    from dsl.engines.buildkit import parse_output

    ca_bundle = ca_bundle or _context_ca_bundle()  # as `dsl build` does (`dsl up` passes its option)
    spec = parse_output(None, tags=(tag,), default_name=tag)
    with connect_from_options(builder, *tls) as bk:
        result = _run(bk, env, spec, context_dir=os.getcwd(), progress=progress, no_cache=False,
                      ca_bundle=ca_bundle, platform=None, timeout=timeout)
    with contextlib.redirect_stdout(sys.stderr):  # the caller prints the one reference to run
        return _report(result, None)
